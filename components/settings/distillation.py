"""The Distiller's settings (components/module_files/distillation.py's `run_fn` reads them from its custom_config).

The distillation stage trains a smaller student encoder from the fine-tuned classifier (the teacher). Only the
stage's own knobs are here: everything it shares with the teacher (columns, classes, vocabulary, batch size, seed,
pooling, dropout, precision) it reads from the teacher's own record in its Model artifact, so the two cannot disagree.
No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from components.settings.base import SettingsError, setting, validate
from components.settings.unlabeled import UnlabeledTextSettings


@dataclasses.dataclass(frozen=True)
class DistillerSettings(UnlabeledTextSettings):
    """The Distiller's custom_config; --unlabeled-data's settings are read with --distill-unlabeled alone."""

    COMPONENT: ClassVar[str] = "Distiller"

    student_layers: int = setting(
        0, "train a student of N encoder layers from the fine-tuned model (the Distiller step), initialised from N of "
           "the teacher's layers spread over its depth, and serve the student instead of the teacher; 0 turns the "
           "stage off", flag="--student-layers")
    distill_epochs: int = setting(3, "passes of the Distiller over the training split", flag="--distill-epochs",
                                  positive=True)
    distill_learning_rate: float = setting(1e-4, "peak AdamW learning rate of the student", positive=True,
                                           flag="--distill-learning-rate")
    temperature: float = setting(
        2.0, "temperature of the softened probabilities the student learns from (the teacher's and its own); higher "
             "spreads them over more classes", flag="--distill-temperature", positive=True)
    soft_weight: float = setting(
        0.5, "share of the student's loss that is matching the teacher's softened probabilities; the rest is the "
             "cross-entropy with the labels (0: labels only)", flag="--distill-soft-weight", unit_interval=True)
    distill_unlabeled: bool = setting(
        False, "add the teacher's answers on --unlabeled-data's texts (a folder of texts or a request-log prefix: "
               "texts the teacher never trained on) to the student's transfer set, learnt from the soft targets alone",
        flag="--distill-unlabeled")

    def __post_init__(self):
        validate(self)
        if self.student_layers < 0:
            raise SettingsError(f"Distiller setting 'student_layers' must be 0 (off) or positive; got "
                                f"{self.student_layers}.")

    @property
    def enabled(self) -> bool:
        return self.student_layers > 0
