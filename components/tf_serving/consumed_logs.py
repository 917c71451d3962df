"""The ledger of consumed request logs: which closed log files (request_log.py) a completed run has already read, so
that every file is counted by exactly one run.

The ledger is a folder (under the pipeline root: pipeline/dag/serving_logs.py says where) of entries, one JSON file
per run that consumed logs: `{"files": [...], "requests": N, "reader": ..., "committed_at": ...}`. A file is
consumed when an entry names it. Why this gives exactly-once consumption (docs/serving_loop.md tells it for users):

- The reading step (ServingLogsGen) lists the prefix's closed files at run time and takes those no entry names. It
  writes no entry: what it read is in its own output (`serving_logs.json`). It is never answered from a cache, so a
  rerun or a cached run lists the files again.
- A later step commits (ServingLogsCommit): after the step that reports on the traffic has published its result, it
  writes one entry naming the files the reader read. The entry is written whole or not at all (`storage.write_file`:
  renamed into place locally, uploaded in one piece to an object store), and its name is derived from the reader's
  output, so a retried commit rewrites the same entry rather than adding one.
- A run killed during the read, or after it but before the commit, leaves no entry: the next run reads the same
  files again, and that run's figures are the ones reported. Nothing is lost (the files are still there) and nothing
  counts twice (the killed run never committed).
- A run killed after the commit is a run whose traffic figures were already published: the next run skips those
  files.
- Files are named by the server only once closed and whole (request_log.py), so a file listed once never grows.

Two runs of one pipeline must not read at the same time (both would read the same new files): the local runner holds
a lock per pipeline root, and a Kubeflow recurring run is created with at most one run at a time (docs/kubeflow.md).
TF-free but for object stores (tf.io.gfile), so the front door can read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Dict, Iterable, List, Optional, Set

from components.runtime import storage
from components.tf_serving import request_log

ENTRY_SUFFIX = ".json"


def _entry_names(ledger: str) -> List[str]:
    if not storage.is_uri(ledger):
        try:
            names = os.listdir(ledger)
        except (FileNotFoundError, NotADirectoryError):
            return []
    else:
        import tensorflow as tf

        try:
            names = [n.rstrip("/") for n in tf.io.gfile.listdir(ledger)]
        except tf.errors.NotFoundError:
            return []
    # Hidden names are the local disk's temporary files of an entry being written (storage.write_file).
    return sorted(n for n in names if n.endswith(ENTRY_SUFFIX) and not n.startswith("."))


def entries(ledger: str) -> List[Dict]:
    """The committed entries of `ledger` ([] when there is no ledger yet)."""
    found = []
    for name in _entry_names(ledger):
        text = storage.read_text(storage.join(ledger, name))
        if text is not None:
            found.append(json.loads(text))
    return found


def consumed(ledger: str) -> Set[str]:
    """The log files some committed run has read."""
    return {path for entry in entries(ledger) for path in entry.get("files", [])}


def new_files(prefix: str, ledger: str) -> List[str]:
    """The closed log files of `prefix` that no committed run has read, oldest first."""
    done = consumed(ledger)
    return [path for path in request_log.log_files(prefix) if path not in done]


def entry_name(reader_output: str) -> str:
    """The ledger entry of the reading step's output `reader_output` (its URI): the same name for the same read, so
    committing twice writes one entry."""
    return hashlib.sha256(reader_output.encode()).hexdigest()[:20] + ENTRY_SUFFIX


def commit(ledger: str, reader_output: str, files: Iterable[str], requests: int,
           now: Optional[float] = None) -> Optional[str]:
    """Writes the entry saying the files of `reader_output` are consumed; returns its path (None: nothing to record,
    the read found no new file)."""
    files = list(files)
    if not files:
        return None
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    path = storage.join(ledger, entry_name(reader_output))
    storage.write_file(path, json.dumps({"files": files, "requests": requests, "reader": reader_output,
                                         "committed_at": stamp}, indent=1))
    return path
