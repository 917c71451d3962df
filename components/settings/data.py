"""The data as every step reads it: the text column (or a pair's two), the label columns, each label column's
classes, and the WordPiece vocabulary the text is tokenized with. Declared once, here.

Transform, the Trainer and the masked-LM stage each read these settings beside their own: a component's
`custom_config` is its own settings and these in one flat object (`component_config`), read back strictly by
`read_config`, so the steps cannot disagree about a column, a class or the vocabulary (the Distiller reads its
teacher's). No TensorFlow here: the runners build their command lines from it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar

from components import tasks
from components.features import DEFAULT_LABEL_KEY, DEFAULT_TEXT_KEY, VOCAB_MODES
from components.settings.base import (
    CustomConfigMixin,
    SettingsError,
    component_name,
    from_custom_config,
    setting,
    to_custom_config,
    validate,
)

S = TypeVar("S")

TEXT_SEPARATOR = ","  # between the two columns of --text-column
MAX_TEXT_COLUMNS = 2  # one text, or a pair (BERT's two segments)


def text_columns(text_key: str) -> Tuple[str, ...]:
    """The text columns `--text-column` names, in its order: one, or two for a pair of texts that the model reads
    together (`[CLS] a [SEP] b [SEP]`, components/module_files/pair_packing.py). ValueError for more than two, an
    empty or a repeated name."""
    columns = tuple(c.strip() for c in text_key.split(TEXT_SEPARATOR))
    if not all(columns):
        raise ValueError(f"--text-column {text_key!r} has an empty column name; name one text column, or two separated "
                         "by a comma (e.g. --text-column question,passage).")
    if len(columns) > MAX_TEXT_COLUMNS:
        raise ValueError(f"--text-column {text_key!r} names {len(columns)} columns; it takes one text column, or two "
                         "for a pair of texts (e.g. --text-column question,passage): join the others into one of them.")
    if len(set(columns)) != len(columns):
        raise ValueError(f"--text-column {text_key!r} names {columns[0]!r} twice; a pair needs two different columns.")
    return columns


def default_vocab_mode(pretrained: bool) -> str:
    """The vocabulary when --vocab is not given: a checkpoint's own ('checkpoint'), or one learned from the data when
    training from scratch ('learn'). The front door applies it before the vocabulary file is known, since that file
    follows from the mode (pipeline/cli/model_choice.py)."""
    return "checkpoint" if pretrained else "learn"


@dataclasses.dataclass(frozen=True)
class DataSettings(CustomConfigMixin):
    """The columns, classes and vocabulary (flags: see `setting(flag=...)`)."""

    COMPONENT: ClassVar[str] = "data"

    text_key: str = setting(DEFAULT_TEXT_KEY, "CSV column holding the text; two columns separated by a comma (e.g. "
                                              "question,passage) give the model a pair of texts, read together as "
                                              "BERT's two segments (docs/data.md); more than two are refused",
                            flag="--text-column")
    label_key: str = setting(
        DEFAULT_LABEL_KEY, "CSV column holding the class label; several columns separated by commas (e.g. "
                           "rating,condition) train one model with one head per column, each judged and served on its "
                           "own (docs/multi_task.md). Default: 'label', or the built-in dataset's columns",
        flag="--label-column")
    # The label's domain, in the schema's order: label ids are positions in it (stable across runs and spans).
    label_names: Tuple[str, ...] = setting((), derived="the schema's label domain (a curated, frozen or inferred "
                                                       "schema), or the training data's label values")
    # With several label columns: each column's domain, in --label-column's order (label_names stays empty).
    task_label_names: Tuple[Tuple[str, ...], ...] = setting(
        (), derived="each label column's domain in the schema (or its training values), with several label columns")
    vocab_mode: str = setting(
        "checkpoint", "WordPiece vocabulary: 'checkpoint' uses the checkpoint's vocab.txt (with --pretrained none, "
                      "the packaged uncased one); 'learn' learns one from the training split during the run, for any "
                      "language (only when training from scratch). Default: 'learn' with --pretrained none, else "
                      "'checkpoint'", flag="--vocab", choices=VOCAB_MODES)
    # WordPiece vocabulary, one token a line; line number = token id ("" when learned: the transform graph's asset)
    vocab_file: str = setting("", derived="--pretrained's vocab.txt (or the packaged one with --pretrained none)")
    lower_case: bool = setting(True, derived="the checkpoint's tokenizer_config.json (do_lower_case)")

    def __post_init__(self):
        validate(self)
        try:
            columns = tasks.label_columns(self.label_key)
        except ValueError as e:
            raise SettingsError(f"data setting 'label_key': {e}") from None
        try:
            texts = text_columns(self.text_key)
        except ValueError as e:
            raise SettingsError(f"data setting 'text_key': {e}") from None
        both = [c for c in texts if c in columns]
        if both:
            raise SettingsError(f"column {both[0]!r} is named by both --text-column and --label-column.")
        if len(columns) > 1 and self.label_names:
            raise SettingsError("data setting 'label_names' must be empty with several label columns (their domains "
                                "are task_label_names).")
        if self.task_label_names and len(self.task_label_names) != len(columns):
            raise SettingsError(f"data setting 'task_label_names' has {len(self.task_label_names)} domain(s) for the "
                                f"{len(columns)} label column(s) {', '.join(columns)}.")
        if self.vocab_mode == "checkpoint" and not self.vocab_file:
            raise SettingsError("data setting 'vocab_file' must name a WordPiece vocabulary file when vocab_mode is "
                                "'checkpoint'.")
        if self.vocab_mode == "learn" and self.vocab_file:
            raise SettingsError("data setting 'vocab_file' must be empty when the vocabulary is learned.")

    @property
    def text_columns(self) -> Tuple[str, ...]:
        """The text column, or the pair's two columns in --text-column's order (segment 0, then 1)."""
        return text_columns(self.text_key)

    @property
    def pairs(self) -> bool:
        """Whether each example is a pair of texts."""
        return len(self.text_columns) > 1

    @property
    def tasks(self) -> Tuple[tasks.Task, ...]:
        """One per label column, each with its classes (components/tasks.py)."""
        return tasks.tasks_of(self.label_key, self.label_names, self.task_label_names)


def component_config(settings: Any, data: DataSettings, code_version: Optional[str] = None) -> Dict[str, Any]:
    """The custom_config of a component that reads the data: its own settings and the data's, one flat object (each
    name is declared by one of the two classes only)."""
    own = to_custom_config(settings, code_version)
    shared = sorted(set(own) & {f.name for f in dataclasses.fields(DataSettings)})
    if shared:  # pragma: no cover - a settings class re-declaring a data setting is a programming error
        raise TypeError(f"{type(settings).__name__} re-declares the data settings {', '.join(shared)}")
    return {**own, **to_custom_config(data)}


def read_config(cls: Type[S], config: Optional[Mapping[str, Any]]) -> Tuple[S, DataSettings]:
    """(`cls`'s settings, the data's) from a component's custom_config, strictly: every key of both is there, and
    nothing else (but the code version and the Vertex AI Trainer's keys)."""
    settings = from_custom_config(cls, config, others=(DataSettings,))
    try:
        return settings, from_custom_config(DataSettings, config, others=(cls,))
    except SettingsError as e:
        raise SettingsError(f"the {component_name(cls)} custom_config holds the data settings too: {e}") from None
