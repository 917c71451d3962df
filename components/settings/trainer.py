"""The Trainer's settings (components/modules/trainer.py's `run_fn` reads them from the component's custom_config).

Kept apart from trainer.py so that the runners build their command lines from it without importing TensorFlow.
A new hyperparameter is one field here, with its default and help text: both runners get a flag for it, the
Kubeflow spec's `trainer_config` runtime parameter carries it, and `run_kubeflow.py run --param NAME=VALUE` sets it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple

from components.model.distribution import STRATEGIES
from components.model.precision import PRECISIONS
from components.features import DEFAULT_LABEL_KEY, DEFAULT_TEXT_KEY
from components.settings.base import from_custom_config, setting, to_custom_config, validate

MODEL_SIZES = ("tiny", "mini", "small")
POOLING_MODES = ("cls", "mean")

# Peak learning rate when training from scratch (no checkpoint): a new encoder needs larger steps than fine-tuning.
# Chosen on Rotten Tomatoes' eval split, mini encoder, learned vocabulary: 0.782 eval accuracy at 5e-4, 0.760 at 5e-5.
SCRATCH_LEARNING_RATE = 5e-4
# Chosen on Rotten Tomatoes' eval split, all-MiniLM-L6-v2 (benchmarks/README.md): 0.826 at 1e-4, 0.822 at 5e-5.
FINETUNE_LEARNING_RATE = 1e-4
# Position embeddings of an encoder trained from scratch: the longest --max-seq-length it takes.
SCRATCH_MAX_POSITIONS = 512


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    """The Trainer's custom_config. Settings with a flag are hyperparameters a user may change per run (also through
    the Kubeflow runtime parameter); the others follow from the data, the checkpoint and Transform's settings."""

    COMPONENT: ClassVar[str] = "Trainer"

    text_key: str = setting(DEFAULT_TEXT_KEY, derived="--text-column (the same as Transform's)")
    label_key: str = setting(DEFAULT_LABEL_KEY, derived="--label-column (the same as Transform's)")
    vocab_file: str = setting("", derived="--pretrained / --vocab (Transform's vocabulary file; '' when learned)")
    label_names: Tuple[str, ...] = setting((), derived="Transform's label_names: the class names, in label-id order")
    pretrained_dir: Optional[str] = setting(
        None, derived="--pretrained: a Hugging Face-format BERT checkpoint folder; null trains from scratch")
    model_size: str = setting("mini", "encoder preset when training from scratch: tiny 2x128, mini 4x256, small "
                                      "4x512 (layers x hidden)", flag="--model-size", choices=MODEL_SIZES)
    # all-MiniLM-L6-v2 was trained with mean pooling. On Rotten Tomatoes' eval split (the default data) mean and
    # [CLS] are one review apart; on 20newsgroups' long posts [CLS] was 10 of 1,115 eval posts ahead (README).
    pooling: str = setting("mean", "classification head on the [CLS] vector or the mean over tokens (mean: chosen "
                                   "on Rotten Tomatoes; cls measured better on 20newsgroups' long posts)",
                           flag="--pooling", choices=POOLING_MODES)
    epochs: int = setting(3, "passes over the training split", flag="--epochs", positive=True)
    batch_size: int = setting(32, "examples per batch and replica (a step takes batch size x replicas examples when "
                                  "training is distributed)", flag="--batch-size", positive=True)
    learning_rate: float = setting(
        FINETUNE_LEARNING_RATE, f"peak AdamW learning rate (default {FINETUNE_LEARNING_RATE:g} fine-tuning a "
                                f"checkpoint, {SCRATCH_LEARNING_RATE:g} with --pretrained none)",
        flag="--learning-rate", positive=True)
    weight_decay: float = setting(0.01, "AdamW's decoupled weight decay (none on LayerNorm and biases)",
                                  flag="--weight-decay", unit_interval=True)
    warmup_ratio: float = setting(0.1, "share of the training steps the learning rate warms up over, then decays "
                                       "linearly to 0", flag="--warmup-ratio", unit_interval=True)
    layer_decay: float = setting(
        1.0, "layer-wise learning-rate decay: the head trains at --learning-rate, the top encoder layer at that x decay, "
             "each layer below at another x decay, the embeddings lowest (components/model/optimization.py); 1.0 turns it off",
        flag="--layer-decay", unit_interval=True)
    dropout: float = setting(0.1, "dropout before the classification head", flag="--dropout", unit_interval=True)
    early_stopping_patience: int = setting(
        1, "epochs without a better eval accuracy before training stops (the best epoch's weights are kept)",
        flag="--early-stopping-patience", positive=True)
    seed: int = setting(42, "random seed of training", flag="--seed")
    distribution: str = setting(
        "auto", "tf.distribute strategy: auto picks multi_worker when TF_CONFIG describes more than one task (TFJob, "
                "Vertex AI Training), mirrored with more than one local GPU, else default (one device)",
        flag="--distribution", choices=STRATEGIES)
    # float32 by default: slower than float32 on the default data, faster on long texts; the measurements are in
    # components/model/precision.py's docstring and the README.
    precision: str = setting(
        "float32", "training precision: mixed_bfloat16 computes in bfloat16 with float32 weights; bf16_if_native "
                   "picks it on a CPU with native bfloat16 instructions (AVX-512 BF16 / AMX) and no GPU, else "
                   "float32 (measured 1.55x as fast on long texts, 128 tokens, slower on short ones); the served "
                   "model is float32 either way", flag="--precision", choices=PRECISIONS)
    adapted_encoder: bool = setting(
        False, derived="--pretrain-epochs above 0: start from the encoder the Pretrainer adapted (the Trainer's "
                       "base_model input) instead of pretrained_dir")
    warm_start: bool = setting(False, "start from the weights of the model in service (the latest blessed model) "
                                      "instead of the checkpoint; it needs the same model settings and vocabulary",
                               flag="--warm-start")

    def __post_init__(self):
        validate(self)

    def to_custom_config(self, code_version: Optional[str] = None) -> Dict[str, Any]:
        return to_custom_config(self, code_version)

    @classmethod
    def from_custom_config(cls, config: Optional[Mapping[str, Any]]) -> "TrainerSettings":
        return from_custom_config(cls, config)


def hyperparameters():
    """The settings a user sets per run (those with a flag), as dataclass fields."""
    return [f for f in dataclasses.fields(TrainerSettings) if f.metadata.get("flag")]
