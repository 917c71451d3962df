"""The Evaluator's settings: the gates that decide which models are blessed (components/release/eval_config.py
turns them into TFMA's EvalConfig)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from components.settings.base import CustomConfigMixin, setting, validate


@dataclasses.dataclass(frozen=True)
class EvaluatorSettings(CustomConfigMixin):
    """A model is blessed only when, on the eval split, its accuracy is at least `min_accuracy` and its macro F1 at
    least `min_macro_f1`, and neither is lower than the model in service's by more than `max_accuracy_drop` /
    `max_macro_f1_drop` (TFX drops those two checks on the first run: no model in service). Macro F1 is what a model
    that only the majority class likes fails: its F1 is 0 on every other class, so its macro F1 is at most 1/k for
    k classes in the eval split (at most 0.5 for two), however high its accuracy. Macro F1 averages only the classes
    with an eval example (components/release/macro_f1.py), so a rare class the split lacks never makes it NaN."""

    COMPONENT: ClassVar[str] = "Evaluator"

    min_accuracy: float = setting(0.6, "eval accuracy a model needs to be blessed", flag="--min-accuracy",
                                  unit_interval=True)
    max_accuracy_drop: float = setting(
        0.01, "how far below the model in service a new model's eval accuracy may be and still be blessed",
        flag="--max-accuracy-drop", unit_interval=True)
    min_macro_f1: float = setting(0.5, "eval macro F1 (the mean F1 of the classes with an eval example) a model "
                                       "needs to be blessed; a model that predicts only the majority class has at "
                                       "most 1/classes",
                                  flag="--min-macro-f1", unit_interval=True)
    max_macro_f1_drop: float = setting(
        0.02, "how far below the model in service a new model's eval macro F1 may be and still be blessed",
        flag="--max-macro-f1-drop", unit_interval=True)
    accept_new_classes: bool = setting(
        False, "bless a model whose classes differ from the model in service's (after a class was added to the "
               "schema) on the absolute gates alone; without it such a model is not comparable and not blessed",
        flag="--accept-new-classes")

    def __post_init__(self):
        validate(self)
