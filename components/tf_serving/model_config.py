"""What a model server serves: TF Serving's model config file and version policies, read in one place.

A model config file is TF Serving's `--model_config_file`: a text `ModelServerConfig` (tensorflow_serving/config/
model_server_config.proto) listing models by name and base path, each with a version policy (`latest { num_versions:
N }`, the default with N = 1; `specific { versions: ... }`; `all {}`) and version labels (`version_labels { key:
"stable" value: 3 }`). A request that names no version goes to the highest version the policy serves.

Two readers share this module, so they never disagree about "the model in service": the local server
(pipeline/serving/, which loads the versions a policy names) and BaselineLookup (components/baselines/lookup.py, which
hands a run that model as the Evaluator's baseline and --warm-start's starting point). Pinning a version after a bad
push (`specific { versions: 3 }`) therefore pins the next run's baseline too.

A model's `logging_config` (TF Serving's `log_collector_config { type filename_prefix }` and `sampling_config {
sampling_rate }`) says whether the server keeps its requests (request_log.py); it is checked here with the rest of the
file, so a collector type this server does not have or a rate outside [0, 1] stops the server at start, and the
pipeline, which reads the same file, learns where the traffic is logged.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from components.runtime.storage import is_uri

LATEST, SPECIFIC, ALL = "latest", "specific", "all"
# The log collector types the server has. TF Serving's model server registers none in its open-source build (a
# logging_config there fails: tensorflow/serving#408); this one's is the TFRecord file of PredictionLog protos.
TFRECORD_COLLECTOR = "tfrecord"
COLLECTORS = (TFRECORD_COLLECTOR,)


class ConfigError(ValueError):
    """A model config file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class RequestLogging:
    """Where a model's requests are logged and how many: TF Serving's LoggingConfig, checked."""

    filename_prefix: str  # a local path or an s3:// / gs:// prefix (request_log.py names the files)
    sampling_rate: float = 1.0
    collector: str = TFRECORD_COLLECTOR

    def describe(self) -> str:
        return f"its requests at sampling rate {self.sampling_rate:g} to {self.filename_prefix}"


def request_logging(prefix: str, rate: float, collector: str = TFRECORD_COLLECTOR,
                    where: str = "--request-log") -> RequestLogging:
    """The checked logging settings, or ConfigError naming `where` and the field at fault."""
    if collector not in COLLECTORS:
        raise ConfigError(f"{where}: log_collector_config.type {collector!r} is not a log collector of this server "
                          f"(it has {', '.join(repr(c) for c in COLLECTORS)})")
    if not prefix:
        raise ConfigError(f"{where}: log_collector_config.filename_prefix is empty: name the files' path prefix "
                          "(a local path, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX)")
    if not 0.0 <= rate <= 1.0:  # NaN fails too
        raise ConfigError(f"{where}: sampling_config.sampling_rate {rate!r} must be between 0 and 1")
    return RequestLogging(prefix, rate, collector)


@dataclass(frozen=True)
class ModelPolicy:
    """One model of a config file: where its versions are and which of them are served."""

    name: str
    base_path: str
    kind: str = LATEST
    num_versions: int = 1  # for LATEST
    versions: Tuple[int, ...] = ()  # for SPECIFIC
    labels: Dict[str, int] = field(default_factory=dict)
    logging: Optional[RequestLogging] = None  # None: the model's requests are not logged

    def served(self, available: Iterable[int]) -> List[int]:
        """The versions this policy serves out of `available` (version folders that can be loaded), highest first."""
        versions = sorted(set(available), reverse=True)
        if self.kind == LATEST:
            return versions[:self.num_versions]
        if self.kind == SPECIFIC:
            return [v for v in versions if v in self.versions]
        return versions

    def latest(self, available: Iterable[int]) -> Optional[int]:
        """The version a request without a version goes to: the highest one served (None when none is)."""
        served = self.served(available)
        return served[0] if served else None

    def describe(self) -> str:
        if self.kind == LATEST:
            return f"the latest {self.num_versions}" if self.num_versions > 1 else "the latest version"
        if self.kind == SPECIFIC:
            return "version" + ("s " if len(self.versions) > 1 else " ") + ", ".join(map(str, self.versions))
        return "every version"


def default_policy(name: str, base_path: str) -> ModelPolicy:
    """TF Serving's policy without a config file: the newest version only."""
    return ModelPolicy(name, base_path)


def _logging(model, config_file: str, where: str) -> Optional[RequestLogging]:
    if not model.HasField("logging_config"):
        return None
    config = model.logging_config
    collector = config.log_collector_config
    prefix = collector.filename_prefix
    if prefix and not is_uri(prefix):  # relative: to the config file's folder, as base_path; a final / is kept
        prefix = _resolve(prefix, config_file) + ("/" if prefix.endswith("/") else "")
    rate = config.sampling_config.sampling_rate if config.HasField("sampling_config") else 0.0
    return request_logging(prefix, rate, collector.type, f"{where}: logging_config")


def _resolve(base_path: str, config_file: str) -> str:
    if is_uri(base_path):
        return base_path.rstrip("/")
    if os.path.isabs(base_path):
        return os.path.normpath(base_path)
    # Relative to the config file's folder (TF Serving: to its working directory), so a config file travels with
    # the serving folder it describes.
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(config_file)), base_path))


def parse(text: str, config_file: str) -> Dict[str, ModelPolicy]:
    """Model name -> policy, from a config file's text; raises ConfigError with one sentence naming the file."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as e:
        raise ConfigError(f"{config_file} is not a text ModelServerConfig: {e}") from None
    if config.WhichOneof("config") != "model_config_list" or not config.model_config_list.config:
        raise ConfigError(f"{config_file} lists no model: it needs model_config_list {{ config {{ name: ... "
                          "base_path: ... }} }}")
    policies: Dict[str, ModelPolicy] = {}
    for model in config.model_config_list.config:
        where = f"{config_file}, model {model.name!r}"
        if not model.name or not model.base_path:
            raise ConfigError(f"{config_file}: every model needs a name and a base_path")
        if model.name in policies:
            raise ConfigError(f"{config_file} lists model {model.name!r} twice")
        if model.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{where}: model_platform {model.model_platform!r} is not served here (only "
                              "tensorflow)")
        policy = model.model_version_policy
        kind = policy.WhichOneof("policy_choice") or LATEST
        labels = dict(model.version_labels)
        if kind == LATEST:
            num = policy.latest.num_versions if policy.HasField("latest") and policy.latest.num_versions else 1
            if num < 1:
                raise ConfigError(f"{where}: latest {{ num_versions }} must be 1 or more")
            parsed = ModelPolicy(model.name, _resolve(model.base_path, config_file), LATEST, num, (), labels)
        elif kind == SPECIFIC:
            if not policy.specific.versions:
                raise ConfigError(f"{where}: specific {{ versions }} lists no version")
            parsed = ModelPolicy(model.name, _resolve(model.base_path, config_file), SPECIFIC, 1,
                                 tuple(sorted(set(policy.specific.versions))), labels)
        else:
            parsed = ModelPolicy(model.name, _resolve(model.base_path, config_file), ALL, 1, (), labels)
        bad = [label for label, version in labels.items() if not label or version < 0]
        if bad:
            raise ConfigError(f"{where}: version labels need a name and a version number")
        logging = _logging(model, config_file, where)
        policies[model.name] = dataclasses.replace(parsed, logging=logging) if logging else parsed
    return policies


def read_text(config_file: str) -> str:
    """A config file's text (local or on an object store: TensorFlow is loaded only then), or ConfigError."""
    if not is_uri(config_file):
        try:
            with open(config_file, encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read the model config file {config_file}: {e}") from None
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(config_file, "r") as f:
            return f.read()
    except tf.errors.OpError as e:
        raise ConfigError(f"cannot read the model config file {config_file}: {e.message}") from None


def read(config_file: str) -> Dict[str, ModelPolicy]:
    """The policies of a config file (local or on an object store)."""
    return parse(read_text(config_file), config_file)


def policy_for(config_file: str, name: str, base_path: str) -> ModelPolicy:
    """The policy of model `name` pushed to `base_path`: the config file's entry for it (which must name the same
    folder), or TF Serving's default when `config_file` is ""."""
    if not config_file:
        return default_policy(name, base_path)
    policies = read(config_file)
    if name not in policies:
        raise ConfigError(f"the model config file {config_file} has no model named {name!r} (it has "
                          f"{', '.join(sorted(policies))})")
    policy = policies[name]
    if _same_folder(policy.base_path, base_path):
        return policy
    raise ConfigError(f"the model config file {config_file} serves {name!r} from {policy.base_path}, not from "
                      f"{base_path}, where this pipeline pushes it")


def _same_folder(a: str, b: str) -> bool:
    if is_uri(a) or is_uri(b):
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)
