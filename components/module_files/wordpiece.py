"""BERT WordPiece tokenization inside the TensorFlow graph, as the Transform module (preprocessing.py) and so the
exported serving graph run it.

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
"""

from __future__ import annotations

import functools

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

import sys
from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from components import features

# The reference WordPiece model's `max_input_chars_per_word`.
MAX_CHARS_PER_WORD = 100
# The longest subword of a learned vocabulary (without "##"; learned_vocab.py learns at most this long).
LEARNED_MAX_TOKEN_CHARS = 50

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
             cls_id: int, sep_id: int, truncation: str = "head") -> dict[str, tf.Tensor]:
    """`[batch]` strings -> the three BERT inputs, int64 `[batch, max_seq_length]` (see `to_bert_inputs`)."""
    return to_bert_inputs(tokenizer.tokenize(texts), max_seq_length, cls_id, sep_id, truncation)


def truncate(ids: tf.RaggedTensor, budget: int, truncation: str = "head") -> tf.RaggedTensor:
    """Each row's tokens cut to at most `budget` (features.TRUNCATIONS): its first ones ("head"), or its first
    quarter of the budget and then its last tokens ("head_tail"). Rows that fit are kept whole either way. Core ops
    only (RaggedRange, GatherV2), which stock TF Serving has."""
    if truncation not in features.TRUNCATIONS:
        raise ValueError(f"truncation must be one of {features.TRUNCATIONS}; got {truncation!r}")
    if truncation == "head":
        return ids[:, :budget]
    head = budget // 4
    tail = budget - head
    lengths = ids.row_lengths()
    # a long row's tail starts `tail` tokens before its end; a row that fits continues right after its head
    starts = tf.maximum(lengths - tail, head)
    positions = tf.ragged.range(starts, tf.maximum(lengths, starts))
    tails = tf.gather(ids.flat_values, positions + tf.expand_dims(ids.row_starts(), 1))
    return tf.concat([ids[:, :head], tails], axis=1)


def to_bert_inputs(ids: tf.RaggedTensor, max_seq_length: int, cls_id: int, sep_id: int,
                   truncation: str = "head") -> dict[str, tf.Tensor]:
    """`[batch, (wordpiece ids)]` -> the three BERT inputs, int64 `[batch, max_seq_length]`.

    `[CLS] wordpieces cut to max_seq_length - 2 (see truncate) [SEP]`, padded with 0; the mask is 1 on those tokens.
    """
    ids = truncate(ids, max_seq_length - 2, truncation)
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
