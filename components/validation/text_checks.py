"""The thresholds of the checks on the tokenized text (components/validation/text_stats.py): defaults, and the
`text_checks.toml` beside a curated schema that overrides them. No TensorFlow here: the runners read it at start.
"""

from __future__ import annotations

import os
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (requirements.lock)
    import tomli as tomllib
from typing import Dict, Optional

CHECKS_FILE = "text_checks.toml"  # beside a curated schema.pbtxt

# Shares are fractions in [0, 1]. A maximum of 1 (or a minimum of 0) switches a check off.
DEFAULT_CHECKS = {
    "max_empty_share": 0.0,  # texts without any token (empty or whitespace-only after normalization)
    "max_truncated_share": 0.5,  # texts longer than max_seq_length tokens, cut to it
    "max_unk_share": 0.05,  # [UNK] among all WordPiece tokens
    "min_word_coverage": 0.95,  # words the vocabulary represents without [UNK]
    "max_token_count_drift": 0.25,  # Jensen-Shannon divergence of the train split's token counts vs the baseline's
    # --serving-logs (components/validation/serving_skew.py): the L-infinity distance between the shares of the classes
    # the model in service answered and the training labels' shares (its traffic is held to the checks above too).
    "max_predicted_class_shift": 0.2,
}


def load_checks(path: Optional[str]) -> Dict[str, float]:
    """The thresholds of a text_checks.toml (DEFAULT_CHECKS for what it leaves out, or with no file)."""
    checks = dict(DEFAULT_CHECKS)
    if not path:
        return checks
    with open(path, "rb") as f:
        try:
            given = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path} is not valid TOML ({e}).") from None
    for key, value in given.items():
        if key not in DEFAULT_CHECKS:
            raise ValueError(f"{path}: unknown check {key!r}; the checks are {', '.join(DEFAULT_CHECKS)}.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{path}: {key} must be a number between 0 and 1, not {value!r}.")
        checks[key] = float(value)
    return checks


def checks_file_for(schema_file: Optional[str]) -> Optional[str]:
    """The text_checks.toml beside a curated schema, when there is one."""
    if not schema_file:
        return None
    path = os.path.join(os.path.dirname(schema_file), CHECKS_FILE)
    return path if os.path.isfile(path) else None
