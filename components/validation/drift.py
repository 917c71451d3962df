"""DriftValidator: the raw data's distribution against the last accepted data's, with TFDV's drift comparators.

ExampleValidator checks one set of statistics against the schema; it never compares two. This component does:
`tfdv.validate_statistics(current, schema, previous_statistics=baseline)` applies the `drift_comparator` of
each feature of the curated schema (an L-infinity distance for categorical features such as the label, a
Jensen-Shannon divergence for numeric ones), with the thresholds written in `schema/<dataset>/schema.pbtxt`.

The baseline is the statistics a DataValidationGate last accepted (resolved by the pipeline; none on the first
run, when there is nothing to compare with). Only drift anomalies are recorded here: the rest of the schema is
ExampleValidator's job, and recording it twice would report every problem twice. Never fails: the gate decides.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import standard_artifact_utils

from components.baselines import lookup
from components.validation.gates import STATISTICS_FILE, write_anomalies

SPLIT = "train"  # the split compared: the data the model would be trained on
DRIFT_KINDS = frozenset({"COMPARATOR_L_INFTY_HIGH", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
                         "COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH"})


def drift_only(anomalies: anomalies_pb2.Anomalies) -> anomalies_pb2.Anomalies:
    """The drift reasons of `anomalies`, each feature's description rewritten from them alone."""
    kept = anomalies_pb2.Anomalies()
    for feature, info in anomalies.anomaly_info.items():
        reasons = [r for r in info.reason if anomalies_pb2.AnomalyInfo.Type.Name(r.type) in DRIFT_KINDS]
        if reasons:
            target = kept.anomaly_info[feature]
            target.severity = info.severity
            target.reason.extend(reasons)
            target.short_description = reasons[0].short_description
            target.description = " ".join(r.description for r in reasons)
    return kept


def drift_anomalies(statistics_uri: str, baseline_uri: str, schema_file: str) -> anomalies_pb2.Anomalies:
    import tensorflow_data_validation as tfdv

    current = tfdv.load_stats_binary(os.path.join(statistics_uri, f"Split-{SPLIT}", STATISTICS_FILE))
    baseline = tfdv.load_stats_binary(os.path.join(baseline_uri, f"Split-{SPLIT}", STATISTICS_FILE))
    schema = tfdv.load_schema_text(schema_file)
    return drift_only(tfdv.validate_statistics(current, schema, previous_statistics=baseline))


@tfx.dsl.components.component
def DriftValidator(
        statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
        anomalies: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
        baseline_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None):
    """Records the drift of the train split against `baseline_statistics` (nothing without a baseline)."""
    found = anomalies_pb2.Anomalies()
    if lookup.found(baseline_statistics) and SPLIT in standard_artifact_utils.decode_split_names(
            baseline_statistics.split_names):
        found = drift_anomalies(statistics.uri, baseline_statistics.uri, os.path.join(schema.uri, "schema.pbtxt"))
    write_anomalies(anomalies, {SPLIT: found})
