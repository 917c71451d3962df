"""The front door's refusal: `InputError`, one sentence naming the file or flag and what to do (exit status 2), with a
machine-readable record; and an input file's own error (components/ingestion/csv_files.py's DataFileError) said as
one."""

from __future__ import annotations

import contextlib

from components.ingestion.csv_files import DataFileError


class InputError(ValueError):
    """The input cannot be used; the message says which file or flag and why.

    `kind` and `feature` make the machine-readable record of the problem (see `as_problem`), in the same shape as
    the anomalies of the data validation components (components/validation/gates.py).
    """

    def __init__(self, message: str, kind: str = "INVALID_INPUT", feature: str = "(input)", path: str = ""):
        super().__init__(message)
        self.kind, self.feature, self.path = kind, feature, path

    def as_problem(self) -> dict:
        return {"split": "", "feature": self.feature, "kind": self.kind, "description": str(self),
                "file": self.path}


@contextlib.contextmanager
def as_input_errors(copy=None, original=None):
    """An input file's DataFileError (components/ingestion/csv_files.py) as the front door's InputError: the same
    sentence and record, a local `copy` of an input on a store named as the user gave it (`original`)."""
    try:
        yield
    except DataFileError as e:
        raise InputError(as_given(str(e), copy, original), e.kind, e.feature, as_given(e.path, copy, original)) \
            from None


def as_given(text: str, copy, original) -> str:
    """`text` with the local copy's path of an input on a store replaced by the store's URI."""
    return text if copy == original else text.replace(str(copy), str(original).rstrip("/"))
