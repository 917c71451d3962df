"""TFX Transform module: BERT WordPiece tokenization of a raw text column, inside the TensorFlow graph.

`preprocessing_fn` turns the raw text column into the three fixed-length BERT inputs
(`input_word_ids`, `input_mask`, `input_type_ids`, int64 `[batch, max_seq_length]`) and, when the label
column is present, the raw label into `label_id`, its position in the schema's label domain
(`TransformSettings.label_names`, a fixed order). It also passes the text through (`raw_text`: the Trainer writes
a few eval texts as TF Serving warm-up requests) and counts words and pieces (components/validation/text_stats.py). Serving
calls the same function without the label.

The tokenization reproduces Hugging Face's `BertTokenizerFast` (the tokenizer the pretrained checkpoints
were published with) token for token, using only TensorFlow and tensorflow-text ops so the exported
transform graph runs in stock TensorFlow Serving built with the tf-text ops:

1. `[PAD] [UNK] [CLS] [SEP] [MASK]` written in the raw text are kept as single tokens, as the reference
   does for its added special tokens (matched before normalization, case-sensitively).
2. BertNormalizer: control and format characters are removed (tab, newline and carriage return count as
   whitespace); with `lower_case`, NFD then removal of non-spacing marks (accents), then lower-casing
   character by character.
3. BertPreTokenizer: split on whitespace, split off every punctuation character (Unicode P* plus all
   ASCII symbols) and every CJK ideograph.
4. WordPiece, greedy longest-match-first with `##` continuations; a word with more than 100 characters
   or with a piece not in the vocabulary becomes one `[UNK]`.

Character classes come from the Unicode tables of RE2 and Python, which are newer than the reference's:
a few hundred rare characters added to Unicode since (marks and punctuation of minority scripts, none in
the vocabulary) can be classified differently, which changes at most where `[UNK]`s fall.

tensorflow-text's `BertTokenizer`/`FastBertTokenizer` are not used whole because their lower-casing is
NFKC case folding (`ﬁ`->`fi`, full-width `Ａ`->`a`, `½`->`1⁄2`, `ß`->`ss`), and `FastBertTokenizer` limits
words by UTF-8 bytes rather than characters; either changes ids for real text. Only their WordPiece step
is used, over a vocabulary table read from `vocab_file`, which therefore becomes an asset of the graph.

Learned vocabulary (`TransformSettings.vocab_mode == "learn"`, training from scratch in any language): the
words of step 3, counted over the data Transform analyzes (the training split), feed tensorflow-text's
WordPiece vocabulary learner inside the Transform run, through a Beam analyzer
(`tft.experimental.ptransform_analyzer`). The learned vocabulary — `[PAD] [UNK] [CLS] [SEP] [MASK]` at ids 0..4,
then every character of the learned alphabet alone and as a `##` continuation, then the learned subwords — is
written to a file named `features.LEARNED_VOCAB_NAME`, an asset of the transform graph (the table reads it
like TFT's `apply_vocabulary` reads deferred vocabularies), so serving tokenizes with it; the Trainer finds it
with `TFTransformOutput.vocabulary_file_by_name(features.LEARNED_VOCAB_NAME)`. Normalization is the same as
above with `lower_case` (NFD, marks removed, lower-cased): Hangul syllables decompose into conjoining jamo,
which are letters (Lo), so Korean is kept, as jamo sequences, identically at training and serving time.
"""

from __future__ import annotations

import functools
import os

from components.runtime import keras2  # noqa: F401,I001  (first: Keras 2 and its AutoGraph rule, see keras2.py)

import sys
from typing import Iterable, Mapping, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as wordpiece_learner

from components import features
from components.settings.transform import TransformSettings

# The reference WordPiece model's `max_input_chars_per_word`.
MAX_CHARS_PER_WORD = 100

# Learned vocabularies: subwords of at most this many characters (without "##"); a subword must occur at least
# LEARN_MIN_COUNT times (the learner lowers its frequency threshold towards this while the vocabulary is below
# the target size); the alphabet keeps the LEARN_MAX_ALPHABET most frequent characters (a word with any other
# character is not learned from, and becomes [UNK]). Every character of the alphabet is a token, alone and as a
# "##" continuation, so any word spelled with it gets real tokens.
LEARNED_MAX_TOKEN_CHARS = 50
LEARN_MIN_COUNT = 2
LEARN_MAX_ALPHABET = 1000

# Removed by BertNormalizer's clean_text: NUL, U+FFFD and categories Cc, Cf, Co except \t \n \r
# (surrogates, Cs, cannot occur in valid UTF-8; unassigned code points are kept by the reference).
_CONTROL_RE = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"
_WHITESPACE_RE = r"[\t\n\r\p{Z}]+"
_PUNCT_RE = r"[!-/:-@\[-`{-~\p{P}]"
# The ideograph blocks BERT isolates (CJK Unified Ideographs and extensions, compatibility ideographs).
_CJK_RE = (r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
           r"\x{2B740}-\x{2B81F}\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]")
_KEEP_RE = f"{_PUNCT_RE}|{_CJK_RE}"
_SPLIT_RE = f"{_WHITESPACE_RE}|{_KEEP_RE}"
# Stands in for a special-token segment during pre-tokenization; a control character, so it cannot
# survive normalization of ordinary text.
_SENTINEL = "\x01"


@functools.lru_cache(maxsize=None)
def _lowercase_table() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sorted code points whose lowercase is a different single code point, and that lowercase.

    Per-character mapping as the reference does (so a final capital sigma becomes σ, not ς); the only
    character lower-casing to two code points, U+0130, never reaches it because NFD decomposes it first.
    """
    keys, values = [], []
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        low = chr(cp).lower()
        if len(low) == 1 and low != chr(cp):
            keys.append(cp)
            values.append(ord(low))
    return tuple(keys), tuple(values)


def _read_vocab(vocab_file: str) -> list[str]:
    with tf.io.gfile.GFile(vocab_file, "r") as f:
        return [line.rstrip("\r\n") for line in f]


class BertPreTokenizer(tf.Module):
    """Steps 1-3 of the module docstring: raw text -> normalized, pre-tokenized words (no vocabulary needed,
    except for knowing which special tokens to keep whole)."""

    def __init__(self, lower_case: bool = True, special_tokens: Sequence[str] = features.SPECIAL_TOKENS,
                 name: str | None = None):
        super().__init__(name=name)
        self.lower_case = bool(lower_case)
        self._special_re = "|".join(t.replace("[", r"\[").replace("]", r"\]") for t in special_tokens)
        keys, values = _lowercase_table()
        self._lower_keys = tf.constant(keys, tf.int32)
        self._lower_values = tf.constant(values, tf.int32)

    def _lower(self, texts: tf.Tensor) -> tf.Tensor:
        chars = tf.strings.unicode_decode(texts, "UTF-8")
        cps = chars.flat_values
        pos = tf.minimum(tf.searchsorted(self._lower_keys, cps), tf.size(self._lower_keys) - 1)
        hit = tf.equal(tf.gather(self._lower_keys, pos), cps)
        lowered = tf.where(hit, tf.gather(self._lower_values, pos), cps)
        return tf.strings.unicode_encode(chars.with_flat_values(lowered), "UTF-8")

    def normalize(self, texts: tf.Tensor) -> tf.Tensor:
        """BertNormalizer on a 1-D string tensor (CJK isolation is left to pre-tokenization)."""
        texts = tf.strings.regex_replace(texts, _CONTROL_RE, "")
        if self.lower_case:
            texts = tf_text.normalize_utf8(texts, "NFD")
            texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
            texts = self._lower(texts)
        return texts

    def split_words(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw 1-D strings -> `[batch, (words)]` normalized, pre-tokenized words."""
        # Invalid UTF-8 becomes U+FFFD, which normalization then drops.
        texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace",
                                             replacement_char=0xFFFD)
        # regex_split stops reading a string at NUL; both characters are dropped by normalization.
        texts = tf.strings.regex_replace(texts, r"\x00", "\uFFFD")
        if self._special_re:
            segments = tf_text.regex_split(texts, self._special_re, self._special_re)
        else:
            segments = tf.RaggedTensor.from_tensor(tf.expand_dims(texts, 1))
        raw = segments.flat_values
        special = tf.strings.regex_full_match(raw, self._special_re) if self._special_re else (
            tf.zeros_like(raw, tf.bool))
        normalized = tf.where(special, _SENTINEL, self.normalize(raw))
        words = tf_text.regex_split(normalized, _SPLIT_RE, _KEEP_RE)
        # Each special segment is exactly one sentinel word: put the token back.
        values = tf.where(tf.equal(words.flat_values, _SENTINEL),
                          tf.gather(raw, words.value_rowids()), words.flat_values)
        too_long = tf.strings.length(values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        values = tf.where(too_long, features.UNK, values)
        return segments.with_flat_values(words.with_flat_values(values)).merge_dims(1, 2)


class BertWordpieceTokenizer(tf.Module):
    """Text -> WordPiece ids, matching Hugging Face's BertTokenizerFast (see the module docstring).

    Holds the vocabulary as a lookup table initialized from `vocab_file`, so a SavedModel that tracks
    this object carries the file among its assets. `tokenize` returns a `[batch, (tokens)]` int64
    RaggedTensor without [CLS]/[SEP].

    `learned=True`: a vocabulary learned by this module (`learn_wordpiece_vocab`), whose layout is known —
    the special tokens at ids 0..4, no subword longer than LEARNED_MAX_TOKEN_CHARS — so the file is not read
    here: `vocab_file` may then be a string tensor, the deferred path of a file that TFT's analysis writes.
    """

    def __init__(self, vocab_file, lower_case: bool = True, name: str | None = None, *, learned: bool = False,
                 pretokenizer: BertPreTokenizer | None = None):
        super().__init__(name=name)
        if learned:
            index = {token: i for i, token in enumerate(features.SPECIAL_TOKENS)}
            self.vocab_size = None  # known only once the file is written
            max_chars_per_token = LEARNED_MAX_TOKEN_CHARS
        else:
            vocab = _read_vocab(vocab_file)
            index = {token: i for i, token in enumerate(vocab)}
            missing = [t for t in (features.CLS, features.SEP, features.UNK) if t not in index]
            if missing:
                raise ValueError(f"vocabulary {vocab_file} lacks {', '.join(missing)}.")
            self.vocab_size = len(vocab)
            max_chars_per_token = max(len(t) for t in vocab)  # an upper bound only, for speed
        self.cls_id = index[features.CLS]
        self.sep_id = index[features.SEP]
        self.unk_id = index[features.UNK]
        self.lower_case = bool(lower_case)
        if pretokenizer is None:
            pretokenizer = BertPreTokenizer(lower_case, [t for t in features.SPECIAL_TOKENS if t in index])
        self.pretokenizer = pretokenizer

        self._table = tf.lookup.StaticVocabularyTable(
            tf.lookup.TextFileInitializer(
                vocab_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
            num_oov_buckets=1)
        self._wordpiece = tf_text.WordpieceTokenizer(
            self._table,
            suffix_indicator="##",
            # Words are limited by characters before this step; bytes must never trigger [UNK] here.
            max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
            max_chars_per_token=max_chars_per_token,
            token_out_type=tf.int64,
            unknown_token=features.UNK)

    def normalize(self, texts: tf.Tensor) -> tf.Tensor:
        return self.pretokenizer.normalize(texts)

    def split_words(self, texts: tf.Tensor) -> tf.RaggedTensor:
        return self.pretokenizer.split_words(texts)

    def table_size(self) -> tf.Tensor:
        return self._table.size()

    def wordpiece(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """`[batch, (words)]` pre-tokenized words -> `[batch, (tokens)]` ids."""
        pieces = self._wordpiece.tokenize(words.flat_values)  # [words, (pieces)]
        return words.with_flat_values(pieces).merge_dims(1, 2)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        return self.wordpiece(self.split_words(texts))


def build_tokenizer(vocab_file: str, lower_case: bool = True) -> BertWordpieceTokenizer:
    return BertWordpieceTokenizer(str(vocab_file), lower_case=lower_case)


def tokenize(texts: tf.Tensor, tokenizer: BertWordpieceTokenizer, max_seq_length: int,
             cls_id: int, sep_id: int) -> dict[str, tf.Tensor]:
    """`[batch]` strings -> the three BERT inputs, int64 `[batch, max_seq_length]` (see `to_bert_inputs`)."""
    return to_bert_inputs(tokenizer.tokenize(texts), max_seq_length, cls_id, sep_id)


def to_bert_inputs(ids: tf.RaggedTensor, max_seq_length: int, cls_id: int, sep_id: int) -> dict[str, tf.Tensor]:
    """`[batch, (wordpiece ids)]` -> the three BERT inputs, int64 `[batch, max_seq_length]`.

    `[CLS] wordpieces[:max_seq_length - 2] [SEP]`, padded with 0; the mask is 1 on those tokens.
    """
    ids = ids[:, : max_seq_length - 2]
    batch = ids.nrows()
    ids = tf.concat([tf.fill([batch, 1], tf.constant(cls_id, tf.int64)), ids,
                     tf.fill([batch, 1], tf.constant(sep_id, tf.int64))], axis=1)
    shape = [None, max_seq_length]
    word_ids = ids.to_tensor(default_value=0, shape=shape)
    mask = tf.ones_like(ids).to_tensor(default_value=0, shape=shape)
    return {
        features.WORD_IDS_KEY: word_ids,
        features.MASK_KEY: mask,
        features.TYPE_IDS_KEY: tf.zeros_like(word_ids),
    }


# --- the learned vocabulary ---

def learn_wordpiece_vocab(word_counts: Iterable[tuple[str, int]], vocab_size: int) -> list[str]:
    """(word, count) pairs of pre-tokenized words -> a WordPiece vocabulary of at most about `vocab_size`
    tokens, learned with tensorflow-text's learner: `features.SPECIAL_TOKENS` at ids 0..4, then the alphabet
    (each character alone and as a `##` continuation, so no word of known characters becomes [UNK]), then
    subwords by decreasing frequency. Deterministic: ties are broken by the words themselves."""
    counts = sorted(((w, int(c)) for w, c in word_counts if w), key=lambda wc: (-wc[1], wc[0]))
    specials = list(features.SPECIAL_TOKENS)
    if not counts:
        return specials
    vocab = wordpiece_learner.learn(
        counts, vocab_size=vocab_size, reserved_tokens=specials, lower_thresh=LEARN_MIN_COUNT,
        max_token_length=LEARNED_MAX_TOKEN_CHARS, max_unique_chars=LEARN_MAX_ALPHABET,
        include_joiner_token=True, joiner="##")
    if vocab[: len(specials)] != specials:
        raise RuntimeError(f"the WordPiece learner did not put {specials} first: {vocab[:len(specials)]}")
    return vocab


def _word_count_pairs(batch) -> Iterable[tuple[bytes, int]]:
    words, counts = batch
    return zip(np.asarray(words).tolist(), np.asarray(counts).tolist())


def _learn_and_write(word_counts: list, path: str, vocab_size: int) -> np.ndarray:
    vocab = learn_wordpiece_vocab(((w.decode("utf-8") if isinstance(w, bytes) else w, c) for w, c in word_counts),
                                  vocab_size)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join(f"{token}\n" for token in vocab))
    return np.array(path)


class LearnWordpieceVocab(tft_beam.experimental.PTransformAnalyzer):
    """The Beam side of the analyzer: per-batch (unique words, counts) -> the path of the learned vocabulary
    file, written under the analyzer's own temporary directory (TFT copies it into the transform graph's
    assets)."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self._vocab_size = int(vocab_size)

    def expand(self, pcoll):
        path = os.path.join(self.base_temp_dir, features.LEARNED_VOCAB_NAME)
        return (pcoll
                | "PairWordsWithCounts" >> beam.FlatMap(_word_count_pairs)
                | "SumCounts" >> beam.CombinePerKey(sum)
                | "ToList" >> beam.combiners.ToList()
                | "LearnAndWrite" >> beam.Map(_learn_and_write, path=path, vocab_size=self._vocab_size))


def learned_wordpiece_ids(texts: tf.Tensor, settings: TransformSettings
                          ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, int, int, int]:
    """`[batch]` strings -> (`[batch, (words)]` pre-tokenized words, `[batch, (tokens)]` ids under a vocabulary
    learned from the analyzed data, cls id, sep id, unk id)."""
    pretokenizer = tft.make_and_track_object(lambda: BertPreTokenizer(settings.lower_case),
                                             name="bert_pretokenizer")
    words = pretokenizer.split_words(texts)
    unique_words, _, counts = tf.unique_with_counts(words.flat_values, out_idx=tf.int64)
    (vocab_path,) = tft.experimental.ptransform_analyzer(
        inputs=[unique_words, counts],
        ptransform=LearnWordpieceVocab(settings.learned_vocab_size),
        output_dtypes=[tf.string],
        output_shapes=[[]],
        # Stands in for the vocabulary while the preprocessing_fn is traced before analysis.
        output_asset_default_values=["".join(f"{t}\n" for t in features.SPECIAL_TOKENS).encode()],
        name="learn_wordpiece_vocab")
    tft.annotate_asset(features.LEARNED_VOCAB_NAME, features.LEARNED_VOCAB_NAME)

    def lookup(words, path):
        # `path` is the written file's path (a stand-in before analysis), except while TFT only inspects which
        # columns the function reads: then it is a placeholder, and the table is built inside that trace.
        def make():
            return BertWordpieceTokenizer(path, settings.lower_case, learned=True, pretokenizer=pretokenizer)
        tokenizer = make() if tf.is_symbolic_tensor(path) else tft.make_and_track_object(
            make, name="learned_wordpiece_tokenizer")
        return tokenizer.wordpiece(words), tokenizer.table_size()

    # apply_vocabulary resolves the deferred path and keeps the ids dependent on the analyzer.
    ids = tft.apply_vocabulary(words, vocab_path, lookup_fn=lookup)
    special_id = features.SPECIAL_TOKENS.index
    return words, ids, special_id(features.CLS), special_id(features.SEP), special_id(features.UNK)


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
    settings = TransformSettings.from_custom_config(custom_config)
    texts = to_dense_strings(inputs[settings.text_key])
    if settings.vocab_mode == "learn":
        words, ids, cls_id, sep_id, unk_id = learned_wordpiece_ids(texts, settings)
    else:
        tokenizer = tft.make_and_track_object(
            lambda: build_tokenizer(settings.vocab_file, settings.lower_case), name="bert_wordpiece_tokenizer")
        words = tokenizer.split_words(texts)
        ids, cls_id, sep_id, unk_id = tokenizer.wordpiece(words), tokenizer.cls_id, tokenizer.sep_id, tokenizer.unk_id
    outputs = {**to_bert_inputs(ids, settings.max_seq_length, cls_id, sep_id), **text_statistics(words, ids, unk_id),
               features.RAW_TEXT_KEY: texts}
    if settings.label_key in inputs:
        if not settings.label_names:
            raise ValueError("Transform setting 'label_names' is empty: the label domain is needed to number the "
                             "labels.")
        labels = to_dense_strings(inputs[settings.label_key])
        table = tft.make_and_track_object(lambda: LabelIds(settings.label_names), name="label_ids")
        outputs[features.LABEL_ID_KEY] = table.lookup(labels)
    return outputs


class LabelIds(tf.Module):
    """Label string -> its position in the schema's label domain (-1 for a value outside it, which the data checks
    refuse before Transform). A fixed order, unlike a vocabulary ordered by frequency: label ids, and so the
    classifier's outputs, stay the same across runs and spans, and a class added at the end of the domain keeps the
    others' ids."""

    def __init__(self, label_names: Sequence[str]):
        super().__init__(name="label_ids")
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(list(label_names)),
                                                tf.range(len(label_names), dtype=tf.int64)),
            default_value=-1)

    def lookup(self, labels: tf.Tensor) -> tf.Tensor:
        return self._table.lookup(labels)
