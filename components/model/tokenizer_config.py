"""The one rule for a checkpoint's lower-casing, TF-free: the front door reads it before anything heavy loads
(pipeline/cli/model_choice.py), and the checkpoint loader (hf_checkpoint.py) reads it again beside the weights."""

from __future__ import annotations

from typing import Any, Mapping

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


def lower_case(tokenizer_config: Mapping[str, Any]) -> bool:
    """`do_lower_case` of a checkpoint's tokenizer_config.json (an empty mapping when the file is absent); absent, the
    text is lower-cased, as the original uncased BERT tokenizer does."""
    return bool(tokenizer_config.get("do_lower_case", True))
