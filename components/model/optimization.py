"""The fine-tuning optimizer: AdamW with linear warmup and decay, and optional layer-wise learning-rate decay.

Layer-wise learning-rate decay (Clark et al. 2020, ELECTRA; Howard & Ruder 2018, "discriminative fine-tuning") gives
the classification head the schedule's rate, the top encoder layer that rate x decay, each layer below another
factor of decay, and the embeddings the lowest: the layers nearest the input, which hold the most general features,
move least. decay 1.0 is plain AdamW.

Why it is written here: Keras 2's optimizers have one learning rate for every variable, and gradient scaling cannot
stand in for a per-variable rate because Adam's step does not depend on the gradient's scale. LayerwiseDecayAdamW
keeps tf_keras' own AdamW step and scales each variable's update by its factor after it (for a variable with factor
f the update is exactly f times AdamW's, moments and bias correction untouched). Decoupled weight decay keeps the
schedule's rate for every layer (at most 0.01 x 5e-5 of a weight per step; the difference is negligible).
"""

from __future__ import annotations

import re
from typing import Dict, Iterable

import tensorflow as tf
import tf_keras as keras

# Variables of the encoder's transformer layer i (components/model/bert.py names its layers layer_0 ... layer_{L-1}).
_LAYER = re.compile(r"(?:^|/)layer_(\d+)/")
_EMBEDDINGS = re.compile(r"(?:^|/)embeddings/")


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        super().__init__()
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        total = tf.cast(max(self.total_steps, 1), tf.float32)
        up = self.peak * step / warmup
        down = self.peak * tf.maximum(0.0, (total - step) / tf.maximum(total - warmup, 1.0))
        return tf.where(step < warmup, up, down)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def layer_factor(variable_name: str, num_layers: int, decay: float) -> float:
    """The learning-rate factor of a variable: decay^(L+1-depth), depth 0 for the embeddings, i+1 for layer_i and
    L+1 (factor 1) for everything else (the classification head)."""
    match = _LAYER.search(variable_name)
    if match:
        depth = int(match.group(1)) + 1
    elif _EMBEDDINGS.search(variable_name):
        depth = 0
    else:
        depth = num_layers + 1
    return float(decay ** (num_layers + 1 - depth))


def encoder_layers(variable_names: Iterable[str]) -> int:
    """The number of transformer layers among these variables (the highest layer_i + 1)."""
    return max((int(m.group(1)) + 1 for m in map(_LAYER.search, variable_names) if m), default=0)


class LayerwiseDecayAdamW(keras.optimizers.AdamW):
    """AdamW whose update of each variable is scaled by its layer_factor (see the module docstring); the encoder's
    depth is read from the variables it is built for."""

    def __init__(self, decay: float, **kwargs):
        super().__init__(**kwargs)
        self.decay = decay
        self._factors: Dict[str, float] = {}

    def build(self, var_list):
        super().build(var_list)
        num_layers = encoder_layers(v.name for v in var_list)
        self._factors = {self._var_key(v): layer_factor(v.name, num_layers, self.decay) for v in var_list}

    def update_step(self, gradient, variable):
        factor = self._factors.get(self._var_key(variable), 1.0)
        if factor == 1.0:
            return super().update_step(gradient, variable)
        before = tf.identity(variable)  # read before AdamW's assign_sub (ordered by the function's control deps)
        super().update_step(gradient, variable)
        variable.assign(before + tf.cast(factor, variable.dtype) * (variable - before))


def make_optimizer(peak: float, warmup_ratio: float, weight_decay: float, total_steps: int,
                   layer_decay: float = 1.0):
    """AdamW with linear warmup to `peak` and linear decay to 0 over `total_steps`, gradients clipped at norm 1;
    with layer_decay < 1 the encoder's layers get the decayed rates of layer_factor."""
    schedule = WarmupLinearDecay(peak, int(total_steps * warmup_ratio), total_steps)
    kwargs = dict(learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-6, clipnorm=1.0)
    if layer_decay < 1.0:
        optimizer = LayerwiseDecayAdamW(layer_decay, **kwargs)
    else:
        optimizer = keras.optimizers.AdamW(**kwargs)
    # Decoupled weight decay, but none on LayerNorm parameters and biases (standard BERT practice).
    optimizer.exclude_from_weight_decay(var_names=["layer_norm", "LayerNorm", "layernorm", "bias"])
    return optimizer
