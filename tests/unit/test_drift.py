"""Unit tests of components/validation/drift.py: only drift reasons are kept, and TFDV's L-infinity comparator on the
label fires on a real distribution change and not on noise (statistics made in memory from small DataFrames)."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifact_utils

from components.validation import drift, gates

Info = anomalies_pb2.AnomalyInfo
REPO = Path(__file__).resolve().parents[2]
CURATED_SCHEMA = REPO / "schema" / "rotten_tomatoes" / "schema.pbtxt"


def curated_threshold() -> float:
    label = next(f for f in tfdv.load_schema_text(str(CURATED_SCHEMA)).feature if f.name == "label")
    return label.drift_comparator.infinity_norm.threshold


class FakeArtifact:
    def __init__(self, uri, split_names=""):
        self.uri = str(uri)
        self.split_names = split_names


# drift_only ---------------------------------------------------------------------------------------------------------

def reason(kind, short, description):
    return Info.Reason(type=Info.Type.Value(kind), short_description=short, description=description)


def test_drift_only_keeps_the_drift_reasons_and_rewrites_the_description():
    given = anomalies_pb2.Anomalies()
    label = given.anomaly_info["label"]
    label.severity = Info.ERROR
    label.short_description = "Multiple errors"
    label.description = "Unexpected string values. The Linfty distance is 0.45."
    label.reason.extend([reason("ENUM_TYPE_UNEXPECTED_STRING_VALUES", "Unexpected string values", "Values meh."),
                         reason("COMPARATOR_L_INFTY_HIGH", "High Linfty distance", "The Linfty distance is 0.45.")])
    before = given.SerializeToString()

    kept = drift.drift_only(given)

    assert list(kept.anomaly_info) == ["label"]
    info = kept.anomaly_info["label"]
    assert [Info.Type.Name(r.type) for r in info.reason] == ["COMPARATOR_L_INFTY_HIGH"]
    assert info.description == "The Linfty distance is 0.45."
    assert info.short_description == "High Linfty distance"
    assert info.severity == Info.ERROR
    assert given.SerializeToString() == before  # the input is left as it was


def test_drift_only_drops_features_without_drift_and_dataset_anomalies():
    given = anomalies_pb2.Anomalies()
    given.anomaly_info["text"].reason.append(reason("SCHEMA_NEW_COLUMN", "New column", "New column text."))
    given.anomaly_info["text"].description = "New column text."
    given.dataset_anomaly_info.reason.append(reason("DATASET_LOW_NUM_EXAMPLES", "Few", "Too few examples."))
    kept = drift.drift_only(given)
    assert len(kept.anomaly_info) == 0
    assert not kept.HasField("dataset_anomaly_info")
    assert gates.anomaly_problems({"train": kept}) == []


def test_drift_only_joins_several_drift_reasons():
    given = anomalies_pb2.Anomalies()
    given.anomaly_info["n"].severity = Info.WARNING
    given.anomaly_info["n"].reason.extend([
        reason("COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH", "High JS", "JS is 0.5."),
        reason("FEATURE_TYPE_LOW_NUMBER_PRESENT", "Few", "Few present."),
        reason("COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH", "High NAD", "NAD is 0.9.")])
    given.anomaly_info["m"].reason.append(reason("COMPARATOR_L_INFTY_HIGH", "High Linfty", "Linfty is 0.3."))
    kept = drift.drift_only(given)
    assert sorted(kept.anomaly_info) == ["m", "n"]
    n = kept.anomaly_info["n"]
    assert [r.short_description for r in n.reason] == ["High JS", "High NAD"]
    assert n.description == "JS is 0.5. NAD is 0.9."
    assert n.short_description == "High JS"
    assert n.severity == Info.WARNING
    assert kept.anomaly_info["m"].description == "Linfty is 0.3."


# drift_anomalies on real TFDV statistics ------------------------------------------------------------------------

def write_statistics(folder: Path, fresh: int, rotten: int, other: int = 0) -> str:
    labels = ["fresh"] * fresh + ["rotten"] * rotten + ["meh"] * other
    frame = pd.DataFrame({"text": [f"review number {i}" for i in range(len(labels))], "label": labels})
    stats = tfdv.generate_statistics_from_dataframe(frame)
    path = folder / f"Split-{drift.SPLIT}" / gates.STATISTICS_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(stats.SerializeToString())
    return str(folder)


def minimal_schema(tmp_path: Path, threshold: float) -> str:
    path = tmp_path / "schema" / "schema.pbtxt"
    path.parent.mkdir()
    path.write_text(f"""
feature {{
  name: "text"
  type: BYTES
}}
feature {{
  name: "label"
  type: BYTES
  drift_comparator {{
    infinity_norm {{
      threshold: {threshold}
    }}
  }}
}}
""")
    return str(path)


@pytest.fixture(params=["curated", "minimal"])
def schema_file(request, tmp_path):
    if request.param == "curated":
        return str(CURATED_SCHEMA)
    return minimal_schema(tmp_path, curated_threshold())


def test_curated_threshold_is_between_the_cases_below():
    # 50/50 -> 95/5 moves a class share by 0.45, 50/50 -> 52/48 by 0.02: the tests below assume the threshold
    # of the curated schema lies between.
    assert 0.02 < curated_threshold() < 0.45


def test_a_skewed_label_drifts(tmp_path, schema_file):
    baseline = write_statistics(tmp_path / "baseline", 50, 50)
    current = write_statistics(tmp_path / "current", 95, 5)
    found = drift.drift_anomalies(current, baseline, schema_file)
    assert list(found.anomaly_info) == ["label"]
    info = found.anomaly_info["label"]
    assert [Info.Type.Name(r.type) for r in info.reason] == ["COMPARATOR_L_INFTY_HIGH"]
    assert "0.45" in info.description
    [problem] = gates.anomaly_problems({"train": found})
    assert problem["kind"] == "COMPARATOR_L_INFTY_HIGH" and not gates.is_warning(problem)


def test_a_small_change_does_not_drift(tmp_path, schema_file):
    baseline = write_statistics(tmp_path / "baseline", 50, 50)
    current = write_statistics(tmp_path / "current", 52, 48)
    assert len(drift.drift_anomalies(current, baseline, schema_file).anomaly_info) == 0


def test_the_threshold_is_the_schemas(tmp_path):
    threshold = curated_threshold()
    baseline = write_statistics(tmp_path / "baseline", 500, 500)
    above = int(round(1000 * (0.5 + threshold + 0.01)))
    below = int(round(1000 * (0.5 + threshold - 0.01)))
    assert drift.drift_anomalies(write_statistics(tmp_path / "above", above, 1000 - above), baseline,
                                 str(CURATED_SCHEMA)).anomaly_info
    assert not drift.drift_anomalies(write_statistics(tmp_path / "below", below, 1000 - below), baseline,
                                     str(CURATED_SCHEMA)).anomaly_info
    # The same data against a stricter schema drifts.
    assert drift.drift_anomalies(write_statistics(tmp_path / "below2", below, 1000 - below), baseline,
                                 minimal_schema(tmp_path, threshold / 2)).anomaly_info


def test_other_schema_anomalies_are_left_out(tmp_path):
    # An unknown label value is ExampleValidator's to report, not the drift check's.
    baseline = write_statistics(tmp_path / "baseline", 50, 50)
    current = write_statistics(tmp_path / "current", 50, 48, other=2)
    everything = tfdv.validate_statistics(
        tfdv.load_stats_binary(os.path.join(current, "Split-train", gates.STATISTICS_FILE)),
        tfdv.load_schema_text(str(CURATED_SCHEMA)),
        previous_statistics=tfdv.load_stats_binary(os.path.join(baseline, "Split-train", gates.STATISTICS_FILE)))
    assert "label" in everything.anomaly_info  # TFDV does report the unexpected value ...
    assert len(drift.drift_anomalies(current, baseline, str(CURATED_SCHEMA)).anomaly_info) == 0  # ... not here


# DriftValidator, its function called without a pipeline ----------------------------------------------------------

def _run_validator(tmp_path, current, baseline_artifact):
    schema = FakeArtifact(Path(minimal_schema(tmp_path, curated_threshold())).parent)
    out = FakeArtifact(tmp_path / "anomalies")
    statistics = FakeArtifact(current, standard_artifact_utils.encode_split_names(["train", "eval"]))
    drift.DriftValidator.test_call(statistics=statistics, schema=schema, anomalies=out,
                                   baseline_statistics=baseline_artifact)
    assert json.loads(out.split_names) == ["train"]
    return gates.load_anomalies(out.uri, out.split_names)["train"]


def test_validator_records_drift_against_the_baseline(tmp_path):
    current = write_statistics(tmp_path / "current", 95, 5)
    baseline = FakeArtifact(write_statistics(tmp_path / "baseline", 50, 50),
                            standard_artifact_utils.encode_split_names(["train", "eval"]))
    assert list(_run_validator(tmp_path, current, baseline).anomaly_info) == ["label"]


@pytest.mark.parametrize("baseline_splits", [None, ["eval"]], ids=["no-baseline", "baseline-without-train"])
def test_validator_records_nothing_without_a_train_baseline(tmp_path, baseline_splits):
    current = write_statistics(tmp_path / "current", 95, 5)
    baseline = None
    if baseline_splits is not None:
        baseline = FakeArtifact(write_statistics(tmp_path / "baseline", 50, 50),
                                standard_artifact_utils.encode_split_names(baseline_splits))
    assert _run_validator(tmp_path, current, baseline) == anomalies_pb2.Anomalies()
