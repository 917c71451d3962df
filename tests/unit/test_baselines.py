"""Run-to-run state without ML Metadata (components/baselines/): versioned folders published atomically, the gates
publishing what they accept, and BaselineLookup handing a run the model in service and the last accepted statistics
(its function called through TFX's `test_call` on real TFX artifacts, no pipeline)."""

import json
import os
from pathlib import Path

import pytest
from tfx.types import standard_artifact_utils, standard_artifacts

from components.baselines import lookup
from components.runtime import versioned_folders as folders
from components.validation import gates


def statistics_folder(folder: Path, text: str, splits=("train", "eval")) -> Path:
    for split in splits:
        (folder / f"Split-{split}").mkdir(parents=True, exist_ok=True)
        (folder / f"Split-{split}" / gates.STATISTICS_FILE).write_text(f"{text} {split}")
    return folder


def served_version(base: Path, version: int, weights: str) -> Path:
    folder = base / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_text(weights)
    (folder / "assets.extra").mkdir()
    (folder / "assets.extra" / "class_names.json").write_text('["neg", "pos"]')
    (folder / folders.MODEL_MARKER).write_text(f"graph {version}")
    return folder


def artifact(kind, uri: Path):
    made = kind()
    made.uri = str(uri)
    return made


# store: versioned folders ---------------------------------------------------------------------------------------

def test_publications_are_versions_in_order_each_with_its_record(tmp_path):
    source = statistics_folder(tmp_path / "accepted", "first")
    base = tmp_path / "baselines" / "DataValidationGate"
    first = folders.publish(str(source), str(base), {"span": 1})
    statistics_folder(source, "second")
    second = folders.publish(str(source), str(base), {"span": 2})
    assert int(Path(second).name) > int(Path(first).name)  # the same millisecond still gives a higher version
    assert folders.newest(str(base)) == second
    assert folders.read_record(second)["span"] == 2 and folders.read_record(second)["version"] == Path(second).name
    assert (Path(first) / "Split-train" / gates.STATISTICS_FILE).read_text() == "first train"
    assert (Path(second) / "Split-eval" / gates.STATISTICS_FILE).read_text() == "second eval"
    assert sorted(os.listdir(base)) == sorted([Path(first).name, Path(second).name])  # no staging folder left


def test_readers_skip_staging_folders_and_incomplete_versions(tmp_path):
    base = tmp_path / "base"
    good = folders.publish(str(statistics_folder(tmp_path / "s", "ok")), str(base), {})
    (base / (folders.STAGING_PREFIX + "abc")).mkdir()  # a publication killed before its rename
    (base / "99999999999999").mkdir()  # an object-store publication that never wrote its record
    (base / "notes").mkdir()
    assert folders.newest(str(base)) == good
    assert folders.newest(str(tmp_path / "nothing-here")) is None


def test_a_model_version_counts_once_saved_model_pb_is_there(tmp_path):
    base = tmp_path / "serving" / "bert_classifier"
    served_version(base, 1700000000, "A")
    (base / "1800000000" / "variables").mkdir(parents=True)  # the stock Pusher mid-copy on an object store
    assert folders.newest(str(base), marker=folders.MODEL_MARKER) == str(base / "1700000000")


def test_the_gate_publishes_what_it_accepts_and_nothing_it_refuses(tmp_path):
    statistics = artifact(standard_artifacts.ExampleStatistics, statistics_folder(tmp_path / "stats", "run"))
    statistics.split_names = standard_artifact_utils.encode_split_names(["train", "eval"])
    statistics.span = 3
    clean = artifact(standard_artifacts.ExampleAnomalies, tmp_path / "anomalies")
    gates.write_anomalies(clean, {"train": gates.anomalies_pb2.Anomalies()})
    validated = artifact(standard_artifacts.ExampleStatistics, tmp_path / "validated")
    base = tmp_path / "root" / "baselines" / "DataValidationGate"
    gates.DataValidationGate.test_call(anomalies=clean, statistics=statistics, validated_statistics=validated,
                                       baselines_dir=str(base))
    published = folders.newest(str(base))
    record = folders.read_record(published)
    assert record["gate"] == "DataValidationGate" and record["span"] == 3
    assert record["produced_by"] == statistics.uri and record["accepted_at"]
    assert json.loads(record["split_names"]) == ["train", "eval"]
    assert (Path(published) / "Split-train" / gates.STATISTICS_FILE).read_text() == "run train"
    # With the examples the statistics describe, their span is recorded (TFX's StatisticsGen does not copy it).
    examples = artifact(standard_artifacts.Examples, tmp_path / "examples")
    examples.set_int_custom_property("span", 5)  # where CsvExampleGen records it
    gates.DataValidationGate.test_call(
        anomalies=clean, statistics=statistics, examples=examples, baselines_dir=str(base),
        validated_statistics=artifact(standard_artifacts.ExampleStatistics, tmp_path / "validated-2"))
    assert folders.read_record(folders.newest(str(base)))["span"] == 5
    accepted = folders.versions(str(base))

    refused = artifact(standard_artifacts.ExampleAnomalies, tmp_path / "refused")
    bad = gates.anomalies_pb2.Anomalies()
    bad.anomaly_info["label"].reason.add(type=gates.anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES)
    gates.write_anomalies(refused, {"train": bad})
    with pytest.raises(gates.DataValidationError):
        gates.DataValidationGate.test_call(anomalies=refused, statistics=statistics, validated_statistics=artifact(
            standard_artifacts.ExampleStatistics, tmp_path / "v2"), baselines_dir=str(base))
    assert folders.versions(str(base)) == accepted  # refused data never becomes a baseline


# BaselineLookup --------------------------------------------------------------------------------------------------

def lookup_outputs(tmp_path: Path, run: str):
    root = tmp_path / "root" / "BaselineLookup"
    return (artifact(standard_artifacts.Model, root / "model" / run),
            artifact(standard_artifacts.ExampleStatistics, root / "data_statistics" / run),
            artifact(standard_artifacts.ExampleStatistics, root / "text_statistics" / run))


def test_a_first_run_finds_nothing_and_says_so(tmp_path):
    model, data, text = lookup_outputs(tmp_path, "1")
    lookup.BaselineLookup.test_call(model=model, data_statistics=data, text_statistics=text,
                                    serving_base=str(tmp_path / "serving" / "m"),
                                    data_baselines="baselines/DataValidationGate",
                                    text_baselines="baselines/TextValidationGate")
    for output in (model, data, text):
        assert not lookup.found(output) and lookup.source(output) == ""
        assert output.get_int_custom_property(lookup.FOUND_PROPERTY) == 0
    assert json.loads(data.split_names) == [] and not (Path(model.uri) / lookup.SERVING).exists()
    # Relative baselines are looked for under the pipeline root (the artifact URI's fourth parent).
    assert folders.read_record(data.uri)["looked_in"] == str(tmp_path / "root" / "baselines" / "DataValidationGate")
    assert not lookup.found(None) and lookup.found(artifact(standard_artifacts.ExampleStatistics, tmp_path))


def test_the_lookup_copies_the_highest_served_version_and_the_newest_accepted_statistics(tmp_path):
    serving = tmp_path / "serving" / "m"
    served_version(serving, 1700000000, "A")
    newest = served_version(serving, 1700000500, "B")
    gate_base = tmp_path / "root" / "baselines" / "DataValidationGate"
    folders.publish(str(statistics_folder(tmp_path / "s1", "old")), str(gate_base),
                  {"span": 1, "split_names": json.dumps(["train", "eval"])})
    latest = folders.publish(str(statistics_folder(tmp_path / "s2", "new", ("train",))), str(gate_base),
                           {"span": 2, "split_names": json.dumps(["train"])})
    model, data, text = lookup_outputs(tmp_path, "2")
    lookup.BaselineLookup.test_call(model=model, data_statistics=data, text_statistics=text,
                                    serving_base=str(serving), data_baselines="baselines/DataValidationGate",
                                    text_baselines="baselines/TextValidationGate")
    assert lookup.found(model) and lookup.source(model) == str(newest)
    assert model.get_string_custom_property(lookup.SOURCE_PROPERTY) == str(newest)
    copied = Path(model.uri) / lookup.SERVING
    assert (copied / "variables" / "variables.index").read_text() == "B"
    assert (copied / folders.MODEL_MARKER).read_text() == "graph 1700000500"
    assert json.loads((Path(model.uri) / "class_names.json").read_text()) == ["neg", "pos"]  # the class check's
    assert lookup.found(data) and lookup.source(data) == latest and data.span == 2
    assert json.loads(data.split_names) == ["train"]
    assert (Path(data.uri) / "Split-train" / gates.STATISTICS_FILE).read_text() == "new train"
    assert folders.read_record(data.uri)["published"]["span"] == 2
    assert not lookup.found(text)  # the text gate has published nothing yet
