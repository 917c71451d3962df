"""A Pusher executor that never exposes a partially written model to TensorFlow Serving.

TFX's stock Pusher creates `base_directory/<version>/` and copies the model into it file by file (saved_model.pb
last). TF Serving polls `base_directory` and may see the new version folder while `variables/` or `assets/` is
still being written. This executor lets the stock one do all of its work (the blessing check, the versioning,
the copy order, the archive copy into the PushedModel artifact, the artifact's properties) but points it at a
staging folder on the same filesystem, `base_directory/.tmp-push-<random>/`, and then moves the finished
`<version>/` folder into `base_directory` with one rename(2), which is atomic on a POSIX filesystem: a reader sees
either no version folder or a complete one. The staging folder's name starts with a dot and is not a number, so TF
Serving (which loads only all-digit version folders) ignores it.

Before the rename every staged file and folder is fsync'ed, and the base directory after it, so that a machine
crash right after the push cannot leave a version folder with empty files either.

Limitation: only local paths (no `scheme://`) are renamed atomically. On object stores (gs://, s3://) a folder
"rename" is a copy and a delete per object, in name order, which would expose saved_model.pb before variables/;
there this executor falls back to the stock behaviour unchanged (saved_model.pb written last, which TF Serving
treats as the version's completion marker).

Used by pipeline/dag/pipeline.py through `custom_executor_spec`; the class is referenced by module path, so it runs
from this checkout locally and from the code baked into the image on Kubeflow.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import executor as stock
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.runtime.storage import is_uri

STAGING_PREFIX = ".tmp-push-"
# Staging folders older than this were left by a push that was killed mid-copy; the next push removes them.
STALE_STAGING_SECONDS = 24 * 3600


def _fsync_tree(root: str) -> None:
    """Flushes every file and folder under `root` (and `root` itself) to disk."""
    for dir_name, _, files in os.walk(root, topdown=False):
        for name in files:
            with open(os.path.join(dir_name, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(dir_name)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_staging(base: str) -> None:
    now = time.time()
    for name in os.listdir(base):
        path = os.path.join(base, name)
        try:
            if name.startswith(STAGING_PREFIX) and now - os.stat(path).st_mtime > STALE_STAGING_SECONDS:
                logging.warning("Removing a staging folder left by an interrupted push: %s", path)
                shutil.rmtree(path, ignore_errors=True)
        except FileNotFoundError:  # removed by someone else meanwhile
            pass


class AtomicPusherExecutor(stock.Executor):
    """The stock Pusher executor, writing into a staging folder and renaming the version folder into place."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory if destination.WhichOneof("destination") == "filesystem" else ""
        if not base or is_uri(base):
            if base:
                logging.warning("Pushing to %s without an atomic rename (not a local path).", base)
            super().Do(input_dict, output_dict, exec_properties)
            return

        os.makedirs(base, exist_ok=True)
        _remove_stale_staging(base)
        staging = os.path.join(base, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
        destination.filesystem.base_directory = staging
        staged_properties = {**exec_properties,
                             standard_component_specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)}
        try:
            super().Do(input_dict, output_dict, staged_properties)
            pushed_model = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
            if not pushed_model.get_int_custom_property(stock._PUSHED_KEY):  # not blessed: nothing was copied
                return
            version = pushed_model.get_string_custom_property(stock._PUSHED_VERSION_KEY)
            staged = os.path.join(staging, version)
            _fsync_tree(staged)
            version, serving_path = self._move_into_place(staged, base, version)
            self._MarkPushed(pushed_model, pushed_destination=serving_path, pushed_version=version)
            logging.info("Model atomically published to serving path %s.", serving_path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _move_into_place(staged: str, base: str, version: str):
        """Renames `staged` to `base/<version>`. Versions are Unix timestamps; when that folder is already taken
        (two pushes in the same second) the next free number is used, so the pushed model is never mixed up
        with, or reported as, another one."""
        number = int(version)
        while True:
            serving_path = os.path.join(base, str(number))
            if not os.path.exists(serving_path):
                try:
                    # rename(2): atomic; fails (ENOTEMPTY/EEXIST) if a non-empty folder appeared meanwhile.
                    os.rename(staged, serving_path)
                    _fsync_dir(base)
                    return str(number), serving_path
                except OSError:
                    if not os.path.exists(serving_path):
                        raise
            number += 1
