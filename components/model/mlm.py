"""The masked-language-model (MLM) head of BERT, its loss and accuracy, and its Hugging Face checkpoint I/O.

Public API:

* `MaskedLMHead` – Hugging Face `BertForMaskedLM`'s `cls.predictions`: dense (hidden -> hidden) + exact erf GELU +
  LayerNorm, then a decoder *tied* to the encoder's word-embedding matrix (logits = h @ E^T + bias; the head owns
  no decoder matrix, only the output bias [vocab]). Tying halves the parameters a vocabulary costs and is what the
  pretrained checkpoints were trained with.
* `build_head(encoder, config)`, `build_pretraining_model(encoder, head, max_predictions)` – encoder -> logits
  [batch, max_predictions, vocab] at the masked positions only: the sequence output is gathered at
  `masked_lm_positions` *before* the head, because the vocabulary projection (hidden x vocab per position) is the
  expensive part and only ~15% of positions have a label.
* `masked_lm_loss(labels, logits, weights)`, `masked_lm_accuracy(labels, logits, weights)` – sparse cross-entropy
  and accuracy averaged over the real predictions (weight 1.0), as components/model/masking.py lays them out.
* `load_mlm_weights(encoder, head, checkpoint)` / `load_pretrained_mlm(checkpoint_dir)` – Hugging Face weights for
  encoder *and* head, with hf_checkpoint.py's all-or-nothing accounting extended to `cls.predictions.*`. A checkpoint
  without any `cls.predictions.*` tensor (the packaged all-MiniLM-L6-v2 is a sentence encoder and has none) loads
  the encoder and leaves the head initialised; the returned note says which happened.
* `export_hf_checkpoint(folder, encoder, config, vocab_file, lower_case, head=None)` – the exact inverse of the
  loader: config.json, model.safetensors (HF names, `cls.predictions.*` when a head is given), vocab.txt and
  tokenizer_config.json. The fine-tuning Trainer's `pretrained_dir` can point at the folder: the encoder loader
  ignores `cls.*`, so an adapted encoder is fine-tuned from exactly the exported weights.
"""

from __future__ import annotations

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

import json
import os
from pathlib import Path
from typing import Mapping, NamedTuple, Optional, Union

import numpy as np
import tensorflow as tf
import tf_keras as keras

from components.model import bert, hf_checkpoint
from components.model.masking import MASKED_POSITIONS_KEY
from components.model.tokenizer_config import TOKENIZER_CONFIG_FILE

HEAD_PREFIX = "cls.predictions."
_DECODER_WEIGHT = "cls.predictions.decoder.weight"
_DECODER_BIAS = "cls.predictions.decoder.bias"
_OUTPUT_BIAS = "cls.predictions.bias"
_WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
_WORD_EMBEDDINGS_LAYER = "embeddings/word_embeddings"
_TOKENIZER_CONFIG = {"tokenizer_class": "BertTokenizer"}


@keras.saving.register_keras_serializable(package="bert_tfx")
class MaskedLMHead(keras.layers.Layer):
    """[..., hidden] hidden states -> [..., vocab] float32 logits, with the decoder tied to `word_embeddings`.

    `word_embeddings` is the encoder's Embedding layer; its matrix is read at every call (not copied), so training
    the head trains the embeddings, as in BERT. Sub-layers `transform` (Dense) and `layer_norm` and the weight
    `output_bias` are what `head_targets` maps onto `cls.predictions.*`.
    """

    def __init__(self, word_embeddings: keras.layers.Embedding, layer_norm_eps: float = 1e-12,
                 initializer_range: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.word_embeddings = word_embeddings
        self.vocab_size = int(word_embeddings.input_dim)
        self.hidden_size = int(word_embeddings.output_dim)
        self.layer_norm_eps = float(layer_norm_eps)
        self.initializer_range = float(initializer_range)
        self.transform = keras.layers.Dense(
            self.hidden_size, kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
            name="transform")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps, name="layer_norm")

    def build(self, input_shape):
        self.transform.build(tf.TensorShape([None, self.hidden_size]))
        self.layer_norm.build(tf.TensorShape([None, self.hidden_size]))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros",
                                           trainable=True)
        super().build(input_shape)

    def call(self, hidden):
        # Computed on [n, hidden] rows (the sub-layers are built for rank 2), whatever the leading dimensions.
        leading = tf.shape(hidden)[:-1]
        x = tf.reshape(hidden, [-1, self.hidden_size])
        x = keras.activations.gelu(self.transform(x), approximate=False)  # exact erf GELU, as HF's "gelu"
        x = self.layer_norm(x)
        table = tf.cast(self.word_embeddings.embeddings, x.dtype)
        logits = tf.matmul(x, table, transpose_b=True) + tf.cast(self.output_bias, x.dtype)
        return tf.reshape(tf.cast(logits, tf.float32), tf.concat([leading, [self.vocab_size]], axis=0))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.vocab_size])

    def get_config(self):
        # The tied embedding layer is not serialisable by config; the head is saved with its model's weights and
        # exported as a checkpoint (export_hf_checkpoint), not rebuilt from a config.
        raise NotImplementedError("MaskedLMHead is tied to an encoder's embeddings; rebuild it with build_head.")


@keras.saving.register_keras_serializable(package="bert_tfx")
class GatherPositions(keras.layers.Layer):
    """([batch, seq, hidden], [batch, P] positions) -> [batch, P, hidden]: the hidden states at the positions."""

    def call(self, inputs):
        sequence, positions = inputs
        return tf.gather(sequence, tf.cast(positions, tf.int32), batch_dims=1)


def word_embedding_layer(encoder: keras.Model) -> keras.layers.Embedding:
    """The encoder's word-embedding layer (built by bert.build_encoder), which the head's decoder reuses."""
    try:
        return encoder.get_layer(_WORD_EMBEDDINGS_LAYER)
    except ValueError as e:
        raise ValueError(f"encoder {encoder.name!r} has no layer {_WORD_EMBEDDINGS_LAYER!r}; was it built by "
                         "bert.build_encoder?") from e


def build_head(encoder: keras.Model, config: bert.BertConfig, name: str = "mlm_head") -> MaskedLMHead:
    """A freshly initialised head for `encoder` (as HF initialises it: N(0, initializer_range) truncated dense,
    LayerNorm 1/0, output bias 0), built so its weights exist before loading."""
    head = MaskedLMHead(word_embedding_layer(encoder), config.layer_norm_eps, config.initializer_range, name=name)
    head.build(tf.TensorShape([None, config.hidden_size]))
    return head


def build_pretraining_model(encoder: keras.Model, head: MaskedLMHead, name: str = "bert_mlm") -> keras.Model:
    """Encoder + head as a functional model: the three BERT inputs and `masked_lm_positions` [batch, P] (int32)
    -> logits [batch, P, vocab] at those positions only."""
    inputs = {key: keras.Input(shape=(None,), dtype=tf.int32, name=key) for key in bert.INPUT_NAMES}
    inputs[MASKED_POSITIONS_KEY] = keras.Input(shape=(None,), dtype=tf.int32, name=MASKED_POSITIONS_KEY)
    sequence = encoder({key: inputs[key] for key in bert.INPUT_NAMES})
    gathered = GatherPositions(name="gather_masked_positions")([sequence, inputs[MASKED_POSITIONS_KEY]])
    logits = head(gathered)
    return keras.Model(inputs=inputs, outputs=logits, name=name)


def masked_lm_loss(labels: tf.Tensor, logits: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Mean sparse cross-entropy over the real predictions: sum(w * ce) / sum(w) (0 when there is none)."""
    weights = tf.cast(weights, tf.float32)
    ce = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return tf.math.divide_no_nan(tf.reduce_sum(ce * weights), tf.reduce_sum(weights))


def masked_lm_accuracy(labels: tf.Tensor, logits: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Share of real predictions whose most likely token is the original one."""
    weights = tf.cast(weights, tf.float32)
    hit = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int64), tf.cast(labels, tf.int64)), tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(hit * weights), tf.reduce_sum(weights))


# --------------------------------------------------------------------------------------------------------
# Hugging Face checkpoints
# --------------------------------------------------------------------------------------------------------


def head_targets(head: MaskedLMHead) -> dict[str, hf_checkpoint.Target]:
    """Every `cls.predictions.*` tensor name (LayerNorm as weight/bias) -> the head weight it loads into.

    The decoder matrix is not a target: it is the word-embedding matrix (checked by `load_mlm_weights`).
    """
    kernel, bias = head.transform.kernel, head.transform.bias
    target, same = hf_checkpoint.Target, hf_checkpoint.identity
    return {
        # torch Linear weight is (out, in); the Dense kernel is (in, out).
        "cls.predictions.transform.dense.weight": target(kernel, (kernel.shape[1], kernel.shape[0]), lambda a: a.T),
        "cls.predictions.transform.dense.bias": target(bias, tuple(bias.shape), same),
        "cls.predictions.transform.LayerNorm.weight": target(head.layer_norm.gamma, tuple(head.layer_norm.gamma.shape),
                                                             same),
        "cls.predictions.transform.LayerNorm.bias": target(head.layer_norm.beta, tuple(head.layer_norm.beta.shape),
                                                           same),
        _OUTPUT_BIAS: target(head.output_bias, tuple(head.output_bias.shape), same),
    }


def load_mlm_weights(encoder: keras.Model, head: MaskedLMHead,
                     checkpoint: Union[str, os.PathLike, Mapping[str, np.ndarray]]) -> str:
    """Loads a Hugging Face BERT checkpoint into `encoder` and `head` (in place); returns a one-line note saying
    whether the head was loaded or initialised.

    With any `cls.predictions.*` tensor present, the head's five tensors are accounted for exactly like the
    encoder's (missing, unexpected or mis-shaped ones raise CheckpointError naming them; nothing is assigned
    unless encoder and head both match). `cls.predictions.decoder.weight`, when present, must equal the word
    embeddings (the head's decoder *is* that matrix); `cls.predictions.decoder.bias` (old checkpoints store the
    output bias twice) must equal `cls.predictions.bias`. The next-sentence head (`cls.seq_relationship.*`) and the
    pooler are ignored. Without any `cls.predictions.*` tensor, only the encoder is loaded.
    """
    tensors, source = hf_checkpoint.read_hf_tensors(checkpoint)
    # canonical -> original name (the loader reports duplicates)
    by_name = {hf_checkpoint.canonical_name(k): k for k in tensors}
    if not any(name.startswith(HEAD_PREFIX) for name in by_name):
        hf_checkpoint.load_hf_weights(encoder, checkpoint)
        return (f"{source} has no masked-LM head (no cls.predictions.* tensors): the encoder was loaded and the MLM "
                "head initialised (random transform, LayerNorm 1/0, zero output bias; decoder tied to the word "
                "embeddings).")

    def array(name):
        return np.asarray(tensors[by_name[name]])

    if _DECODER_WEIGHT in by_name and _WORD_EMBEDDINGS in by_name:
        decoder, embeddings = array(_DECODER_WEIGHT), array(_WORD_EMBEDDINGS)
        if decoder.shape != embeddings.shape or not np.array_equal(decoder, embeddings):
            raise hf_checkpoint.CheckpointError(
                f"checkpoint {source}: {by_name[_DECODER_WEIGHT]} (shape {decoder.shape}) is not the word-embedding "
                f"matrix {by_name[_WORD_EMBEDDINGS]} (shape {embeddings.shape}): its decoder is not tied, and this "
                "head's decoder is the word embeddings.")
    renamed = None
    if _DECODER_BIAS in by_name:
        if _OUTPUT_BIAS in by_name:
            a, b = array(_DECODER_BIAS), array(_OUTPUT_BIAS)
            if a.shape != b.shape or not np.array_equal(a, b):
                raise hf_checkpoint.CheckpointError(
                    f"checkpoint {source}: {by_name[_DECODER_BIAS]} differs from {by_name[_OUTPUT_BIAS]}; both are "
                    "the output bias in BertForMaskedLM and must be equal.")
        else:  # only the decoder's alias of the output bias was saved: load it as the output bias
            renamed = {k: v for k, v in tensors.items() if k != by_name[_DECODER_BIAS]}
            renamed[_OUTPUT_BIAS] = tensors[by_name[_DECODER_BIAS]]
    hf_checkpoint.load_hf_weights(encoder, renamed if renamed is not None else checkpoint,
                         ignore_prefixes=("cls.predictions.decoder.",),
                         extra_targets={HEAD_PREFIX: head_targets(head)})
    return f"loaded the encoder and the masked-LM head (cls.predictions.*) from {source}."


class PretrainedMLM(NamedTuple):
    config: bert.BertConfig
    encoder: keras.Model
    head: MaskedLMHead
    note: str  # whether the head was loaded or initialised


def load_pretrained_mlm(checkpoint_dir: Union[str, os.PathLike], name: str = "bert_encoder") -> PretrainedMLM:
    """Encoder and MLM head described by `checkpoint_dir/config.json`, with the weights of model.safetensors."""
    folder = Path(checkpoint_dir)
    for required in (bert.CONFIG_FILE, hf_checkpoint.WEIGHTS_FILE):
        if not (folder / required).is_file():
            raise hf_checkpoint.CheckpointError(f"checkpoint folder {folder} lacks {required}.")
    config = bert.BertConfig.from_hf_config(folder / bert.CONFIG_FILE)
    encoder = bert.build_encoder(config, name=name)
    head = build_head(encoder, config)
    note = load_mlm_weights(encoder, head, folder / hf_checkpoint.WEIGHTS_FILE)
    return PretrainedMLM(config, encoder, head, note)


def _to_hf_layout(target: hf_checkpoint.Target) -> np.ndarray:
    """The variable's value in the checkpoint's layout: the loader's conversion (a transpose/reshape, i.e. a
    permutation of elements) applied to element indices says where each element came from; put it back there."""
    hf_size = int(np.prod(target.hf_shape, dtype=np.int64))
    source_index = np.asarray(target.convert(np.arange(hf_size).reshape(target.hf_shape))).ravel()
    if source_index.size != hf_size or not np.array_equal(np.sort(source_index), np.arange(hf_size)):
        raise ValueError(f"the loader's conversion for {target.variable.name} is not a permutation; cannot invert it.")
    value = target.variable.numpy().ravel()
    out = np.empty(hf_size, value.dtype)
    out[source_index] = value
    return out.reshape(target.hf_shape)


def _check_config(encoder: keras.Model, config: bert.BertConfig) -> None:
    """`config` must describe `encoder`, or the exported config.json would build a different model."""
    emb = word_embedding_layer(encoder)
    attention = encoder.get_layer("layer_0/attention") if config.num_layers else None
    actual = {
        "vocab_size": emb.input_dim, "hidden_size": emb.output_dim, "num_layers": hf_checkpoint.num_layers(encoder),
        "max_position_embeddings": encoder.get_layer("embeddings/position_embeddings").max_length,
        "type_vocab_size": encoder.get_layer("embeddings/token_type_embeddings").input_dim,
        "intermediate_size": encoder.get_layer("layer_0/intermediate").units if attention else None,
        "num_heads": attention._num_heads if attention else None,
    }
    wrong = [f"{k}={getattr(config, k)} (encoder: {v})" for k, v in actual.items()
             if v is not None and getattr(config, k) != v]
    if wrong:
        raise ValueError(f"config does not describe encoder {encoder.name!r}: {', '.join(wrong)}.")


def hf_config_dict(config: bert.BertConfig, with_head: bool) -> dict:
    """config.json of a Hugging Face BertModel / BertForMaskedLM for `config` (read back by BertConfig.from_hf_config
    to an equal BertConfig)."""
    return {
        "architectures": ["BertForMaskedLM" if with_head else "BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_size,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "hidden_dropout_prob": config.hidden_dropout,
        "attention_probs_dropout_prob": config.attention_dropout,
        "layer_norm_eps": config.layer_norm_eps,
        "initializer_range": config.initializer_range,
        "tie_word_embeddings": True,
    }


def export_hf_checkpoint(folder: Union[str, os.PathLike], encoder: keras.Model, config: bert.BertConfig,
                         vocab_file: Union[str, os.PathLike], lower_case: bool = True,
                         head: Optional[MaskedLMHead] = None) -> Path:
    """Writes `encoder` (and `head`) as a Hugging Face checkpoint folder; returns the folder.

    model.safetensors holds float32 tensors under the names the loader reads: BertModel names without a head,
    BertForMaskedLM names (`bert.` + encoder names, `cls.predictions.*`) with one. The tied decoder matrix is not
    written twice (as HF's safetensors files do not): it is the word embeddings. No pooler is written (the
    classifier pools itself; HF's BertModel would initialise one). Loading the folder with `load_mlm_weights` or
    `hf_checkpoint.load_pretrained` gives back exactly these weights.
    """
    from safetensors.numpy import save_file

    _check_config(encoder, config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "bert." if head is not None else ""
    tensors = {prefix + name: _to_hf_layout(t) for name, t in hf_checkpoint.weight_targets(encoder).items()}
    if head is not None:
        if head.word_embeddings is not word_embedding_layer(encoder):
            raise ValueError("the head is tied to another encoder's word embeddings; build it with "
                             "build_head(encoder).")
        tensors.update({name: _to_hf_layout(t) for name, t in head_targets(head).items()})
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    save_file(tensors, str(folder / hf_checkpoint.WEIGHTS_FILE), metadata={"format": "pt"})
    (folder / bert.CONFIG_FILE).write_text(json.dumps(hf_config_dict(config, head is not None), indent=2) + "\n")
    vocab = Path(vocab_file).read_bytes()
    (folder / hf_checkpoint.VOCAB_FILE).write_bytes(vocab)
    (folder / TOKENIZER_CONFIG_FILE).write_text(
        json.dumps({**_TOKENIZER_CONFIG, "do_lower_case": bool(lower_case)}, indent=2) + "\n")
    return folder


__all__ = ["GatherPositions", "HEAD_PREFIX", "MaskedLMHead", "PretrainedMLM", "build_head", "build_pretraining_model",
           "export_hf_checkpoint", "head_targets", "hf_config_dict", "load_mlm_weights", "load_pretrained_mlm",
           "masked_lm_accuracy", "masked_lm_loss", "word_embedding_layer"]
