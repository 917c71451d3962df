"""The versions of one model folder, served under a TensorFlow Serving version policy.

`SERVING_DIR/MODEL_NAME/<version>/` folders (all digits; hidden staging folders such as the Pusher's `.tmp-push-*`
and any other name are ignored) are polled every `poll_seconds`. The policy (components/tf_serving/model_config.py:
by default TF Serving's, the newest version; from a model config file, the latest N, specific versions or all) says
which of the versions that have not failed to serve. Each is loaded in the background and answers its warm-up requests
(components/module_files/warmup.py, as TF Serving replays them) before it serves; a version the policy no longer names
is unloaded only once one it names is serving, so the model never goes dark during a switch. A request holds the
version it started with, so requests in flight finish on the old version. A request without a version goes to the
highest version serving; version labels (`stable`, `canary`) name versions, and a label moves only to a version
that is serving (TF Serving's rule), keeping its old version until then. A version that fails to load or to warm up
is reported (state END, its error) and not retried; the versions serving keep serving. A folder without
saved_model.pb yet is waited for."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from components.runtime.storage import is_uri
from components.tf_serving import model_config
from pipeline.serving import rest
from pipeline.serving.batching import Arrays, Batcher

log = logging.getLogger("serve")

# TF Serving's ManagerState names, as its REST status endpoint reports them.
LOADING, AVAILABLE, END = "LOADING", "AVAILABLE", "END"


@dataclass
class VersionStatus:
    version: int
    state: str
    error: str = ""

    def as_json(self) -> dict:
        return {"version": str(self.version), "state": self.state,
                "status": {"error_code": "UNKNOWN" if self.error else "OK", "error_message": self.error}}


@dataclass
class Signature:
    """A signature of a loaded version: its inputs and a callable on numpy arrays (through a batcher or not)."""

    name: str
    inputs: Dict[str, rest.InputSpec]
    function: Callable
    batcher: Optional[Batcher] = None

    def __call__(self, inputs: Arrays) -> Arrays:
        import tensorflow as tf

        outputs = self.function(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


@dataclass
class LoadedVersion:
    version: int
    path: str
    signatures: Dict[str, Signature]
    metadata: dict  # TF Serving's GetModelMetadata `signature_def` JSON
    model: object = field(repr=False, default=None)  # keeps the SavedModel's objects alive

    def method_name(self, signature: str) -> str:
        """The signature's TF Serving method name (tensorflow/serving/predict, .../classify, .../regress)."""
        return self.metadata.get("signature_def", {}).get(signature, {}).get("method_name", "")

    def close(self) -> None:
        for signature in self.signatures.values():
            if signature.batcher:
                signature.batcher.close()


@dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int
    timeout_ms: float


def _input_specs(function) -> Dict[str, rest.InputSpec]:
    specs = function.structured_input_signature[1]
    return {name: rest.InputSpec(spec.dtype.name, tuple(spec.shape.as_list()) if spec.shape.rank is not None else ())
            for name, spec in specs.items()}


def _signature_metadata(path: str) -> dict:
    """The SavedModel's SignatureDefMap as JSON, the way TF Serving's metadata endpoint writes it."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:  # a local folder or an object store
        saved.ParseFromString(f.read())
    graph = next((m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags), saved.meta_graphs[0])
    # TF Serving's own message (tensorflow_serving/apis/get_model_metadata.proto): its JSON is the REST answer, and
    # it packs into the gRPC one as it is.
    signature_map = get_model_metadata_pb2.SignatureDefMap(signature_def=graph.signature_def)
    # Fields at their default values too (unknown_rank, each dim's name, the init op's empty inputs...), as TF
    # Serving prints them.
    return json_format.MessageToDict(signature_map, preserving_proto_field_name=True,
                                     including_default_value_fields=True)


def load_version(version: int, path: str, batching: Optional[BatchingOptions],
                 on_batch: Optional[Callable[[str, int], None]] = None) -> LoadedVersion:
    """Loads a SavedModel and replays its warm-up requests; raises with a one-line reason when either fails."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tokenizer's ops)

    from components.module_files import warmup

    model = tf.saved_model.load(path, tags=["serve"])
    signatures = {name: Signature(name, _input_specs(fn), fn) for name, fn in model.signatures.items()}
    for i, (name, inputs) in enumerate(warmup.read_requests(path)):
        if name not in signatures:
            raise RuntimeError(f"warm-up request {i + 1} names signature {name!r}, which the model does not have")
        try:
            signatures[name](inputs)
        except Exception as e:  # noqa: BLE001 - the version is reported as failed with this reason
            raise RuntimeError(f"warm-up request {i + 1} on {name!r} failed: {type(e).__name__}: "
                               f"{str(e).strip().splitlines()[0][:300]}") from None
    if batching:
        for signature in signatures.values():
            signature.batcher = Batcher(signature, batching.max_batch_size, batching.timeout_ms,
                                        name=f"{version}-{signature.name}",
                                        on_batch=(lambda size, n=signature.name: on_batch(n, size)) if on_batch
                                        else None)
    return LoadedVersion(version, path, signatures, _signature_metadata(path), model)


class ModelRegistry:
    """The versions of `base_dir` (SERVING_DIR/MODEL_NAME): which serve under the policy, and the status of each."""

    def __init__(self, base_dir: str, name: str, poll_seconds: float = 1.0,
                 batching: Optional[BatchingOptions] = None, policy: Optional[model_config.ModelPolicy] = None,
                 on_batch: Optional[Callable[[str, str, int], None]] = None):
        self.base_dir, self.name, self.poll_seconds, self.batching = base_dir, name, poll_seconds, batching
        self.policy = policy or model_config.default_policy(name, base_dir)
        self.loaded: Dict[int, LoadedVersion] = {}  # replaced whole, never changed in place: readers need no lock
        self.labels: Dict[str, int] = {}  # label -> version, for versions serving
        self.statuses: Dict[int, VersionStatus] = {}
        self._on_batch = on_batch
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def current(self) -> Optional[LoadedVersion]:
        """The version a request without a version goes to: the highest one serving."""
        loaded = self.loaded
        return loaded[max(loaded)] if loaded else None

    # -- versions on disk ---------------------------------------------------------------------------------------
    def version_folders(self) -> Dict[int, str]:
        """Version number -> folder, for the all-digit folders that hold a saved_model.pb (on an object store the
        Pusher writes saved_model.pb last, so its presence marks a complete version there too)."""
        if not is_uri(self.base_dir):
            try:
                names = os.listdir(self.base_dir)
            except FileNotFoundError:
                return {}
            return {int(n): os.path.join(self.base_dir, n) for n in names
                    if n.isdigit() and os.path.isfile(os.path.join(self.base_dir, n, "saved_model.pb"))}
        import tensorflow as tf

        if not tf.io.gfile.isdir(self.base_dir):
            return {}
        names = [n.rstrip("/") for n in tf.io.gfile.listdir(self.base_dir)]
        return {int(n): f"{self.base_dir}/{n}" for n in names
                if n.isdigit() and tf.io.gfile.exists(f"{self.base_dir}/{n}/saved_model.pb")}

    def aspired(self) -> Dict[int, str]:
        """Version -> folder, for the versions the policy serves out of those that have not failed."""
        with self._lock:
            failed = {v for v, s in self.statuses.items() if s.error}
        folders = {v: path for v, path in self.version_folders().items() if v not in failed}
        return {v: folders[v] for v in self.policy.served(folders)}

    def set_policy(self, policy: model_config.ModelPolicy) -> None:
        """A new version policy and labels (a re-read model config file); applied at the next poll."""
        self.policy = policy

    # -- loading ------------------------------------------------------------------------------------------------
    def _load(self, target: int, path: str) -> bool:
        with self._lock:
            self.statuses[target] = VersionStatus(target, LOADING)
        start = time.time()
        on_batch = (lambda signature, size: self._on_batch(self.name, signature, size)) if self._on_batch else None
        try:
            loaded = load_version(target, path, self.batching, on_batch)
        except Exception as e:  # noqa: BLE001 - reported in the status endpoint; the versions serving keep serving
            message = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:500]}" if str(e).strip() \
                else type(e).__name__
            with self._lock:
                self.statuses[target] = VersionStatus(target, END, f"failed to load {path}: {message}")
            log.warning("version %s of %s failed to load: %s", target, self.name, message)
            return False
        with self._lock:
            self.loaded = {**self.loaded, target: loaded}  # one assignment: new requests see it from here
            self.statuses[target] = VersionStatus(target, AVAILABLE)
        log.info("serving version %s of %s (loaded and warmed up in %.1f s)", target, self.name, time.time() - start)
        return True

    def poll_once(self) -> None:
        """Loads the aspired versions not serving yet (newest first), then unloads those no longer aspired once an
        aspired one serves, then moves the labels."""
        aspired = self.aspired()
        for version in sorted(set(aspired) - set(self.loaded), reverse=True):
            if self._stop.is_set():
                return
            self._load(version, aspired[version])
        leaving = [v for v in self.loaded if v not in aspired]
        if leaving and any(v in self.loaded for v in aspired):
            with self._lock:
                old = self.loaded
                self.loaded = {v: lv for v, lv in old.items() if v in aspired}
                for v in leaving:
                    self.statuses[v] = VersionStatus(v, END)
            for v in leaving:
                old[v].close()  # its batchers answer what they already hold, then stop
                log.info("version %s of %s unloaded (%s)", v, self.name, self.policy.describe())
        elif not aspired and self.loaded and self.policy.kind == model_config.SPECIFIC:
            log.warning("the version policy of %s serves %s, which %s has not got: the versions serving stay",
                        self.name, self.policy.describe(), self.base_dir)
        self._move_labels()

    def _move_labels(self) -> None:
        labels = {}
        for label, version in self.policy.labels.items():
            if version in self.loaded:
                labels[label] = version
            elif self.labels.get(label) in self.loaded:  # kept until its new version serves (TF Serving's rule)
                labels[label] = self.labels[label]
        if labels != self.labels:
            self.labels = labels
            log.info("labels of %s: %s", self.name, ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
                     or "none")

    def start(self) -> None:
        """Polls in a background thread (the first poll, which loads the served versions, too)."""
        def loop():
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except Exception:  # noqa: BLE001 - a poll must never kill the poller
                    log.exception("polling %s failed", self.base_dir)
                self._stop.wait(self.poll_seconds)

        self._thread = threading.Thread(target=loop, name=f"version-poller-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        for loaded in self.loaded.values():
            loaded.close()

    # -- lookups for the APIs -----------------------------------------------------------------------------------
    def status(self, version: Optional[int] = None) -> List[dict]:
        with self._lock:
            statuses = sorted(self.statuses.values(), key=lambda s: -s.version)
        if version is not None:
            statuses = [s for s in statuses if s.version == version]
        return [s.as_json() for s in statuses]

    def version_for_label(self, label: str) -> int:
        """The version `label` names, or TF Serving's answer for an unknown label."""
        if label not in self.labels:
            known = ", ".join(sorted(self.labels)) or "none"
            raise rest.RestError(400, f"Unrecognized servable version label: {label} (labels of {self.name}: "
                                      f"{known})")
        return self.labels[label]

    def serving(self, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        """The version a request goes to (a version, a label or neither), or TF Serving's 404."""
        if label is not None:
            version = self.version_for_label(label)
        loaded = self.loaded
        if version is None and loaded:
            return loaded[max(loaded)]
        if version is not None and version in loaded:
            return loaded[version]
        which = f"Specific({self.name}, {version})" if version is not None else f"Latest({self.name})"
        raise rest.RestError(404, f"Servable not found for request: {which}")
