"""Folders of versions: how a run leaves something for the next one without ML Metadata.

A base folder holds one sub-folder per version, named by a number that grows (the Pusher's serving folder,
`serving_dir/model_name/<version>/`, is one: TF Serving serves its highest version). The gates publish the statistics
they accepted the same way, under `<pipeline root>/baselines/<gate id>/<version>/`, each version with a
`baseline.json` saying which run, span and time produced it. A reader takes the highest complete version; names that
are not all digits (a staging folder) are never read.

Publishing is atomic where the filesystem allows it: the version is written under a hidden staging name in the base
folder and renamed into place (rename(2) on a local path, as components/release/pusher.py does for models). On an
object store (gs://, s3://) there is no rename of a folder, so the version is written in place with its record file
last, and a version without its record file (or, for a model, without saved_model.pb) is not complete: readers skip
it. Folders are read and written through tf.io.gfile, so every filesystem TensorFlow knows works.
"""

from __future__ import annotations

import datetime
import json
import os
import time
import uuid
from typing import Optional

from components.runtime.storage import copy_tree, is_uri, join

RECORD_FILE = "baseline.json"  # in each published statistics version, and in every lookup output
STAGING_PREFIX = ".tmp-baseline-"
MODEL_MARKER = "saved_model.pb"  # a model version is complete once this file is there (TF Serving's rule)


def versions(base: str, marker: str = RECORD_FILE) -> list:
    """The complete versions under `base`, lowest first (all-digit names holding `marker`); [] when there is no
    such folder."""
    import tensorflow as tf  # deferred: importing TF is slow and this module is imported at pipeline build

    if not tf.io.gfile.isdir(base):
        return []
    names = sorted((name.rstrip("/") for name in tf.io.gfile.listdir(base) if name.rstrip("/").isdigit()), key=int)
    return [name for name in names if tf.io.gfile.exists(join(base, name, marker))]


def newest(base: str, marker: str = RECORD_FILE) -> Optional[str]:
    """The folder of the highest complete version under `base`, or None."""
    found = versions(base, marker)
    return join(base, found[-1]) if found else None


def read_record(folder: str) -> dict:
    import tensorflow as tf

    path = join(folder, RECORD_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def write_record(folder: str, record: dict) -> None:
    import tensorflow as tf

    tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(join(folder, RECORD_FILE), "w") as f:
        f.write(json.dumps(record, indent=1, sort_keys=True) + "\n")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def publish(source: str, base: str, record: dict) -> str:
    """Publishes a copy of folder `source` (and `record`, as baseline.json) as the next version under `base`;
    returns its folder. Versions are Unix times in milliseconds (the next free number when taken), so the newest
    publication is the highest."""
    import tensorflow as tf

    tf.io.gfile.makedirs(base)
    number = max([int(time.time() * 1000), *[int(v) + 1 for v in versions(base)]])
    if is_uri(base):
        target = join(base, str(number))
        copy_tree(source, target)
        write_record(target, {**record, "version": str(number)})  # last: the version is complete from here on
        return target
    staging = join(base, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    try:
        copy_tree(source, staging)
        while True:
            target = join(base, str(number))
            write_record(staging, {**record, "version": str(number)})
            if not os.path.exists(target):
                try:
                    os.rename(staging, target)  # atomic: a reader sees no version or a complete one
                    return target
                except OSError:
                    if not os.path.exists(target):
                        raise
            number += 1  # taken meanwhile by a concurrent run
    finally:
        if os.path.exists(staging):
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
