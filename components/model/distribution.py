"""Which tf.distribute strategy the Trainer's run_fn trains under, and where each worker writes.

`--distribution auto` (the default) chooses from the process's environment, as the cluster schedulers set it:
- `MultiWorkerMirroredStrategy` when TF_CONFIG describes a cluster of more than one task (chief and/or workers), as
  the Kubeflow Training Operator's TFJob and Vertex AI Training set it: synchronous data parallelism, gradients
  all-reduced over gRPC collectives (NCCL on GPUs);
- `MirroredStrategy` when this process sees more than one GPU;
- TensorFlow's default strategy otherwise (one device, no replication).
`default`, `mirrored` and `multi_worker` force one of them.

Batch size: the Trainer's batch_size is per replica; a step consumes batch_size x replicas examples (the global
batch), which tf.distribute splits back into one batch_size slice per replica. The gradients are averaged over the
global batch, so with N replicas there are N times fewer steps per epoch at the same learning rate; raising the
learning rate with the global batch (linear scaling) is the user's choice, not made here.

Writing: every worker must run the same saving code (saving may need collective reads of the variables), but only
the chief's copy is kept: the chief is the task of type 'chief' (or 'master'), or worker 0 when the cluster has no
chief. The other workers write into a temporary folder that is deleted afterwards, as TensorFlow's multi-worker
guide prescribes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from typing import Any, Dict, Iterator, List, Mapping, Optional

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
_CHIEF_TYPES = ("chief", "master")
_TRAINING_TYPES = ("chief", "master", "worker")


class DistributionError(ValueError):
    """TF_CONFIG or the distribution setting cannot be used; the message says which and why."""


def read_tf_config(environ: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """TF_CONFIG parsed ({} when unset or empty); a clear DistributionError when it is not a cluster we can train on."""
    text = (environ if environ is not None else os.environ).get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise DistributionError(f"the environment variable TF_CONFIG is not valid JSON ({e}).") from None
    if not isinstance(config, dict):
        raise DistributionError("the environment variable TF_CONFIG must be a JSON object with 'cluster' and 'task'.")
    cluster = config.get("cluster") or {}
    if not isinstance(cluster, dict) or not all(isinstance(v, list) for v in cluster.values()):
        raise DistributionError("TF_CONFIG's 'cluster' must map task types to lists of host:port addresses.")
    if cluster:
        other = sorted(set(cluster) - set(_TRAINING_TYPES) - {"evaluator"})
        if other:
            raise DistributionError(f"TF_CONFIG's cluster has task type(s) {', '.join(other)}: parameter-server "
                                    "training is not supported; use chief/worker tasks (synchronous data parallelism).")
        task = config.get("task") or {}
        if task.get("type") not in _TRAINING_TYPES + ("evaluator",) or not isinstance(task.get("index", 0), int):
            raise DistributionError(f"TF_CONFIG's 'task' must name this process's type and index in the cluster, "
                                    f"got {task!r}.")
        if task["type"] != "evaluator" and task.get("index", 0) >= len(cluster.get(task["type"], [])):
            raise DistributionError(f"TF_CONFIG's task {task['type']}:{task.get('index', 0)} is not in its cluster.")
    return config


def cluster_size(tf_config: Mapping[str, Any]) -> int:
    """Number of training tasks (chief + workers) TF_CONFIG describes; 0 without a cluster."""
    cluster = tf_config.get("cluster") or {}
    return sum(len(cluster.get(kind, [])) for kind in _TRAINING_TYPES)


def choose(setting: str, tf_config: Mapping[str, Any], local_gpus: int) -> str:
    """The strategy to use ('default', 'mirrored' or 'multi_worker') for a setting in STRATEGIES."""
    if setting not in STRATEGIES:
        raise DistributionError(f"unknown distribution {setting!r}; use one of {', '.join(STRATEGIES)}.")
    if setting != "auto":
        if setting == "multi_worker" and cluster_size(tf_config) < 1:
            raise DistributionError("--distribution multi_worker needs TF_CONFIG describing the cluster (as a TFJob "
                                    "or Vertex AI Training sets it).")
        return setting
    if (tf_config.get("task") or {}).get("type") == "evaluator":
        raise DistributionError("this process is TF_CONFIG's 'evaluator' task; the Trainer only runs on chief and "
                                "worker tasks (the pipeline's Evaluator step evaluates).")
    if cluster_size(tf_config) > 1:
        return "multi_worker"
    if local_gpus > 1:
        return "mirrored"
    return "default"


NAMES = {"multi_worker": "MultiWorkerMirroredStrategy", "mirrored": "MirroredStrategy", "default": "default strategy"}


def make_strategy(setting: str = "auto"):
    """(kind, strategy): the tf.distribute strategy for `setting`, chosen from TF_CONFIG and the local GPUs. Call it
    first in run_fn: MultiWorkerMirroredStrategy must be created before TensorFlow runs anything else in the process."""
    import tensorflow as tf

    tf_config = read_tf_config()
    kind = choose(setting, tf_config, len(tf.config.list_physical_devices("GPU")) if setting == "auto" else 0)
    if kind == "multi_worker":
        return kind, tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        return kind, tf.distribute.MirroredStrategy()
    return kind, tf.distribute.get_strategy()


def is_chief(tf_config: Optional[Mapping[str, Any]] = None) -> bool:
    """Whether this process keeps what it writes: no cluster, the chief task, or worker 0 of a chief-less cluster."""
    tf_config = read_tf_config() if tf_config is None else tf_config
    if cluster_size(tf_config) == 0:
        return True
    task = tf_config.get("task") or {}
    if task.get("type") in _CHIEF_TYPES:
        return True
    has_chief = any(tf_config["cluster"].get(kind) for kind in _CHIEF_TYPES)
    return task.get("type") == "worker" and task.get("index", 0) == 0 and not has_chief


def task_name(tf_config: Optional[Mapping[str, Any]] = None) -> str:
    """'chief:0', 'worker:1'... ('' without a cluster), for messages."""
    tf_config = read_tf_config() if tf_config is None else tf_config
    task = tf_config.get("task") or {}
    return f"{task['type']}:{task.get('index', 0)}" if cluster_size(tf_config) else ""


def localhost_cluster(tasks: int) -> List[str]:
    """TF_CONFIG values for a cluster of one chief and tasks-1 workers on free ports of 127.0.0.1, the chief's first:
    a real multi-worker cluster on one machine (the tests and benchmarks/distributed.py)."""
    sockets = [socket.socket() for _ in range(tasks)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    cluster = {"chief": addresses[:1], **({"worker": addresses[1:]} if tasks > 1 else {})}
    return [json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0} if i == 0 else
                        {"type": "worker", "index": i - 1}}) for i in range(tasks)]


@contextlib.contextmanager
def write_location(path: str, chief: bool) -> Iterator[str]:
    """`path` for the chief; for another worker, a temporary folder that is deleted when the block ends."""
    if chief:
        yield path
        return
    scratch = tempfile.mkdtemp(prefix="bert-tfx-worker-")
    try:
        yield os.path.join(scratch, os.path.basename(path.rstrip("/")) or "out")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
