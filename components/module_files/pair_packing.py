"""Two texts as one BERT input: `[CLS] a [SEP] b [SEP]`, segment (token type) ids 0 up to and including the first
[SEP] and 1 after it, inside the TensorFlow graph (the Transform module's, so serving packs alike).

A pair longer than the model's room is cut as the reference tokenizers' `longest_first` cuts it (Hugging Face
`tokenizers`, utils/truncation.rs), which is what the pretrained checkpoints' own tokenizers do: `pair_lengths`. It is
not BERT's original `_truncate_seq_pair`, which pops one token at a time from the longer text and from the second on a
tie; the two differ on ties and when the second text is the longer (tests/fixtures/pair_encoding_reference.json holds
real pairs of each case, and tests/unit/test_pair_packing.py the parity).

tensorflow-text's trimmers (`WaterfallTrimmer`, `RoundRobinTrimmer`) are not used: neither cuts as `longest_first`
does, and `RoundRobinTrim` is an op the stock TF Serving image lacks (components/release/serving_ops.py). Everything
here is core TensorFlow (RaggedRange, GatherV2, ConcatV2 and arithmetic).
"""

from __future__ import annotations

import tensorflow as tf

from components import features

# [CLS], the [SEP] after the first text and the [SEP] after the second.
PAIR_SPECIAL_TOKENS = 3


def pair_lengths(len_a: tf.Tensor, len_b: tf.Tensor, budget: int) -> tuple[tf.Tensor, tf.Tensor]:
    """How many tokens of each text a pair keeps within `budget` text tokens, int64 `[batch]` each.

    `longest_first`: a pair that fits keeps everything. Otherwise, with s the shorter length, the shorter text keeps
    s and the longer `budget - s`; when both texts are over half the budget, the shorter keeps `budget // 2` and the
    longer the rest, so on an odd budget the longer gets the odd token (on a tie, the second text: BERT's original
    code gives it to the first).
    """
    len_a = tf.cast(len_a, tf.int64)
    len_b = tf.cast(len_b, tf.int64)
    budget = tf.constant(budget, tf.int64)
    shorter = tf.minimum(len_a, len_b)
    # the longer keeps what the shorter leaves, but never fewer than the shorter keeps
    longer = tf.maximum(shorter, budget - shorter)
    # both over half the budget: the shorter gets half, the longer the rest (the odd token)
    over = shorter + longer > budget
    half = budget // 2
    shorter = tf.where(over, half, shorter)
    longer = tf.where(over, budget - half, longer)
    a_longer = len_a > len_b  # a tie counts the second text as the longer
    keep_a = tf.where(a_longer, longer, shorter)
    keep_b = tf.where(a_longer, shorter, longer)
    return tf.minimum(len_a, keep_a), tf.minimum(len_b, keep_b)


def keep_tokens(ids: tf.RaggedTensor, keep: tf.Tensor, truncation: str = "head") -> tf.RaggedTensor:
    """Each row cut to `keep[row]` tokens (features.TRUNCATIONS): its first ones ("head"), or the first quarter of
    that room and then its last tokens ("head_tail", as wordpiece.truncate does for one text). A row that fits is kept
    whole."""
    if truncation not in features.TRUNCATIONS:
        raise ValueError(f"truncation must be one of {features.TRUNCATIONS}; got {truncation!r}")
    keep = tf.minimum(tf.cast(keep, tf.int64), ids.row_lengths())
    starts = tf.expand_dims(ids.row_starts(), 1)
    if truncation == "head":
        positions = tf.ragged.range(keep)
    else:
        head = keep // 4
        lengths = ids.row_lengths()
        tail_start = lengths - (keep - head)
        positions = tf.concat([tf.ragged.range(head), tf.ragged.range(tail_start, lengths)], axis=1)
    return tf.RaggedTensor.from_row_lengths(tf.gather(ids.flat_values, (positions + starts).flat_values),
                                            positions.row_lengths())


def pack_pair(ids_a: tf.RaggedTensor, ids_b: tf.RaggedTensor, max_seq_length: int, cls_id: int, sep_id: int,
              truncation: str = "head") -> dict[str, tf.Tensor]:
    """Two `[batch, (wordpiece ids)]` -> the three BERT inputs, int64 `[batch, max_seq_length]`, padded with 0.

    How many tokens of each text stay is `pair_lengths` of the room left by the three special tokens; which ones,
    `truncation` (`keep_tokens`)."""
    keep_a, keep_b = pair_lengths(ids_a.row_lengths(), ids_b.row_lengths(), max_seq_length - PAIR_SPECIAL_TOKENS)
    a = keep_tokens(ids_a, keep_a, truncation)
    b = keep_tokens(ids_b, keep_b, truncation)
    batch = ids_a.nrows()
    cls = tf.fill([batch, 1], tf.constant(cls_id, tf.int64))
    sep = tf.fill([batch, 1], tf.constant(sep_id, tf.int64))
    first = tf.concat([cls, a, sep], axis=1)
    second = tf.concat([b, sep], axis=1)
    ids = tf.concat([first, second], axis=1)
    types = tf.concat([tf.zeros_like(first), tf.ones_like(second)], axis=1)
    shape = [None, max_seq_length]
    return {
        features.WORD_IDS_KEY: ids.to_tensor(default_value=0, shape=shape),
        features.MASK_KEY: tf.ones_like(ids).to_tensor(default_value=0, shape=shape),
        features.TYPE_IDS_KEY: types.to_tensor(default_value=0, shape=shape),
    }
