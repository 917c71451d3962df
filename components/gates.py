"""The data gate: stops a run before Transform when ExampleValidator found anomalies.

ExampleValidator only records anomalies; it never fails. This component sits between it and Transform
(Transform is made to depend on it), reads the anomalies of every split and raises `DataValidationError`
with one readable paragraph naming each feature and problem, so nothing is trained or pushed.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import os
from typing import Dict, List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import standard_artifact_utils

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes under each Split-<name>/ folder


class DataValidationError(RuntimeError):
    """The data does not match the schema; the message says where and how."""


def load_anomalies(uri: str, split_names: str) -> Dict[str, anomalies_pb2.Anomalies]:
    """The anomalies of each split of an ExampleAnomalies artifact, by split name."""
    import tensorflow as tf  # deferred: importing TF is slow and this module is imported at pipeline build

    result = {}
    for split in standard_artifact_utils.decode_split_names(split_names):
        path = os.path.join(uri, f"Split-{split}", ANOMALIES_FILE)
        if not tf.io.gfile.exists(path):
            continue
        proto = anomalies_pb2.Anomalies()
        proto.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        result[split] = proto
    return result


def anomaly_problems(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies]) -> List[dict]:
    """Flattens anomalies to records {split, feature, kind, description} (also written to the run summary)."""
    problems = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            kinds = [anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason] or ["UNKNOWN"]
            problems.append({"split": split, "feature": feature, "kind": ",".join(kinds),
                             "description": info.description or info.short_description})
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            kinds = [anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason] or ["UNKNOWN"]
            problems.append({"split": split, "feature": "(dataset)", "kind": ",".join(kinds),
                             "description": info.description or info.short_description})
    return problems


def describe_problems(problems: List[dict]) -> str:
    parts = [f"feature '{p['feature']}' in split '{p['split']}': {p['description']} [{p['kind']}]"
             for p in problems]
    return ("the data does not match the schema, so nothing was trained or pushed: " + "; ".join(parts) +
            ". Fix the data, or, if it changed legitimately, update the curated schema (see the README).")


@tfx.dsl.components.component
def DataValidationGate(anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies]):
    """Fails the run when ExampleValidator reported any anomaly."""
    problems = anomaly_problems(load_anomalies(anomalies.uri, anomalies.split_names))
    if problems:
        raise DataValidationError(describe_problems(problems))
