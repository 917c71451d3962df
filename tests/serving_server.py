"""Helpers of the serving tests: publishing model versions by hand and through the Pusher's executor."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.serving.process import MODEL, ServerProcess as Server  # noqa: F401  (the tests' name for it)


def copy_version(model_dir: Path, serving_dir: Path, version: int) -> Path:
    """Publishes a copy of a SavedModel as `version` (copied beside, then renamed into place: never half a folder)."""
    base = serving_dir / MODEL
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f".staging-{version}"
    shutil.copytree(model_dir, staging)
    target = base / str(version)
    os.rename(staging, target)
    return target


def push_model(executor_class, model_uri: Path, base: Path, pushed_uri: Path, blessed: bool = True):
    """Runs a Pusher executor the way TFX does: artifacts in, a PushedModel artifact out."""
    from tfx.proto import pusher_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    model = standard_artifacts.Model()
    model.uri = str(model_uri)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(pushed_uri) + "-blessing"
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(pushed_uri)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base)))
    executor_class().Do({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
                        {"push_destination": proto_utils.proto_to_json(destination), "custom_config": "null"})
    return pushed
