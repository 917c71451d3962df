"""Hugging Face BERT checkpoints into the encoder of components/model/bert.py: strict, all-or-nothing loading.

Public API (usable from a notebook):

* `load_pretrained(checkpoint_dir)` – config.json + model.safetensors -> encoder with the pretrained weights.
* `load_hf_weights(encoder, dir_or_file_or_tensors)` – strict weight loading into an existing encoder;
  any missing, unexpected, duplicated or mis-shaped tensor raises `CheckpointError` naming it, and nothing is
  assigned unless everything matches.
* `weight_targets(encoder)` – which encoder variable each checkpoint tensor goes to, and how its layout converts
  (components/model/mlm.py adds its head's targets to the same accounting).
* `checkpoint_tokenizer_settings(checkpoint_dir)` -> (vocab_path, lower_case), `read_vocab(checkpoint_dir)`.
"""

from __future__ import annotations

import os

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

import dataclasses
import json
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Union

import numpy as np
import tensorflow as tf
import tf_keras as keras

from components.model import bert, tokenizer_config
from components.model.tokenizer_config import TOKENIZER_CONFIG_FILE

WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"


class CheckpointError(ValueError):
    """A checkpoint does not match the encoder (missing/unexpected/mis-shaped tensors) or is incomplete."""


# Tensors in HF checkpoints that are not weights of our encoder and are skipped on purpose:
# the position_ids buffer, the pooler (our classification head pools [CLS] or the mean itself), and the
# pre-training heads of BertForPreTraining/BertForMaskedLM checkpoints (cls.predictions: masked LM,
# cls.seq_relationship: next sentence), which a classifier does not use; components/model/mlm.py claims
# cls.predictions through `extra_targets` when it trains a masked-LM head.
_IGNORED_PREFIXES = ("embeddings.position_ids", "pooler.", "cls.")


@dataclasses.dataclass
class Target:
    variable: tf.Variable
    hf_shape: tuple  # the shape the tensor has in the HF checkpoint
    convert: Callable[[np.ndarray], np.ndarray]  # HF layout -> variable layout


def identity(a: np.ndarray) -> np.ndarray:
    return a


def _layer_weight(encoder: keras.Model, layer_name: str, suffix: str) -> tf.Variable:
    """The weight of `layer_name` whose name ends with `suffix` (robust to outer name scopes)."""
    try:
        layer = encoder.get_layer(layer_name)
    except ValueError as e:
        raise CheckpointError(f"the encoder has no layer {layer_name!r}; was it built by build_encoder?") from e
    found = [w for w in layer.weights if w.name.split(":")[0].endswith(suffix)]
    if len(found) != 1:
        raise CheckpointError(f"layer {layer_name!r} has {len(found)} weights named *{suffix}; expected one.")
    return found[0]


def num_layers(encoder: keras.Model) -> int:
    names = {layer.name for layer in encoder.layers}
    n = 0
    while f"layer_{n}/attention" in names:
        n += 1
    return n


def weight_targets(encoder: keras.Model) -> dict[str, Target]:
    """Maps every HF tensor name (without 'bert.' prefix, LayerNorm as weight/bias) onto an encoder weight."""
    targets: dict[str, Target] = {}

    def same(hf_name, layer_name, suffix):
        var = _layer_weight(encoder, layer_name, suffix)
        targets[hf_name] = Target(var, tuple(var.shape), identity)

    def dense(hf_name, layer_name):
        # torch.nn.Linear stores weight as (out, in) and computes x @ W.T; Keras Dense kernels are (in, out).
        var = _layer_weight(encoder, layer_name, "/kernel")
        targets[hf_name + ".weight"] = Target(var, (var.shape[1], var.shape[0]), lambda a: a.T)
        same(hf_name + ".bias", layer_name, "/bias")

    def layer_norm(hf_name, layer_name):
        same(hf_name + ".weight", layer_name, "/gamma")
        same(hf_name + ".bias", layer_name, "/beta")

    def qkv(hf_name, layer_name, which):
        # MultiHeadAttention's q/k/v EinsumDense kernel is [hidden_in, heads, head_size] and bias
        # [heads, head_size]. HF splits the Linear output dim as (heads, head_size) in row-major order,
        # so transpose (out, in) -> (in, out) and reshape the out dim.
        kernel = _layer_weight(encoder, layer_name, f"/{which}/kernel")
        bias = _layer_weight(encoder, layer_name, f"/{which}/bias")
        d_in, heads, size = (int(s) for s in kernel.shape)
        targets[hf_name + ".weight"] = Target(kernel, (heads * size, d_in),
                                               lambda a: a.T.reshape(d_in, heads, size))
        targets[hf_name + ".bias"] = Target(bias, (heads * size,), lambda a: a.reshape(heads, size))

    def attention_output(hf_name, layer_name):
        # The output projection kernel is [heads, head_size, hidden_out]; HF's input dim is the
        # concatenation of heads in the same (heads, head_size) order.
        kernel = _layer_weight(encoder, layer_name, "/attention_output/kernel")
        heads, size, d_out = (int(s) for s in kernel.shape)
        targets[hf_name + ".weight"] = Target(kernel, (d_out, heads * size),
                                               lambda a: a.T.reshape(heads, size, d_out))
        same(hf_name + ".bias", layer_name, "/attention_output/bias")

    same("embeddings.word_embeddings.weight", "embeddings/word_embeddings", "/embeddings")
    same("embeddings.position_embeddings.weight", "embeddings/position_embeddings", "/embeddings")
    same("embeddings.token_type_embeddings.weight", "embeddings/token_type_embeddings", "/embeddings")
    layer_norm("embeddings.LayerNorm", "embeddings/layer_norm")
    for i in range(num_layers(encoder)):
        hf, k = f"encoder.layer.{i}", f"layer_{i}"
        for which in ("query", "key", "value"):
            qkv(f"{hf}.attention.self.{which}", f"{k}/attention", which)
        attention_output(f"{hf}.attention.output.dense", f"{k}/attention")
        layer_norm(f"{hf}.attention.output.LayerNorm", f"{k}/attention_layer_norm")
        dense(f"{hf}.intermediate.dense", f"{k}/intermediate")
        dense(f"{hf}.output.dense", f"{k}/output")
        layer_norm(f"{hf}.output.LayerNorm", f"{k}/output_layer_norm")
    return targets


def canonical_name(name: str) -> str:
    """Strips the 'bert.' prefix of task models and maps old LayerNorm gamma/beta to weight/bias."""
    if name.startswith("bert."):
        name = name[len("bert."):]
    if ".LayerNorm." in name:
        head, _, leaf = name.rpartition(".")
        name = head + "." + {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)
    return name


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file  # numpy only: no torch needed

    try:
        return load_file(str(path))
    except Exception as e:  # corrupt file, or a dtype numpy lacks (bfloat16)
        raise CheckpointError(f"could not read {path}: {e}") from e


def read_hf_tensors(checkpoint: Union[str, os.PathLike, Mapping[str, np.ndarray]]
                    ) -> tuple[dict[str, np.ndarray], str]:
    """(tensors by their checkpoint names, where they came from for messages) of a checkpoint folder
    (with model.safetensors), a .safetensors file, or a dict of numpy arrays (returned as a copy)."""
    if isinstance(checkpoint, Mapping):
        return dict(checkpoint), "the given tensors"
    path = Path(checkpoint)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"no weights file at {path}.")
    return _read_safetensors(path), str(path)


def load_hf_weights(encoder: keras.Model,
                    checkpoint: Union[str, os.PathLike, Mapping[str, np.ndarray]],
                    ignore_prefixes: Iterable[str] = (),
                    extra_targets: Optional[Mapping[str, Mapping[str, Target]]] = None) -> keras.Model:
    """Assigns Hugging Face BERT weights to an encoder built by `build_encoder` (in place; returns it).

    `checkpoint` is a checkpoint folder (with model.safetensors), a .safetensors file, or a dict of numpy
    arrays keyed by HF names (optionally 'bert.'-prefixed, LayerNorm as weight/bias or gamma/beta).
    The pooler, the pre-training heads ('cls.') and the position_ids buffer are ignored; tensors under
    `ignore_prefixes` (e.g. 'classifier.' of task checkpoints, matched after removing 'bert.') are ignored too.
    Anything else must match exactly: missing, unexpected, duplicated or mis-shaped tensors raise
    CheckpointError naming them, and nothing is assigned unless everything matches.

    `extra_targets` ({HF name prefix: {HF name: target}}) adds weights outside the encoder to the same
    all-or-nothing accounting (components/model/mlm.py's head under 'cls.predictions.'): every tensor under such
    a prefix must match those targets, even where a built-in ignored prefix covers it; `ignore_prefixes` still win.
    """
    tensors, source = read_hf_tensors(checkpoint)
    extra_targets = dict(extra_targets or {})
    claimed = tuple(extra_targets)
    ignore_prefixes = tuple(ignore_prefixes)
    found: dict[str, tuple[str, np.ndarray]] = {}  # canonical name -> (original name, array)
    duplicates = []
    for original, array in tensors.items():
        name = canonical_name(original)
        if name.startswith(ignore_prefixes) or (name.startswith(_IGNORED_PREFIXES) and not name.startswith(claimed)):
            continue
        if name in found:
            duplicates.append(f"{found[name][0]} and {original}")
        found[name] = (original, np.asarray(array))

    targets = weight_targets(encoder)
    for prefix, extra in extra_targets.items():
        outside = [n for n in extra if not n.startswith(prefix) or n in targets]
        if outside:
            raise ValueError(f"extra targets {outside} are not under {prefix!r} or clash with encoder weights.")
        targets.update(extra)
    problems = []
    if duplicates:
        problems.append("duplicated tensors: " + "; ".join(duplicates))
    missing = sorted(set(targets) - set(found))
    if missing:
        problems.append("missing tensors: " + ", ".join(f"{n} (expected shape {targets[n].hf_shape})"
                                                         for n in missing))
    unexpected = sorted(set(found) - set(targets))
    if unexpected:
        problems.append("unexpected tensors: " + ", ".join(
            f"{found[n][0]} (shape {tuple(found[n][1].shape)})" for n in unexpected))
    misshaped = [n for n in sorted(set(found) & set(targets))
                 if tuple(found[n][1].shape) != tuple(targets[n].hf_shape)]
    if misshaped:
        problems.append("mis-shaped tensors: " + ", ".join(
            f"{found[n][0]} has shape {tuple(found[n][1].shape)}, expected {targets[n].hf_shape}"
            for n in misshaped))
    if problems:
        raise CheckpointError(f"checkpoint {source} does not match encoder {encoder.name!r}: "
                              + "; ".join(problems) + ".")

    # Everything matched: assign all at once (float16/float64 checkpoints are cast to the variable dtype).
    for name, target in targets.items():
        value = target.convert(found[name][1])
        target.variable.assign(value.astype(target.variable.dtype.as_numpy_dtype))
    return encoder


def _require_files(checkpoint_dir: Union[str, os.PathLike], files: Iterable[str]) -> Path:
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist.")
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint folder {folder} lacks {', '.join(missing)}.")
    return folder


def load_pretrained(checkpoint_dir: Union[str, os.PathLike], name: str = "bert_encoder",
                    ignore_prefixes: Iterable[str] = ()) -> keras.Model:
    """Builds the encoder described by `checkpoint_dir/config.json` and loads `model.safetensors` into it."""
    folder = _require_files(checkpoint_dir, (bert.CONFIG_FILE, WEIGHTS_FILE))
    config = bert.BertConfig.from_hf_config(folder / bert.CONFIG_FILE)
    encoder = bert.build_encoder(config, name=name)
    return load_hf_weights(encoder, folder / WEIGHTS_FILE, ignore_prefixes=ignore_prefixes)


def checkpoint_tokenizer_settings(checkpoint_dir: Union[str, os.PathLike]) -> tuple[Path, bool]:
    """(vocab.txt path, lower_case) of a checkpoint; lower_case is `do_lower_case` from
    tokenizer_config.json, True when the file or the key is absent (as for the original uncased BERT)."""
    folder = _require_files(checkpoint_dir, (VOCAB_FILE,))
    path = folder / TOKENIZER_CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return folder / VOCAB_FILE, tokenizer_config.lower_case(config)


def read_vocab(checkpoint_dir: Union[str, os.PathLike]) -> list[str]:
    """The WordPiece vocabulary of a checkpoint, one token per line of vocab.txt (line number = id)."""
    vocab_path, _ = checkpoint_tokenizer_settings(checkpoint_dir)
    with open(vocab_path, encoding="utf-8") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]


__all__ = [
    "CheckpointError", "Target", "VOCAB_FILE", "WEIGHTS_FILE", "canonical_name",
    "checkpoint_tokenizer_settings", "identity", "load_hf_weights", "load_pretrained", "num_layers", "read_hf_tensors",
    "read_vocab", "weight_targets",
]
