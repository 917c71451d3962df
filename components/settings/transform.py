"""The Transform module's settings (components/module_files/preprocessing.py reads them from its `custom_config`)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Tuple

from components import tasks
from components.features import (
    CLS,
    DEFAULT_LABEL_KEY,
    DEFAULT_TEXT_KEY,
    MIN_LEARNED_VOCAB_SIZE,
    SEP,
    TRUNCATIONS,
    VOCAB_MODES,
)
from components.settings.base import CustomConfigMixin, SettingsError, setting, validate


def default_vocab_mode(pretrained: bool) -> str:
    """The vocabulary when --vocab is not given: a checkpoint's own ('checkpoint'), or one learned from the data when
    training from scratch ('learn'). The front door applies it before the vocabulary file is known, since that file
    follows from the mode (pipeline/cli/model_choice.py)."""
    return "checkpoint" if pretrained else "learn"


@dataclasses.dataclass(frozen=True)
class TransformSettings(CustomConfigMixin):
    """What the Transform module (components/module_files/preprocessing.py) reads: the component's `custom_config`,
    serialized and read back strictly by components/settings/base.py. Flags: see `setting(flag=...)`."""

    COMPONENT: ClassVar[str] = "Transform"

    text_key: str = setting(DEFAULT_TEXT_KEY, "CSV column holding the text", flag="--text-column")
    label_key: str = setting(
        DEFAULT_LABEL_KEY, "CSV column holding the class label; several columns separated by commas (e.g. "
                           "rating,condition) train one model with one head per column, each judged and served on its "
                           "own (docs/multi_task.md). Default: 'label', or the built-in dataset's columns",
        flag="--label-column")
    # WordPiece vocabulary, one token a line; line number = token id ("" when learned)
    vocab_file: str = setting("", derived="--pretrained's vocab.txt (or the packaged one with --pretrained none)")
    lower_case: bool = setting(True, derived="the checkpoint's tokenizer_config.json (do_lower_case)")
    max_seq_length: int = setting(
        128, "WordPiece tokens per text incl. [CLS]/[SEP]; longer texts are truncated (at most the checkpoint's "
             "max_position_embeddings). 'auto': the length that covers 98% of the training texts, a multiple of "
             "32, shortened to fit --time-budget (on Kubeflow, which reads no data when compiling: 128)",
        flag="--max-seq-length", positive=True,
        auto=True)
    truncation: str = setting(
        "head", "how a text longer than --max-seq-length is cut: 'head' keeps its first tokens; 'head_tail' the first "
                "quarter of the room from its beginning and the rest from its end (long reviews and documents often "
                "conclude at the end). Serving cuts the same way (it runs the Transform graph). head: chosen on the "
                "eval splits of 20newsgroups and of Reuters news, whose topic comes first",
        flag="--truncation", choices=TRUNCATIONS)
    vocab_mode: str = setting(
        "checkpoint", "WordPiece vocabulary: 'checkpoint' uses the checkpoint's vocab.txt (with --pretrained none, "
                      "the packaged uncased one); 'learn' learns one from the training split during the run, for any "
                      "language (only when training from scratch). Default: 'learn' with --pretrained none, else "
                      "'checkpoint'", flag="--vocab", choices=VOCAB_MODES)
    # The label's domain, in the schema's order: label ids are positions in it (stable across runs and spans).
    label_names: Tuple[str, ...] = setting((), derived="the schema's label domain (a curated, frozen or inferred "
                                                       "schema), or the training data's label values")
    # With several label columns: each column's domain, in --label-column's order (label_names stays empty).
    task_label_names: Tuple[Tuple[str, ...], ...] = setting(
        (), derived="each label column's domain in the schema (or its training values), with several label columns")
    learned_vocab_size: int = setting(
        8000, "target size of a learned vocabulary, special tokens included (only with --vocab learn)",
        flag="--vocab-size", positive=True)

    def __post_init__(self):
        validate(self)
        check_label_domains(self)
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



def check_label_domains(settings) -> None:
    """One domain in label_names for one label column; one per column in task_label_names for several (Transform's
    and the Trainer's settings alike)."""
    try:
        columns = tasks.label_columns(settings.label_key)
    except ValueError as e:
        raise SettingsError(f"{type(settings).COMPONENT} setting 'label_key': {e}") from None
    if len(columns) > 1 and settings.label_names:
        raise SettingsError(f"{type(settings).COMPONENT} setting 'label_names' must be empty with several label "
                            "columns (their domains are task_label_names).")
    if settings.task_label_names and len(settings.task_label_names) != len(columns):
        raise SettingsError(f"{type(settings).COMPONENT} setting 'task_label_names' has "
                            f"{len(settings.task_label_names)} domain(s) for the {len(columns)} label column(s) "
                            f"{', '.join(columns)}.")
