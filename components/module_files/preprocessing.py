"""TFX Transform module: BERT WordPiece tokenization of a raw text column, inside the TensorFlow graph.

`preprocessing_fn` turns the raw text column into the three fixed-length BERT inputs (`input_word_ids`,
`input_mask`, `input_type_ids`, int64 `[batch, max_seq_length]`); with two text columns (`--text-column a,b`), the
pair packed as `[CLS] a [SEP] b [SEP]` with segment ids 0 and 1, cut as pair_packing.py says. When the label column
is present, it turns the raw label into `label_id`, its position in the schema's label domain
(`DataSettings.label_names`, a fixed order); with several label columns, each into its own `label_id_<column>`
(components/tasks.py), -1 where the row has no value in that column. It also passes the text through (`raw_text`,
and a pair's second text as `raw_second_text`: the Trainer writes a few eval texts as TF Serving warm-up requests)
and counts words and pieces (components/validation/text_stats.py; a pair's counts are both texts', and each text's
under its column's name). Serving calls the same function without the label.

The tokenizer is wordpiece.py; a vocabulary learned from the training split (`--vocab learn`) is learned_vocab.py.
"""

from __future__ import annotations

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

from typing import Mapping, Sequence

import tensorflow as tf
import tensorflow_transform as tft

from components import features
from components.module_files.learned_vocab import learned_wordpiece_ids
from components.module_files.pair_packing import pack_pair
from components.module_files.wordpiece import build_tokenizer, to_bert_inputs
from components.settings.data import read_config
from components.settings.transform import TransformSettings


def text_statistics(words: tf.RaggedTensor, ids: tf.RaggedTensor, unk_id: int) -> dict[str, tf.Tensor]:
    """Per-example counts of the tokenized text before truncation, int64 `[batch]` (features.TEXT_STAT_KEYS)."""
    return {
        features.NUM_WORDS_KEY: words.row_lengths(),
        features.NUM_WORDPIECES_KEY: ids.row_lengths(),
        features.NUM_UNK_KEY: tf.reduce_sum(tf.cast(tf.equal(ids, unk_id), tf.int64), axis=1),
    }


def to_dense_strings(x) -> tf.Tensor:
    """A raw column as a `[batch]` string tensor, whatever TFT hands over.

    Dense `[batch]` or `[batch, k]` (a schema feature with a fixed shape), `tf.SparseTensor` (one without,
    e.g. a VarLenFeature) or `tf.RaggedTensor`: the values of one example are joined with a space, so a
    missing value becomes "". Non-string columns are formatted with `tf.strings.as_string`.
    """
    if isinstance(x, tf.SparseTensor):
        x = tf.RaggedTensor.from_sparse(x)
    if x.shape.rank not in (1, 2):
        raise ValueError(f"expected one value or a list of values per example, got shape {x.shape}.")
    if x.dtype != tf.string:
        x = tf.ragged.map_flat_values(tf.strings.as_string, x)
    if x.shape.rank == 1:
        return x
    return tf.strings.reduce_join(x, axis=1, separator=" ")


def preprocessing_fn(inputs: Mapping[str, tf.Tensor], custom_config: Mapping | None = None) -> dict:
    settings, data = read_config(TransformSettings, custom_config)
    columns = [to_dense_strings(inputs[column]) for column in data.text_columns]
    # A pair's two texts are tokenized as one batch (a learned vocabulary is learned from both), then parted again.
    texts = columns[0] if len(columns) == 1 else tf.concat(columns, axis=0)
    if data.vocab_mode == "learn":
        words, ids, cls_id, sep_id, unk_id = learned_wordpiece_ids(texts, data.lower_case, settings.learned_vocab_size)
    else:
        tokenizer = tft.make_and_track_object(
            lambda: build_tokenizer(data.vocab_file, data.lower_case), name="bert_wordpiece_tokenizer")
        words = tokenizer.split_words(texts)
        ids, cls_id, sep_id, unk_id = tokenizer.wordpiece(words), tokenizer.cls_id, tokenizer.sep_id, tokenizer.unk_id
    if len(columns) == 1:
        outputs = {**to_bert_inputs(ids, settings.max_seq_length, cls_id, sep_id, settings.truncation),
                   **text_statistics(words, ids, unk_id),
                   features.RAW_TEXT_KEY: columns[0]}
    else:
        batch = tf.shape(columns[0], out_type=tf.int64)[0]
        ids_a, ids_b = ids[:batch], ids[batch:]
        stats_a, stats_b = text_statistics(words[:batch], ids_a, unk_id), text_statistics(words[batch:], ids_b, unk_id)
        outputs = {**pack_pair(ids_a, ids_b, settings.max_seq_length, cls_id, sep_id, settings.truncation),
                   # the pair's counts are both texts' (its length, as the model reads it), and each text's its own
                   **{key: stats_a[key] + stats_b[key] for key in stats_a},
                   **{features.column_stat_key(key, column): stats[key] for column, stats in zip(
                       data.text_columns, (stats_a, stats_b)) for key in stats},
                   features.RAW_TEXT_KEY: columns[0], features.RAW_SECOND_TEXT_KEY: columns[1]}
    for task in data.tasks:
        if task.column not in inputs:  # serving: no labels
            continue
        if not task.classes:
            raise ValueError(f"the label domain of column {task.column!r} is empty: it is needed to number the "
                             "labels.")
        labels = to_dense_strings(inputs[task.column])
        table = tft.make_and_track_object(lambda task=task: LabelIds(task.classes),
                                          name=f"label_ids_{task.column}" if task.multi else "label_ids")
        outputs[task.label_id_key] = table.lookup(labels)
    return outputs


class LabelIds(tf.Module):
    """Label string -> its position in the schema's label domain (-1 for a value outside it, which the data checks
    refuse before Transform, and for a missing value "", which a label column the schema lets go without one has).
    A fixed order, unlike a vocabulary ordered by frequency: label ids, and so the classifier's outputs, stay the same
    across runs and spans, and a class added at the end of the domain keeps the others' ids."""

    def __init__(self, label_names: Sequence[str]):
        super().__init__(name="label_ids")
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(list(label_names)),
                                                tf.range(len(label_names), dtype=tf.int64)),
            default_value=-1)

    def lookup(self, labels: tf.Tensor) -> tf.Tensor:
        return self._table.lookup(labels)
