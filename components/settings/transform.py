"""The Transform module's settings (components/module_files/preprocessing.py reads them from its `custom_config`, beside
the data's: components/settings/data.py)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from components.features import CLS, MIN_LEARNED_VOCAB_SIZE, SEP, TRUNCATIONS
from components.settings.base import CustomConfigMixin, SettingsError, setting, validate


@dataclasses.dataclass(frozen=True)
class TransformSettings(CustomConfigMixin):
    """What the Transform module (components/module_files/preprocessing.py) reads besides the data's settings: the
    component's `custom_config`, serialized and read back strictly by components/settings/base.py. Flags: see
    `setting(flag=...)`."""

    COMPONENT: ClassVar[str] = "Transform"

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
    learned_vocab_size: int = setting(
        8000, "target size of a learned vocabulary, special tokens included (only with --vocab learn)",
        flag="--vocab-size", positive=True)

    def __post_init__(self):
        validate(self)
        if self.learned_vocab_size < MIN_LEARNED_VOCAB_SIZE:
            raise SettingsError(f"Transform setting 'learned_vocab_size' (--vocab-size) must be at least "
                                f"{MIN_LEARNED_VOCAB_SIZE}; got {self.learned_vocab_size}.")
        if self.max_seq_length < 2:
            raise SettingsError(f"Transform setting 'max_seq_length' must leave room for {CLS} and {SEP}; got "
                                f"{self.max_seq_length}.")
