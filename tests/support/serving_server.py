"""Helpers of the serving tests: publishing model versions by hand and through the Pusher's executor, and a watcher
of the serving folder that polls it as TF Serving does."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from pipeline.serving.process import MODEL
from pipeline.serving.process import ServerProcess as Server  # the tests' name for it


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


class ServingDirWatcher(threading.Thread):
    """Polls a serving base directory the way TF Serving does (all-digit folders are versions) and records every
    version folder it sees that is not a complete copy of the model."""

    def __init__(self, base: Path, manifest: dict):
        super().__init__(daemon=True)
        self.base, self.manifest = base, manifest
        self.stop_event = threading.Event()
        self.incomplete, self.complete_seen, self.polls = [], 0, 0

    def check(self, version_dir: Path):
        missing = []
        for rel, size in self.manifest.items():
            try:
                actual = (version_dir / rel).stat().st_size
            except FileNotFoundError:
                actual = None
            if actual != size:
                missing.append(f"{rel}: {actual} of {size} bytes")
        return missing

    def run(self):
        while not self.stop_event.is_set():
            self.polls += 1
            names = os.listdir(self.base) if self.base.is_dir() else []
            for name in names:
                if name.isdigit():
                    missing = self.check(self.base / name)
                    if missing:
                        self.incomplete.append((name, missing[:3]))
                    else:
                        self.complete_seen += 1
            time.sleep(0.001)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=30)


__all__ = ["MODEL", "Server", "ServingDirWatcher", "copy_version", "push_model"]
