"""What both Trainers of the pipeline read (the fine-tuning Trainer and the masked-LM stage's Pretrainer) besides the
data's settings (components/settings/data.py): the encoder to start from and how it trains. Declared once here;
TrainerSettings and PretrainerSettings extend it, so one flag (--batch-size, --precision, ...) sets both. No
TensorFlow here."""

from __future__ import annotations

import dataclasses
from typing import Optional

from components.model.precision import PRECISIONS
from components.settings.base import CustomConfigMixin, setting

MODEL_SIZES = ("tiny", "mini", "small")
# Position embeddings of an encoder trained from scratch: the longest --max-seq-length it takes.
SCRATCH_MAX_POSITIONS = 512


@dataclasses.dataclass(frozen=True)
class EncoderTrainingSettings(CustomConfigMixin):
    """The settings the two Trainer module files share (components/module_files/trainer.py, pretraining.py)."""

    pretrained_dir: Optional[str] = setting(
        None, derived="--pretrained: a Hugging Face-format BERT checkpoint folder; null trains from scratch")
    model_size: str = setting("mini", "encoder preset when training from scratch: tiny 2x128, mini 4x256, small "
                                      "4x512 (layers x hidden)", flag="--model-size", choices=MODEL_SIZES)
    batch_size: int = setting(32, "examples per batch and replica (a step takes batch size x replicas examples when "
                                  "training is distributed)", flag="--batch-size", positive=True)
    weight_decay: float = setting(0.01, "AdamW's decoupled weight decay (none on LayerNorm and biases)",
                                  flag="--weight-decay", unit_interval=True)
    warmup_ratio: float = setting(0.1, "share of the training steps the learning rate warms up over, then decays "
                                       "linearly to 0", flag="--warmup-ratio", unit_interval=True)
    seed: int = setting(42, "random seed of training", flag="--seed")
    # float32 by default: bfloat16 paid only on long texts (the measurements: benchmarks/results.md).
    precision: str = setting(
        "float32", "training precision: mixed_bfloat16 computes in bfloat16 with float32 weights; bf16_if_native "
                   "picks it on a CPU with native bfloat16 instructions (AVX-512 BF16 / AMX) and no GPU, else "
                   "float32 (faster on long texts, slower on short ones); the served model is float32 either way",
        flag="--precision", choices=PRECISIONS)


def shared_fields():
    """The names of the shared settings, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(EncoderTrainingSettings))
