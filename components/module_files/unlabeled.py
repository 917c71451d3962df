"""Unlabeled texts (`--unlabeled-data`): a folder of .csv files (the text column) and .txt files (one text per line), or
a request-log prefix (what the model server was asked: components/tf_serving/request_log.py), read through
TensorFlow's file systems (a local path or a URI). The masked-LM stage reads them as domain text; the Distiller, with
--distill-unlabeled, as texts the teacher never trained on, whose answers it adds to the student's transfer set.

Which it is: a folder holding .csv or .txt files is a folder of texts; otherwise a prefix with closed request-log
files is a request log. A request log's texts are the text input of each logged Predict request (`text`, the
serving_default signature's) and the text column's feature of each Classify, Regress or MultiInference request's
tf.Examples; a text logged twice counts twice, as it was asked twice.

The front door checks the location and takes its digest (the files' names, sizes and modification times), which
goes into the settings of the steps that read it: TFX's cache keys on settings, so changed files re-run those steps
and unchanged ones do not. A request log grows while the pipeline runs, so the front door also records the newest
log file it digested (`until`), and the steps read exactly the files up to it: the files read are the files the
cache key names. A step that finds those files changed (a file pruned by the server's retention meanwhile) stops
with a line saying so rather than train on other texts than its key says.
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


def _text_files(folder: str) -> List[str]:
    gfile = _gfile()
    if not gfile.isdir(folder):
        return []
    return sorted(f"{folder.rstrip('/')}/{name}" for name in gfile.listdir(folder)
                  if name.lower().endswith(SUFFIXES) and not name.startswith("."))


def list_files(location: str, until: str = "") -> List[str]:
    """The files to read: a folder's .csv and .txt files, else the closed request-log files of a prefix (those whose
    name sorts at or before `until`'s when it is given), sorted; an error when there is none."""
    from components.tf_serving import request_log

    files = _text_files(location)
    if files:
        return files
    logs = request_log.log_files(location)
    if not logs and _gfile().isdir(location):  # a folder the server logs into (its prefix ends in "/")
        logs = request_log.log_files(location.rstrip("/") + "/")
    if until:
        logs = [path for path in logs if path.rsplit("/", 1)[-1] <= until.rsplit("/", 1)[-1]]
    if logs:
        return logs
    if _gfile().isdir(location):
        raise UnlabeledDataError(f"--unlabeled-data {location} has no .csv or .txt file, nor request-log files: "
                                 "name a folder of texts or the prefix the server logs requests to.")
    raise UnlabeledDataError(f"--unlabeled-data {location}: no such folder, nor request-log files with this prefix.")


def is_request_log(path: str) -> bool:
    from components.tf_serving import request_log

    return path.endswith(request_log.SUFFIX)


def _logged_texts(path: str, text_key: str) -> Iterator[str]:
    """The texts of one request-log file: the Predict requests' `text` input, the other requests' tf.Examples'
    `text_key` feature."""
    from components.tf_serving import request_log

    try:
        logs = list(request_log.read([path]))
    except Exception as e:  # noqa: BLE001 - TensorFlow's DataLossError and its kin: the file is not a request log
        raise UnlabeledDataError(f"{path} is not a readable request-log file ({type(e).__name__}).") from None
    for log in logs:
        key = "text" if log.WhichOneof("log_type") == "predict_log" else text_key
        for example in request_log.examples(log, key):
            if isinstance(example.text, str) and example.text.strip():
                yield example.text.strip()


def read_texts(path: str, text_key: str) -> Iterator[str]:
    """The non-empty texts of one file: a .txt file's lines, a .csv file's `text_key` column, a request-log file's
    logged texts."""
    if is_request_log(path):
        yield from _logged_texts(path, text_key)
        return
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


def digest(files: List[str]) -> str:
    """The digest of the files' names, sizes and modification times (TFX's cache key for the texts)."""
    gfile = _gfile()
    found = hashlib.sha256()
    for path in files:
        stat = gfile.stat(path)
        found.update(f"{path}\0{stat.length}\0{stat.mtime_nsec}\0".encode())
    return found.hexdigest()[:16]


def check(location: str, text_key: str) -> Tuple[int, str, str]:
    """(number of texts, digest, until) of a folder or request-log prefix, reading every file once: its errors are the
    user's to fix. `until`: the newest request-log file read (the steps read up to it), "" for a folder."""
    files = list_files(location)
    count = sum(1 for path in files for _ in read_texts(path, text_key))
    if count == 0:
        raise UnlabeledDataError(f"--unlabeled-data {location}: its files hold no text.")
    until = files[-1].rsplit("/", 1)[-1] if is_request_log(files[-1]) else ""
    return count, digest(files), until


def texts(location: str, text_key: str, expected_digest: str = "", until: str = "") -> List[str]:
    """Every text of `location` (up to the request-log file `until`), for a step. With `expected_digest` (the front
    door's), the files must be the ones it digested."""
    files = list_files(location, until)
    if expected_digest and digest(files) != expected_digest:
        raise UnlabeledDataError(f"--unlabeled-data {location}: its files changed after the run was planned (one was "
                                 "removed or rewritten), so this step would read other texts than its cache key "
                                 "names; run the command again.")
    return [text for path in files for text in read_texts(path, text_key)]
