"""What a finished local run did, read back from ML Metadata and the artifacts it recorded.

Used by run_local.py for the on-screen summary and `--summary-json`.
"""

from __future__ import annotations

import glob
import json
import math
import os
from typing import Dict, List, Optional

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2


def _store(metadata_path: str) -> mlmd.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return mlmd.MetadataStore(config)


_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


class RunRecord:
    """The executions of the latest pipeline run and their input/output artifacts, by node id."""

    def __init__(self, metadata_path: str, pipeline_name: str):
        self.store = _store(metadata_path)
        runs = self.store.get_contexts_by_type("pipeline_run")
        runs = [c for c in runs if any(
            p.name == pipeline_name for p in self.store.get_parent_contexts_by_context(c.id))] or runs
        if not runs:
            raise LookupError(f"no pipeline run recorded in {metadata_path}")
        self.run = max(runs, key=lambda c: c.create_time_since_epoch)
        self.nodes: Dict[str, metadata_store_pb2.Execution] = {}
        prefix = f"{pipeline_name}."
        for execution in self.store.get_executions_by_context(self.run.id):
            for ctx in self.store.get_contexts_by_execution(execution.id):
                if ctx.name.startswith(prefix) and ctx.type == "node" or (
                        ctx.name.startswith(prefix) and self._is_node_context(ctx)):
                    node_id = ctx.name[len(prefix):]
                    previous = self.nodes.get(node_id)
                    if previous is None or execution.id > previous.id:
                        self.nodes[node_id] = execution

    def _is_node_context(self, ctx) -> bool:
        return self.store.get_context_types_by_id([ctx.type_id])[0].name == "node"

    def state(self, node_id: str) -> Optional[str]:
        execution = self.nodes.get(node_id)
        return _STATES.get(execution.last_known_state) if execution else None

    def seconds(self) -> Dict[str, dict]:
        result = {}
        for node_id, e in sorted(self.nodes.items(), key=lambda kv: kv[1].create_time_since_epoch):
            result[node_id] = {"state": _STATES.get(e.last_known_state, "UNKNOWN"),
                               "seconds": round((e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000, 1)}
        return result

    def artifacts(self, node_id: str, key: str, output: bool = True) -> List[metadata_store_pb2.Artifact]:
        execution = self.nodes.get(node_id)
        if execution is None:
            return []
        kind = metadata_store_pb2.Event.OUTPUT if output else metadata_store_pb2.Event.INPUT
        ids = []
        for event in self.store.get_events_by_execution_ids([execution.id]):
            if event.type in (kind, metadata_store_pb2.Event.DECLARED_OUTPUT if output else kind) and any(
                    s.HasField("key") and s.key == key for s in event.path.steps):
                ids.append(event.artifact_id)
        return list(self.store.get_artifacts_by_id(ids)) if ids else []

    def artifact_uri(self, node_id: str, key: str, output: bool = True) -> Optional[str]:
        found = self.artifacts(node_id, key, output)
        return found[0].uri if found else None


def split_counts(statistics_uri: str) -> Dict[str, int]:
    """Examples per split, from StatisticsGen's output."""
    from tensorflow_data_validation.utils import stats_util

    counts = {}
    for path in sorted(glob.glob(os.path.join(statistics_uri, "Split-*", "FeatureStats.pb"))):
        split = os.path.basename(os.path.dirname(path))[len("Split-"):]
        stats = stats_util.load_stats_binary(path)
        counts[split] = int(stats.datasets[0].num_examples) if stats.datasets else 0
    return counts


def evaluator_metrics(evaluation_uri: str) -> Dict[str, float]:
    """The overall (unsliced) metrics TFMA computed for the candidate model, flattened to name -> value."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    metrics = {}
    for slice_key, by_output in result.slicing_metrics:
        if slice_key:
            continue
        for _, by_sub_key in by_output.items():
            for sub_key, values in by_sub_key.items():
                for name, value in values.items():
                    number = value.get("doubleValue")
                    if number is None and "boundedValue" in value:
                        number = value["boundedValue"].get("value")
                    if number is None:
                        continue
                    if "macro_average" in name:  # some TFMA versions put the aggregation in the name
                        full = f"macro_{name.rsplit(chr(10) + '_', 1)[-1]}"
                    elif not sub_key:
                        full = name
                    elif sub_key.startswith("classId:"):
                        full = f"{name}[class_{sub_key.split(':', 1)[1]}]"
                    elif "macro_average" in sub_key:  # TFMA names aggregated metrics by their aggregation
                        full = f"macro_{name}"
                    else:
                        full = f"{name}[{sub_key}]"
                    number = float(number)
                    # NaN (e.g. precision of a class never predicted) is not valid JSON: report it as null.
                    metrics[full] = None if math.isnan(number) else round(number, 6)
    return metrics


def validation_failures(evaluation_uri: str, metrics: Optional[Dict[str, float]] = None) -> List[str]:
    """Why TFMA did not bless the model, one sentence per failed threshold: the metric, its value and the bound.
    `metrics` (the candidate's, from `evaluator_metrics`) lets a failed change threshold name both values."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            reasons.append(_describe_failure(failure, metrics or {}))
    if not reasons and result.HasField("validation_details"):
        reasons.append(str(result.validation_details).replace("\n", " "))
    return reasons


def _describe_failure(failure, metrics: Dict[str, float]) -> str:
    name = failure.metric_key.name
    if not failure.metric_value.HasField("double_value"):
        return f"{name}: {failure.message or str(failure).replace(chr(10), ' ')}"
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if failure.metric_key.is_diff:
        bound = threshold.change_threshold.absolute.value
        candidate = metrics.get(name)
        values = (f" ({candidate:.4f} against {candidate - value:.4f})" if candidate is not None else "")
        return (f"{name} is {-value:.4f} below the model in service's{values}; the most it may drop is "
                f"{-bound:.4g} (--max-accuracy-drop)")
    bounds = threshold.value_threshold
    if bounds.HasField("lower_bound") and value < bounds.lower_bound.value:
        return f"{name} {value:.4f} is below the minimum {bounds.lower_bound.value:.4g} (--min-accuracy)"
    if bounds.HasField("upper_bound") and value > bounds.upper_bound.value:
        return f"{name} {value:.4f} is above the maximum {bounds.upper_bound.value:.4g}"
    return f"{name} {value:.4f} fails its threshold ({str(threshold).replace(chr(10), ' ')})"


def read_json(path: str):
    import tensorflow as tf

    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def write_json(path: str, summary: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=False)
    os.replace(tmp, path)


def read_split(examples_uri: str, split: str, text_key: str, label_key: str):
    """(texts, labels) of one split of an ExampleGen output (gzipped TFRecords of tf.Examples)."""
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    texts, labels = [], []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        feats = example.features.feature

        def value(key):
            f = feats.get(key)
            if f is None:
                return ""
            if f.bytes_list.value:
                return f.bytes_list.value[0].decode("utf-8", "replace")
            if f.int64_list.value:
                return str(f.int64_list.value[0])
            if f.float_list.value:
                return str(f.float_list.value[0])
            return ""

        texts.append(value(text_key))
        labels.append(value(label_key))
    return texts, labels


def test_metrics(model_dir: str, texts, labels, batch_size: int = 128) -> dict:
    """Accuracy and macro F1 of an exported model on raw texts, through its `serving_default` signature."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the model's transform graph uses tf.text ops)
    from sklearn.metrics import accuracy_score, f1_score

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    predicted = []
    for start in range(0, len(texts), batch_size):
        out = serve(text=tf.constant(texts[start:start + batch_size]))
        predicted += [p.decode("utf-8") for p in out["label"].numpy()]
    if not texts:
        return {"examples": 0}
    return {"examples": len(texts),
            "accuracy": round(float(accuracy_score(labels, predicted)), 4),
            "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 4)}
