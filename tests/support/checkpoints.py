"""Hugging Face-format BERT checkpoints for tests: random tensors named and shaped like BertModel's, written as a
checkpoint folder the project's loader reads."""

import json
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
from safetensors.numpy import save_file

from components.model import bert


def hf_tensors(config: bert.BertConfig, seed: int = 0) -> dict:
    """Random tensors named and shaped like a Hugging Face BertModel checkpoint of `config`."""
    rng = np.random.default_rng(seed)
    h, f = config.hidden_size, config.intermediate_size
    shapes = {
        "embeddings.word_embeddings.weight": (config.vocab_size, h),
        "embeddings.position_embeddings.weight": (config.max_position_embeddings, h),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
        "pooler.dense.weight": (h, h), "pooler.dense.bias": (h,),
    }
    for i in range(config.num_layers):
        p = f"encoder.layer.{i}"
        for which in ("query", "key", "value"):
            shapes[f"{p}.attention.self.{which}.weight"] = (h, h)
            shapes[f"{p}.attention.self.{which}.bias"] = (h,)
        shapes.update({
            f"{p}.attention.output.dense.weight": (h, h), f"{p}.attention.output.dense.bias": (h,),
            f"{p}.attention.output.LayerNorm.weight": (h,), f"{p}.attention.output.LayerNorm.bias": (h,),
            f"{p}.intermediate.dense.weight": (f, h), f"{p}.intermediate.dense.bias": (f,),
            f"{p}.output.dense.weight": (h, f), f"{p}.output.dense.bias": (h,),
            f"{p}.output.LayerNorm.weight": (h,), f"{p}.output.LayerNorm.bias": (h,),
        })
    tensors = {k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in shapes.items()}
    tensors["embeddings.position_ids"] = np.arange(config.max_position_embeddings, dtype=np.int64)[None]
    return tensors


def mlm_head_tensors(config: bert.BertConfig, seed: int = 1) -> dict:
    """Random tensors named and shaped like BertForMaskedLM's `cls.predictions` head of `config`, without the
    decoder matrix (tied to the word embeddings; HF's safetensors files store it once)."""
    rng = np.random.default_rng(seed)
    h = config.hidden_size
    shapes = {
        "cls.predictions.transform.dense.weight": (h, h), "cls.predictions.transform.dense.bias": (h,),
        "cls.predictions.transform.LayerNorm.weight": (h,), "cls.predictions.transform.LayerNorm.bias": (h,),
        "cls.predictions.bias": (config.vocab_size,),
    }
    return {k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in shapes.items()}


def write_checkpoint(folder: Path, config: bert.BertConfig, tensors: dict, vocab: Optional[Path] = None) -> Path:
    """A Hugging Face-format checkpoint folder: config.json (dropout included), model.safetensors and, when given, a
    copy of the vocabulary file."""
    folder.mkdir(parents=True, exist_ok=True)
    hf_config = {
        "model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute",
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_size,
        "max_position_embeddings": config.max_position_embeddings,
        "hidden_dropout_prob": config.hidden_dropout, "attention_probs_dropout_prob": config.attention_dropout,
    }
    (folder / "config.json").write_text(json.dumps(hf_config))
    save_file(tensors, str(folder / "model.safetensors"))
    if vocab is not None:
        shutil.copyfile(vocab, folder / "vocab.txt")
    return folder
