"""The project's BERT encoder in Keras 2 (tf_keras): only the model (components/model/hf_checkpoint.py loads weights).

Public API (usable from a notebook):

* `BertConfig` / `BertConfig.from_hf_config(...)`, `PRESETS`, `preset_config(...)` – encoder hyper-parameters.
* `build_encoder(config)` – a functional `tf_keras.Model` that maps
  `{"input_word_ids", "input_mask", "input_type_ids"}` ([batch, seq] int32; int64 is accepted and cast)
  to the sequence output [batch, seq, hidden] float32. Same architecture as Hugging Face `BertModel`
  (post-LN, learned absolute positions, exact erf GELU), so pretrained weights reproduce it numerically.
* `pool(sequence_output, input_mask, mode)` – 'cls' or 'mean' pooling for the classification head.

The encoder is built from stock tf_keras layers (Embedding, LayerNormalization, Dropout, Dense,
MultiHeadAttention) plus one small serializable layer (`PositionEmbedding`), so a model containing it can be
exported with `tf.saved_model.save` / `model.save(save_format="tf")` and served by TF Serving: only TF ops.
"""

from __future__ import annotations

import os

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Union

import tensorflow as tf
import tf_keras as keras

from components.model.presets import PRESETS

# Names of the encoder's inputs (the trainer and the serving signature use the same names).
INPUT_WORD_IDS = "input_word_ids"
INPUT_MASK = "input_mask"
INPUT_TYPE_IDS = "input_type_ids"
INPUT_NAMES = (INPUT_WORD_IDS, INPUT_MASK, INPUT_TYPE_IDS)

CONFIG_FILE = "config.json"


# --------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02

    def __post_init__(self):
        for field in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                      "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"BertConfig.{field} must be a positive integer, got {value!r}.")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_heads ({self.num_heads}).")
        for field in ("hidden_dropout", "attention_dropout"):
            value = getattr(self, field)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"BertConfig.{field} must be in [0, 1), got {value!r}.")
        if self.layer_norm_eps <= 0 or self.initializer_range <= 0:
            raise ValueError("BertConfig.layer_norm_eps and initializer_range must be positive.")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_hf_config(cls, path_or_dict: Union[str, os.PathLike, Mapping[str, Any]]) -> "BertConfig":
        """Reads a Hugging Face BERT `config.json` (a path to the file or its folder, or the parsed dict).

        Only plain `BertModel` configurations are accepted: post-LN, learned absolute positions, exact GELU,
        encoder-only. Anything else raises ValueError, because loading its weights into this architecture
        would silently compute something different.
        """
        if isinstance(path_or_dict, Mapping):
            cfg, where = dict(path_or_dict), "the given config"
        else:
            path = Path(path_or_dict)
            if path.is_dir():
                path = path / CONFIG_FILE
            if not path.is_file():
                raise ValueError(f"no Hugging Face config at {path}.")
            with open(path, encoding="utf-8") as f:
                cfg = json.load(f)
            where = str(path)

        model_type = cfg.get("model_type")
        architectures = cfg.get("architectures") or []
        if model_type is None:
            # Very old configs have no model_type; accept them only when they name a BERT architecture.
            if not architectures or not all(str(a).startswith("Bert") for a in architectures):
                raise ValueError(f"{where} has no model_type and does not name a Bert architecture; "
                                 "only model_type 'bert' is supported.")
        elif model_type != "bert":
            # e.g. roberta (position offset), albert (factorised embeddings), megatron-bert (pre-LN).
            raise ValueError(f"{where} has model_type {model_type!r}; only 'bert' (post-LN BertModel) "
                             "is supported.")
        hidden_act = cfg.get("hidden_act", "gelu")
        if hidden_act != "gelu":
            raise ValueError(f"{where} uses hidden_act {hidden_act!r}; only 'gelu' (exact erf GELU) "
                             "is supported.")
        position_type = cfg.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ValueError(f"{where} uses position_embedding_type {position_type!r}; only 'absolute' "
                             "(learned absolute positions) is supported.")
        for flag in ("is_decoder", "add_cross_attention", "pre_layer_norm", "normalize_before"):
            if cfg.get(flag):
                raise ValueError(f"{where} sets {flag}=true; only an encoder-only, post-LN BERT is supported.")
        if cfg.get("embedding_size") not in (None, cfg.get("hidden_size")):
            raise ValueError(f"{where} has embedding_size {cfg['embedding_size']} != hidden_size "
                             f"{cfg.get('hidden_size')}; factorised embeddings are not supported.")

        required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        missing = [k for k in required if k not in cfg]
        if missing:
            raise ValueError(f"{where} lacks required keys: {', '.join(missing)}.")
        return cls(
            vocab_size=int(cfg["vocab_size"]),
            hidden_size=int(cfg["hidden_size"]),
            num_layers=int(cfg["num_hidden_layers"]),
            num_heads=int(cfg["num_attention_heads"]),
            intermediate_size=int(cfg["intermediate_size"]),
            max_position_embeddings=int(cfg.get("max_position_embeddings", 512)),
            type_vocab_size=int(cfg.get("type_vocab_size", 2)),
            hidden_dropout=float(cfg.get("hidden_dropout_prob", 0.1)),
            attention_dropout=float(cfg.get("attention_probs_dropout_prob", 0.1)),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
            initializer_range=float(cfg.get("initializer_range", 0.02)),
        )


def preset_config(name: str, vocab_size: int, max_position_embeddings: int = 512, **overrides) -> BertConfig:
    """The BertConfig of preset `name` (see PRESETS) for a given vocabulary; `overrides` set other fields."""
    if name not in PRESETS:
        raise ValueError(f"unknown BERT preset {name!r}; known presets: {', '.join(PRESETS)}.")
    kwargs = dict(PRESETS[name], vocab_size=vocab_size, max_position_embeddings=max_position_embeddings)
    kwargs.update(overrides)
    return BertConfig(**kwargs)


# --------------------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="bert_tfx")
class PositionEmbedding(keras.layers.Layer):
    """Learned absolute position embeddings: returns table[:seq_len] as [1, seq_len, width].

    Called on the word embeddings [batch, seq, width] only to read the (possibly dynamic) sequence length.
    """

    def __init__(self, max_length: int, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.max_length = int(max_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.embeddings = self.add_weight(name="embeddings", shape=(self.max_length, width),
                                          initializer=self.initializer, trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        seq_len = tf.shape(inputs)[1]
        # Longer inputs would silently get a truncated table (and a confusing broadcast error); fail clearly.
        check = tf.debugging.assert_less_equal(
            seq_len, self.max_length,
            message=f"sequence is longer than max_position_embeddings={self.max_length}")
        with tf.control_dependencies([check]):
            table = self.embeddings[:seq_len]
        return tf.cast(table, self.compute_dtype)[tf.newaxis]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([1, input_shape[1], input_shape[2]])

    def get_config(self):
        config = super().get_config()
        config.update(max_length=self.max_length, initializer=keras.initializers.serialize(self.initializer))
        return config


@keras.saving.register_keras_serializable(package="bert_tfx")
class KeyPaddingMask(keras.layers.Layer):
    """Turns input_mask [batch, seq] (1 = real token) into a boolean attention mask [batch, 1, seq].

    (A named layer rather than a Lambda, which would not serialise.) MultiHeadAttention broadcasts it over
    heads and query positions.
    """

    def call(self, inputs):
        return tf.cast(inputs, tf.bool)[:, tf.newaxis, :]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], 1, input_shape[1]])


def build_encoder(config: BertConfig, name: str = "bert_encoder") -> keras.Model:
    """Builds the BERT encoder as a functional tf_keras.Model (randomly initialised, like HF's init).

    Inputs: dict with `input_word_ids`, `input_mask` (1 = real token, 0 = padding), `input_type_ids`, each
    [batch, seq] int32 with dynamic seq. int64 tensors (as TF Transform produces) are accepted too: the
    functional model casts inputs to the declared int32 dtype. Output: sequence output [batch, seq, hidden]
    float32. Call with `training=False` for inference (disables dropout).

    Layer names are stable because `hf_checkpoint.load_hf_weights` maps checkpoint tensors onto them:
    embeddings/{word_embeddings,position_embeddings,token_type_embeddings,layer_norm},
    layer_{i}/{attention,attention_layer_norm,intermediate,output,output_layer_norm}.
    """
    init = lambda: keras.initializers.TruncatedNormal(stddev=config.initializer_range)  # noqa: E731
    word_ids = keras.Input(shape=(None,), dtype=tf.int32, name=INPUT_WORD_IDS)
    mask = keras.Input(shape=(None,), dtype=tf.int32, name=INPUT_MASK)
    type_ids = keras.Input(shape=(None,), dtype=tf.int32, name=INPUT_TYPE_IDS)

    # Embeddings: word + position + token type, then LayerNorm and dropout (as HF BertEmbeddings).
    word_emb = keras.layers.Embedding(config.vocab_size, config.hidden_size, embeddings_initializer=init(),
                                      name="embeddings/word_embeddings")(word_ids)
    pos_emb = PositionEmbedding(config.max_position_embeddings, initializer=init(),
                                name="embeddings/position_embeddings")(word_emb)
    type_emb = keras.layers.Embedding(config.type_vocab_size, config.hidden_size, embeddings_initializer=init(),
                                      name="embeddings/token_type_embeddings")(type_ids)
    x = keras.layers.Add(name="embeddings/add")([word_emb, pos_emb, type_emb])
    x = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="embeddings/layer_norm")(x)
    x = keras.layers.Dropout(config.hidden_dropout, name="embeddings/dropout")(x)

    # Key padding mask [batch, 1, seq]: every query position may attend to real tokens only. The attention
    # softmax broadcasts it over query positions and heads and adds a large negative to masked scores,
    # which gives the same probabilities as HF's additive finfo.min mask.
    attention_mask = KeyPaddingMask(name="attention_mask")(mask)

    for i in range(config.num_layers):
        prefix = f"layer_{i}"
        # Self-attention: q/k/v EinsumDense kernels [hidden, heads, head_size], output [heads, head_size,
        # hidden], all with bias; scores scaled by 1/sqrt(head_size) inside MultiHeadAttention.
        attn = keras.layers.MultiHeadAttention(
            num_heads=config.num_heads, key_dim=config.head_size, dropout=config.attention_dropout,
            kernel_initializer=init(), name=f"{prefix}/attention")(
                query=x, value=x, key=x, attention_mask=attention_mask)
        attn = keras.layers.Dropout(config.hidden_dropout, name=f"{prefix}/attention_dropout")(attn)
        x = keras.layers.Add(name=f"{prefix}/attention_residual")([x, attn])
        x = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps,
                                            name=f"{prefix}/attention_layer_norm")(x)
        # Feed-forward. tf_keras's "gelu" is the exact erf form (approximate=False), as HF's "gelu".
        h = keras.layers.Dense(config.intermediate_size, activation="gelu", kernel_initializer=init(),
                               name=f"{prefix}/intermediate")(x)
        h = keras.layers.Dense(config.hidden_size, kernel_initializer=init(), name=f"{prefix}/output")(h)
        h = keras.layers.Dropout(config.hidden_dropout, name=f"{prefix}/output_dropout")(h)
        x = keras.layers.Add(name=f"{prefix}/output_residual")([x, h])
        x = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps,
                                            name=f"{prefix}/output_layer_norm")(x)

    # Keep the output float32 even under a mixed-precision policy.
    sequence_output = keras.layers.Activation("linear", dtype=tf.float32, name="sequence_output")(x)
    return keras.Model(inputs={INPUT_WORD_IDS: word_ids, INPUT_MASK: mask, INPUT_TYPE_IDS: type_ids},
                       outputs=sequence_output, name=name)


def pool(sequence_output: tf.Tensor, input_mask: tf.Tensor, mode: str = "cls") -> tf.Tensor:
    """Pools [batch, seq, hidden] to [batch, hidden]: 'cls' takes position 0, 'mean' averages real tokens.

    Works on eager tensors and on Keras symbolic tensors (the TF ops become Keras op layers).
    """
    if mode == "cls":
        return sequence_output[:, 0, :]
    if mode == "mean":
        weights = tf.cast(input_mask, sequence_output.dtype)[:, :, tf.newaxis]  # [batch, seq, 1]
        total = tf.reduce_sum(sequence_output * weights, axis=1)
        count = tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)  # an all-padding row gives zeros, not NaN
        return total / count
    raise ValueError(f"unknown pooling mode {mode!r}; use 'cls' or 'mean'.")


__all__ = [
    "BertConfig", "CONFIG_FILE", "INPUT_NAMES", "KeyPaddingMask", "PositionEmbedding", "build_encoder",
    "pool", "preset_config",
]
