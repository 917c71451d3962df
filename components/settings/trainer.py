"""The Trainer's settings (components/module_files/trainer.py's `run_fn` reads them from the component's custom_config,
beside the data's: components/settings/data.py).

Kept apart from trainer.py so that the runners build their command lines from it without importing TensorFlow.
A new hyperparameter is one field here, with its default and help text: both runners get a flag for it, the
Kubeflow spec's `trainer_config` runtime parameter carries it, and `run_kubeflow.py run --param NAME=VALUE` sets it.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Tuple

from components import tasks
from components.model.distribution import STRATEGIES
from components.settings.base import SettingsError, setting, validate
from components.settings.encoder import EncoderTrainingSettings

POOLING_MODES = ("cls", "mean")
CLASS_WEIGHTINGS = ("none", "balanced")

# Peak learning rates, chosen on Rotten Tomatoes' eval split (benchmarks/results.md): a checkpoint is fine-tuned
# with small steps; an encoder trained from scratch needs larger ones.
FINETUNE_LEARNING_RATE = 1e-4
SCRATCH_LEARNING_RATE = 5e-4


def default_learning_rate(settings: "TrainerSettings") -> float:
    """The learning rate when none is given: FINETUNE_LEARNING_RATE with a checkpoint, SCRATCH_LEARNING_RATE
    without one (--pretrained none)."""
    return FINETUNE_LEARNING_RATE if settings.pretrained_dir else SCRATCH_LEARNING_RATE


@dataclasses.dataclass(frozen=True)
class TrainerSettings(EncoderTrainingSettings):
    """The Trainer's custom_config. Settings with a flag are hyperparameters a user may change per run (also through
    the Kubeflow runtime parameter); the others follow from the checkpoint and the other flags."""

    COMPONENT: ClassVar[str] = "Trainer"

    class_weights: str = setting(
        "none", "'balanced' weighs each training row's loss by the inverse of its class's frequency (per task), so "
                "every class counts the same: better macro F1 on data with rare classes, at some cost in accuracy; "
                "'none' weighs every row alike", flag="--class-weights", choices=CLASS_WEIGHTINGS)
    task_weights: str = setting(
        "", "with several label columns: each task's weight in the loss, comma-separated in --label-column's order "
            "(e.g. 2,1); default: equal weights", flag="--task-weights")
    # all-MiniLM-L6-v2 was trained with mean pooling; [CLS] pays on long texts (benchmarks/results.md).
    pooling: str = setting("mean", "classification head on the [CLS] vector or the mean over tokens (mean: chosen "
                                   "on Rotten Tomatoes; cls measured better on 20newsgroups' long posts)",
                           flag="--pooling", choices=POOLING_MODES)
    epochs: int = setting(3, "passes over the training split", flag="--epochs", positive=True)
    learning_rate: Optional[float] = setting(
        None, f"peak AdamW learning rate (default {FINETUNE_LEARNING_RATE:g} fine-tuning a checkpoint, "
              f"{SCRATCH_LEARNING_RATE:g} with --pretrained none)", flag="--learning-rate", positive=True,
        default_by=default_learning_rate)
    layer_decay: float = setting(
        1.0, "layer-wise learning-rate decay: the head trains at --learning-rate, the top encoder layer at that x "
             "decay, each layer below at another x decay, the embeddings lowest (components/model/optimization.py); "
             "1.0 turns it off",
        flag="--layer-decay", unit_interval=True)
    dropout: float = setting(0.1, "dropout before the classification head", flag="--dropout", unit_interval=True)
    early_stopping_patience: int = setting(
        1, "epochs without a better eval accuracy before training stops (the best epoch's weights are kept)",
        flag="--early-stopping-patience", positive=True)
    distribution: str = setting(
        "auto", "tf.distribute strategy: auto picks multi_worker when TF_CONFIG describes more than one task (TFJob, "
                "Vertex AI Training), mirrored with more than one local GPU, else default (one device)",
        flag="--distribution", choices=STRATEGIES)
    adapted_encoder: bool = setting(
        False, derived="--pretrain-epochs above 0: start from the encoder the Pretrainer adapted (the Trainer's "
                       "base_model input) instead of pretrained_dir")
    warm_start: bool = setting(False, "start from the weights of the model in service (the latest blessed model) "
                                      "instead of the checkpoint; it needs the same model settings and vocabulary",
                               flag="--warm-start")

    def __post_init__(self):
        validate(self)

    def task_weights_of(self, label_key: str) -> Tuple[float, ...]:
        """Each label column's weight in the loss (--task-weights for the data's --label-column), or SettingsError."""
        try:
            return tasks.parse_weights(self.task_weights, tasks.label_columns(label_key))
        except ValueError as e:
            raise SettingsError(f"Trainer setting 'task_weights': {e}") from None


def hyperparameters():
    """The settings a user sets per run (those with a flag), as dataclass fields."""
    return [f for f in dataclasses.fields(TrainerSettings) if f.metadata.get("flag")]
