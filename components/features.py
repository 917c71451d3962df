"""Feature keys and tokenization defaults shared by the pipeline's components.

Every module that reads or writes transformed features imports the names from here, so the Transform
module, the trainer and the serving signature can never disagree about a key.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

# Transformed features (outputs of components/preprocessing.py).
WORD_IDS_KEY = "input_word_ids"
MASK_KEY = "input_mask"
TYPE_IDS_KEY = "input_type_ids"
LABEL_ID_KEY = "label_id"  # index of the raw label in the label vocabulary
LABEL_VOCAB_NAME = "label"  # vocab_filename of that vocabulary in the transform output
# Per-example statistics of the tokenized text, counted before truncation (also outputs of preprocessing_fn;
# components/text_stats.py turns them into the text checks). The model does not read them.
NUM_WORDS_KEY = "num_words"  # words after normalization and pre-tokenization
NUM_WORDPIECES_KEY = "num_wordpieces"  # WordPiece tokens, without [CLS]/[SEP]
NUM_UNK_KEY = "num_unk"  # [UNK] tokens among them (each stands for one whole word)
TEXT_STAT_KEYS = (NUM_WORDS_KEY, NUM_WORDPIECES_KEY, NUM_UNK_KEY)

# Raw columns (the CSVs written by pipeline/assets.py use these names).
DEFAULT_TEXT_KEY = "text"
DEFAULT_LABEL_KEY = "label"

DEFAULT_MAX_SEQ_LENGTH = 128

# Special tokens of BERT WordPiece vocabularies.
CLS = "[CLS]"
SEP = "[SEP]"
PAD = "[PAD]"
UNK = "[UNK]"
MASK = "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)

# Where the WordPiece vocabulary comes from: a file (a checkpoint's vocab.txt), or learned by Transform from the
# training split (components/preprocessing.py), with SPECIAL_TOKENS at ids 0..4.
VOCAB_MODES = ("file", "learn")
DEFAULT_LEARNED_VOCAB_SIZE = 8000
MIN_LEARNED_VOCAB_SIZE = 100  # the specials, the alphabet and its "##" continuations need room
# The learned vocabulary's file name among the transform graph's assets, and its key for
# `TFTransformOutput.vocabulary_file_by_name` (the Trainer sizes the embedding from it).
LEARNED_VOCAB_NAME = "wordpiece_vocab"


@dataclasses.dataclass(frozen=True)
class TransformSettings:
    """What the Transform module needs to know; travels to it as the component's `custom_config`."""

    text_key: str
    label_key: str
    vocab_file: str  # WordPiece vocabulary, one token a line; line number = token id ("" when learned)
    lower_case: bool = True
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    vocab_mode: str = "file"  # "file": `vocab_file`; "learn": learned from the data Transform analyzes
    learned_vocab_size: int = DEFAULT_LEARNED_VOCAB_SIZE  # upper bound on the learned vocabulary, specials included

    def __post_init__(self):
        if self.vocab_mode not in VOCAB_MODES:
            raise ValueError(f"TransformSettings.vocab_mode must be one of {', '.join(VOCAB_MODES)}; "
                             f"got {self.vocab_mode!r}.")
        if self.vocab_mode == "file" and not self.vocab_file:
            raise ValueError("TransformSettings.vocab_file must name a WordPiece vocabulary file.")
        if self.vocab_mode == "learn" and self.vocab_file:
            raise ValueError("TransformSettings.vocab_file must be empty when the vocabulary is learned.")
        if self.learned_vocab_size < MIN_LEARNED_VOCAB_SIZE:
            raise ValueError(f"learned_vocab_size must be at least {MIN_LEARNED_VOCAB_SIZE}; "
                             f"got {self.learned_vocab_size}.")
        if self.max_seq_length < 2:
            raise ValueError(f"max_seq_length must leave room for {CLS} and {SEP}; got {self.max_seq_length}.")

    def to_custom_config(self) -> dict[str, Any]:
        return {
            "text_key": self.text_key,
            "label_key": self.label_key,
            "vocab_file": str(self.vocab_file),
            "lower_case": bool(self.lower_case),
            "max_seq_length": int(self.max_seq_length),
            "vocab_mode": str(self.vocab_mode),
            "learned_vocab_size": int(self.learned_vocab_size),
        }

    @classmethod
    def from_custom_config(cls, config: Mapping[str, Any] | None) -> "TransformSettings":
        config = dict(config or {})
        vocab_mode = str(config.get("vocab_mode", "file"))
        if vocab_mode == "file" and "vocab_file" not in config:
            raise ValueError("custom_config has no 'vocab_file'; build it with TransformSettings.to_custom_config().")
        return cls(
            text_key=str(config.get("text_key", DEFAULT_TEXT_KEY)),
            label_key=str(config.get("label_key", DEFAULT_LABEL_KEY)),
            vocab_file=str(config.get("vocab_file", "")),
            lower_case=bool(config.get("lower_case", True)),
            max_seq_length=int(config.get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH)),
            vocab_mode=vocab_mode,
            learned_vocab_size=int(config.get("learned_vocab_size", DEFAULT_LEARNED_VOCAB_SIZE)),
        )
