"""Feature keys and tokenization constants shared by the pipeline's components (the settings that use them:
components/settings/transform.py).

Every module that reads or writes transformed features imports the names from here, so the Transform
module, the trainer and the serving signature can never disagree about a key.
"""

from __future__ import annotations

# Transformed features (outputs of components/module_files/preprocessing.py).
WORD_IDS_KEY = "input_word_ids"
MASK_KEY = "input_mask"
TYPE_IDS_KEY = "input_type_ids"
LABEL_ID_KEY = "label_id"  # position of the raw label in the label domain (TransformSettings.label_names)
# Files in a Model artifact beside Format-Serving/ (the SavedModel):
CLASS_NAMES_FILE = "class_names.json"  # the class names in label-id order, a JSON list (the Trainer's)
# The settings, loss and accuracy per epoch and the learning-rate schedule of the Trainer's run (the Distiller adds
# its own block): the model card, the run report's curves and the Distiller (which reads its teacher's) read it.
TRAINING_HISTORY_FILE = "training_history.json"
PRETRAINING_HISTORY_FILE = "pretraining_history.json"  # the masked-LM stage's, in the Pretrainer's Model artifact
# Per-example statistics of the tokenized text, counted before truncation (also outputs of preprocessing_fn;
# components/validation/text_stats.py turns them into the text checks). The model does not read them.
NUM_WORDS_KEY = "num_words"  # words after normalization and pre-tokenization
NUM_WORDPIECES_KEY = "num_wordpieces"  # WordPiece tokens, without [CLS]/[SEP]
NUM_UNK_KEY = "num_unk"  # [UNK] tokens among them (each stands for one whole word)
TEXT_STAT_KEYS = (NUM_WORDS_KEY, NUM_WORDPIECES_KEY, NUM_UNK_KEY)


def column_stat_key(key: str, column: str) -> str:
    """One text column's count of a pair (`num_wordpieces_passage`): TEXT_STAT_KEYS count both texts together."""
    return f"{key}_{column}"
# The text itself, passed through Transform unchanged: the Trainer writes a few eval texts into the exported model
# as TF Serving warm-up requests (components/module_files/warmup.py). The model does not read it.
RAW_TEXT_KEY = "raw_text"
RAW_SECOND_TEXT_KEY = "raw_second_text"  # a pair's second text (--text-column a,b), likewise

# Raw columns (the CSVs written by pipeline/data/assets.py use these names).
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
# (components/module_files/learned_vocab.py), with SPECIAL_TOKENS at ids 0..4.
VOCAB_MODES = ("checkpoint", "learn")
# How a text longer than max_seq_length is cut (components/module_files/wordpiece.py, in the Transform graph, so serving
# cuts alike): "head" keeps its first tokens; "head_tail" its first quarter and last three quarters of the room, as
# Sun et al. ("How to Fine-Tune BERT for Text Classification?", 2019) kept 128 + 382 of 510 for long reviews.
TRUNCATIONS = ("head", "head_tail")
MIN_LEARNED_VOCAB_SIZE = 100  # the specials, the alphabet and its "##" continuations need room
# The learned vocabulary's file name among the transform graph's assets, and its key for
# `TFTransformOutput.vocabulary_file_by_name` (the Trainer sizes the embedding from it).
LEARNED_VOCAB_NAME = "wordpiece_vocab"
