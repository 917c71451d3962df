"""Feature keys and tokenization defaults shared by the pipeline's components.

Every module that reads or writes transformed features imports the names from here, so the Transform
module, the trainer and the serving signature can never disagree about a key.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple

from components.settings import SettingsError, from_custom_config, setting, to_custom_config, validate

# Transformed features (outputs of components/preprocessing.py).
WORD_IDS_KEY = "input_word_ids"
MASK_KEY = "input_mask"
TYPE_IDS_KEY = "input_type_ids"
LABEL_ID_KEY = "label_id"  # position of the raw label in the label domain (TransformSettings.label_names)
# The class names in label-id order, a JSON list in the Trainer's Model artifact beside Format-Serving/.
CLASS_NAMES_FILE = "class_names.json"
# Per-example statistics of the tokenized text, counted before truncation (also outputs of preprocessing_fn;
# components/text_stats.py turns them into the text checks). The model does not read them.
NUM_WORDS_KEY = "num_words"  # words after normalization and pre-tokenization
NUM_WORDPIECES_KEY = "num_wordpieces"  # WordPiece tokens, without [CLS]/[SEP]
NUM_UNK_KEY = "num_unk"  # [UNK] tokens among them (each stands for one whole word)
TEXT_STAT_KEYS = (NUM_WORDS_KEY, NUM_WORDPIECES_KEY, NUM_UNK_KEY)
# The text itself, passed through Transform unchanged: the Trainer writes a few eval texts into the exported model
# as TF Serving warm-up requests (components/warmup.py). The model does not read it.
RAW_TEXT_KEY = "raw_text"

# Raw columns (the CSVs written by pipeline/assets.py use these names).
DEFAULT_TEXT_KEY = "text"
DEFAULT_LABEL_KEY = "label"

# Special tokens of BERT WordPiece vocabularies.
CLS = "[CLS]"
SEP = "[SEP]"
PAD = "[PAD]"
UNK = "[UNK]"
MASK = "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)

# Where the WordPiece vocabulary comes from: "checkpoint", a file (the checkpoint's vocab.txt, or the packaged uncased
# one when training from scratch), or "learn": learned by Transform from the training split
# (components/preprocessing.py), with SPECIAL_TOKENS at ids 0..4.
VOCAB_MODES = ("checkpoint", "learn")
MIN_LEARNED_VOCAB_SIZE = 100  # the specials, the alphabet and its "##" continuations need room
# The learned vocabulary's file name among the transform graph's assets, and its key for
# `TFTransformOutput.vocabulary_file_by_name` (the Trainer sizes the embedding from it).
LEARNED_VOCAB_NAME = "wordpiece_vocab"


@dataclasses.dataclass(frozen=True)
class TransformSettings:
    """What the Transform module (components/preprocessing.py) reads: the component's `custom_config`, serialized
    and read back strictly by components/settings.py. Flags: see `setting(flag=...)`."""

    COMPONENT: ClassVar[str] = "Transform"

    text_key: str = setting(DEFAULT_TEXT_KEY, "CSV column holding the text", flag="--text-column")
    label_key: str = setting(DEFAULT_LABEL_KEY, "CSV column holding the class label", flag="--label-column")
    # WordPiece vocabulary, one token a line; line number = token id ("" when learned)
    vocab_file: str = setting("", derived="--pretrained's vocab.txt (or the packaged one with --pretrained none)")
    lower_case: bool = setting(True, derived="the checkpoint's tokenizer_config.json (do_lower_case)")
    max_seq_length: int = setting(
        128, "WordPiece tokens per text incl. [CLS]/[SEP]; longer texts are truncated (at most the checkpoint's "
             "max_position_embeddings). 'auto': the length that covers 98% of the training texts, a multiple of 32 "
             "(on Kubeflow, which reads no data when compiling: 128)", flag="--max-seq-length", positive=True,
        auto=True)
    vocab_mode: str = setting(
        "checkpoint", "WordPiece vocabulary: 'checkpoint' uses the checkpoint's vocab.txt (with --pretrained none, "
                      "the packaged uncased one); 'learn' learns one from the training split during the run, for any "
                      "language (only when training from scratch). Default: 'learn' with --pretrained none, else "
                      "'checkpoint'", flag="--vocab", choices=VOCAB_MODES)
    # The label's domain, in the schema's order: label ids are positions in it (stable across runs and spans).
    label_names: Tuple[str, ...] = setting((), derived="the schema's label domain (a curated, frozen or inferred "
                                                       "schema), or the training data's label values")
    learned_vocab_size: int = setting(
        8000, "target size of a learned vocabulary, special tokens included (only with --vocab learn)",
        flag="--vocab-size", positive=True)

    def __post_init__(self):
        validate(self)
        if self.vocab_mode == "checkpoint" and not self.vocab_file:
            raise SettingsError("Transform setting 'vocab_file' must name a WordPiece vocabulary file when "
                                "vocab_mode is 'checkpoint'.")
        if self.vocab_mode == "learn" and self.vocab_file:
            raise SettingsError("Transform setting 'vocab_file' must be empty when the vocabulary is learned.")
        if self.learned_vocab_size < MIN_LEARNED_VOCAB_SIZE:
            raise SettingsError(f"Transform setting 'learned_vocab_size' (--vocab-size) must be at least "
                                f"{MIN_LEARNED_VOCAB_SIZE}; got {self.learned_vocab_size}.")
        if self.max_seq_length < 2:
            raise SettingsError(f"Transform setting 'max_seq_length' must leave room for {CLS} and {SEP}; got "
                                f"{self.max_seq_length}.")

    def to_custom_config(self, code_version: Optional[str] = None) -> Dict[str, Any]:
        return to_custom_config(self, code_version)

    @classmethod
    def from_custom_config(cls, config: Optional[Mapping[str, Any]]) -> "TransformSettings":
        return from_custom_config(cls, config)


DEFAULT_MAX_SEQ_LENGTH = TransformSettings.max_seq_length
DEFAULT_LEARNED_VOCAB_SIZE = TransformSettings.learned_vocab_size
