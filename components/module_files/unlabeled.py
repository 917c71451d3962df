"""A folder of unlabeled texts for the masked-LM stage (`--unlabeled-data DIR`): .csv files (the text column) and
.txt files (one text per line), read through TensorFlow's file systems (a local folder or a URI).

The front door checks the folder and takes its digest (file names, sizes and modification times), which goes into
the Pretrainer's settings: TFX's cache keys on settings, so changed files re-run the stage and unchanged ones do not.
"""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Iterator, List, Tuple

SUFFIXES = (".csv", ".txt")


class UnlabeledDataError(ValueError):
    """The folder or one of its files cannot be used; the message names it."""


def _gfile():
    import tensorflow as tf  # only when reading: the front door lists local folders without TensorFlow

    return tf.io.gfile


def list_files(folder: str) -> List[str]:
    """The .csv and .txt files directly in `folder`, sorted; an error when there is none."""
    gfile = _gfile()
    if not gfile.isdir(folder):
        raise UnlabeledDataError(f"--unlabeled-data {folder}: no such folder.")
    files = sorted(f"{folder.rstrip('/')}/{name}" for name in gfile.listdir(folder)
                   if name.lower().endswith(SUFFIXES) and not name.startswith("."))
    if not files:
        raise UnlabeledDataError(f"--unlabeled-data {folder} has no .csv or .txt file.")
    return files


def read_texts(path: str, text_key: str) -> Iterator[str]:
    """The non-empty texts of one file: a .txt file's lines, a .csv file's `text_key` column."""
    with _gfile().GFile(path, "rb") as f:
        raw = f.read()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UnlabeledDataError(f"{path} is not UTF-8 text (byte {e.start}).") from None
    if path.lower().endswith(".txt"):
        yield from (line.strip() for line in content.splitlines() if line.strip())
        return
    reader = csv.DictReader(io.StringIO(content, newline=""))
    if text_key not in (reader.fieldnames or []):
        raise UnlabeledDataError(f"{path} has no column {text_key!r} (its columns: "
                                 f"{', '.join(reader.fieldnames or []) or 'none'}); unlabeled CSV files need the "
                                 f"--text-column.")
    for row in reader:
        text = (row.get(text_key) or "").strip()
        if text:
            yield text


def check(folder: str, text_key: str) -> Tuple[int, str]:
    """(number of texts, digest) of a folder, reading every file once: its errors are the user's to fix."""
    gfile = _gfile()
    digest = hashlib.sha256()
    count = 0
    for path in list_files(folder):
        stat = gfile.stat(path)
        digest.update(f"{path}\0{stat.length}\0{stat.mtime_nsec}\0".encode())
        count += sum(1 for _ in read_texts(path, text_key))
    if count == 0:
        raise UnlabeledDataError(f"--unlabeled-data {folder}: its files hold no text.")
    return count, digest.hexdigest()[:16]
