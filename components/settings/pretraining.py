"""The Pretrainer's settings (components/module_files/pretraining.py's `run_fn` reads them from its custom_config,
beside the data's: components/settings/data.py), and --unlabeled-data's (components/settings/unlabeled.py).

The masked-LM stage's own hyperparameters have flags here; what it shares with the fine-tuning Trainer (checkpoint,
batch size, seed, precision, optimizer schedule) is declared once, in components/settings/encoder.py, and copied from
the Trainer's settings at the front door (`derived_from`). No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from components.settings.base import SettingsError, setting, validate
from components.settings.encoder import EncoderTrainingSettings, shared_fields
from components.settings.unlabeled import UnlabeledTextSettings


@dataclasses.dataclass(frozen=True)
class PretrainerSettings(EncoderTrainingSettings, UnlabeledTextSettings):
    """The Pretrainer's custom_config."""

    COMPONENT: ClassVar[str] = "Pretrainer"

    # Off by default: chosen on the eval splits, no variant measured (1 to 3 epochs, whole-word masking, domain text)
    # beat fine-tuning alone by more than a few eval examples (benchmarks/results.md).
    pretrain_epochs: int = setting(
        0, "masked-LM passes over the training split's texts (and --unlabeled-data's) that adapt the encoder to the "
           "data before fine-tuning; 0 turns the stage off", flag="--pretrain-epochs")
    pretrain_learning_rate: float = setting(5e-5, "peak AdamW learning rate of the masked-LM stage",
                                            flag="--pretrain-learning-rate", positive=True)
    masking_rate: float = setting(
        0.15, "share of each text's tokens the masked-LM stage hides and predicts (of those: 80% [MASK], 10% a "
              "random token, 10% unchanged)", flag="--masking-rate", unit_interval=True)
    whole_word_masking: bool = setting(False, "masked-LM stage: mask all the pieces of a chosen word together",
                                       flag="--whole-word-masking")
    def __post_init__(self):
        validate(self)
        if self.masking_rate <= 0:
            raise SettingsError(f"Pretrainer setting 'masking_rate' must be above 0 (it is the share of tokens the "
                                f"stage predicts); got {self.masking_rate}.")
        if self.pretrain_epochs < 0:
            raise SettingsError(f"Pretrainer setting 'pretrain_epochs' must be 0 (off) or positive; got "
                                f"{self.pretrain_epochs}.")

    @property
    def enabled(self) -> bool:
        return self.pretrain_epochs > 0

    @classmethod
    def derived_from(cls, trainer, **flags) -> "PretrainerSettings":
        """The Pretrainer's settings: its own (flags), the rest from the Trainer's."""
        shared = {name: getattr(trainer, name) for name in shared_fields()}
        return cls(**shared, **flags)
