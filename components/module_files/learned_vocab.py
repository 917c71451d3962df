"""Learned vocabulary (`TransformSettings.vocab_mode == "learn"`, training from scratch in any language): the
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

import os

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

from typing import Iterable

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as wordpiece_learner

from components import features
from components.module_files.wordpiece import LEARNED_MAX_TOKEN_CHARS, BertPreTokenizer, BertWordpieceTokenizer

# Learned vocabularies: subwords of at most this many characters (without "##"); a subword must occur at least
# LEARN_MIN_COUNT times (the learner lowers its frequency threshold towards this while the vocabulary is below
# the target size); the alphabet keeps the LEARN_MAX_ALPHABET most frequent characters (a word with any other
# character is not learned from, and becomes [UNK]). Every character of the alphabet is a token, alone and as a
# "##" continuation, so any word spelled with it gets real tokens.
LEARN_MIN_COUNT = 2
LEARN_MAX_ALPHABET = 1000


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


def learned_wordpiece_ids(texts: tf.Tensor, lower_case: bool, vocab_size: int
                          ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, int, int, int]:
    """`[batch]` strings -> (`[batch, (words)]` pre-tokenized words, `[batch, (tokens)]` ids under a vocabulary of
    about `vocab_size` tokens learned from the analyzed data, cls id, sep id, unk id)."""
    pretokenizer = tft.make_and_track_object(lambda: BertPreTokenizer(lower_case),
                                             name="bert_pretokenizer")
    words = pretokenizer.split_words(texts)
    unique_words, _, counts = tf.unique_with_counts(words.flat_values, out_idx=tf.int64)
    (vocab_path,) = tft.experimental.ptransform_analyzer(
        inputs=[unique_words, counts],
        ptransform=LearnWordpieceVocab(vocab_size),
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
            return BertWordpieceTokenizer(path, lower_case, learned=True, pretokenizer=pretokenizer)
        tokenizer = make() if tf.is_symbolic_tensor(path) else tft.make_and_track_object(
            make, name="learned_wordpiece_tokenizer")
        return tokenizer.wordpiece(words), tokenizer.table_size()

    # apply_vocabulary resolves the deferred path and keeps the ids dependent on the analyzer.
    ids = tft.apply_vocabulary(words, vocab_path, lookup_fn=lookup)
    special_id = features.SPECIAL_TOKENS.index
    return words, ids, special_id(features.CLS), special_id(features.SEP), special_id(features.UNK)
