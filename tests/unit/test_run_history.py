"""The run history (components/release/run_history.py): one record per run, written whole under the pipeline root's
history/ folder and read back in the runs' order; and the report's History section (history_page.py) drawn from it.
The store's side is tests/integration/test_run_history_store.py; the section in a real browser after two real runs,
tests/e2e/test_history.py."""

import base64
import datetime
import json
import os
import re

import pytest

from components.release import run_history
from components.release.history_page import history_section
from components.release.run_summary import RunSummary

PNG = b"\x89PNG\r\n\x1a\n"


def summary(**changes) -> RunSummary:
    fields = dict(
        dataset="custom", model="tiny", wall_seconds=12.5, ingested_span=2, training_spans=[1, 2],
        anomalies=[{"found_by": "DriftValidator", "split": "train", "feature": "verdict",
                    "kind": "COMPARATOR_L_INFTY_HIGH", "description": "drifted"},
                   {"found_by": "ExampleValidator", "split": "eval", "feature": "review",
                    "kind": "ENUM_TYPE_BYTES_NOT_STRING", "description": "bytes"}],
        warnings=["a column not used"],
        text_statistics={"train": {"examples": 320, "truncated": 3, "truncated_share": 0.0094, "unk_share": 0.0,
                                   "empty": 0}},
        eval_metrics={"sparse_categorical_accuracy": 0.9, "macro_f1_score": 0.89},
        blessed=True, baseline_model="/serving/bert/1700000000", pushed=True, pushed_dir="/serving/bert/1700000500",
        model_uri="/root/Trainer/model/7",
        test_metrics={"accuracy": 0.88, "macro_f1": 0.87, "examples": 40, "model_dir": "/serving/bert/1700000500",
                      "confusion": [[1]], "confident_mistakes": [{"text": "long"}]})
    fields.update(changes)
    return RunSummary(**fields)


def test_a_record_says_what_the_run_did_and_whether_it_trained():
    now = datetime.datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=datetime.timezone.utc)
    record = run_history.new_record(summary(), [], {"verdict": 0.12}, now=now)
    assert re.fullmatch(r"20261208T010203456789Z-[0-9a-f]{8}", record["run_id"])
    assert record["date"] == "2026-12-08T01:02:03+00:00" and record["record_version"] == 1
    assert record["spans"] == {"ingested": 2, "training": [1, 2]}
    assert record["versions"] == {"pushed": "1700000500", "in_service": "1700000000",
                                  "model_uri": "/root/Trainer/model/7"}
    assert record["trained"] is True and record["blessed"] is True and record["pushed"] is True
    assert record["eval_metrics"]["sparse_categorical_accuracy"] == 0.9
    assert record["test"] == {"accuracy": 0.88, "macro_f1": 0.87, "examples": 40}  # no mistakes' texts
    assert record["drift"] == {"label_l_infinity": {"verdict": 0.12}, "crossed": ["verdict: COMPARATOR_L_INFTY_HIGH"]}
    assert record["gates"]["anomalies"] == ["verdict: COMPARATOR_L_INFTY_HIGH", "review: ENUM_TYPE_BYTES_NOT_STRING"]
    assert record["gates"]["warnings"] == 1 and record["gates"]["stopped"] is None
    assert record["text"] == {"examples": 320, "truncated_share": 0.0094, "unk_share": 0.0}
    assert record["serving"] is None
    json.dumps(record)  # a record is plain JSON

    # The same Model artifact as an earlier record's: it came from the cache, this run trained nothing.
    assert run_history.new_record(summary(), [record])["trained"] is False
    stopped = run_history.new_record(summary(model_uri=None, eval_metrics=None, test_metrics=None, pushed=False,
                                             pushed_dir=None, blessed=False, error="the data gate refused"), [record])
    assert stopped["trained"] is False and stopped["test"] is None and stopped["gates"]["stopped"]
    assert stopped["versions"]["pushed"] is None


def test_a_record_carries_the_summarys_serving_section_when_there_is_one():
    read = summary()
    figures = {"requests": 250, "examples": 300, "skew_found": True,
               "crossed": [{"check": "predicted classes", "description": "L-infinity 0.4 above 0.2"}]}
    read.serving = {**figures, "token_histogram": {"edges": list(range(100))}, "classes": {"verdict": {}}}
    assert run_history.new_record(read)["serving"] == figures  # the figures, not the histograms


def test_runs_append_one_file_each_and_are_read_back_oldest_first(tmp_path):
    root = str(tmp_path / "root")
    assert run_history.read(root) == []  # no history yet, no folder
    first = run_history.record_run(root, summary())
    second = run_history.record_run(root, summary(model_uri="/root/Trainer/model/9"))
    third = run_history.record_run(root, summary(model_uri="/root/Trainer/model/9"))  # the cached model again
    assert [r["trained"] for r in third] == [True, True, False]
    assert third[:2] == second and second[:1] == first
    names = sorted(os.listdir(tmp_path / "root" / "history"))
    assert names == [r["run_id"] + ".json" for r in third]  # one whole file per run, nothing else
    assert run_history.read(root) == third


def test_a_record_killed_while_written_leaves_no_half_record(tmp_path, monkeypatch):
    root = str(tmp_path / "root")
    run_history.record_run(root, summary())

    def killed(*_):
        raise KeyboardInterrupt  # the process stopped between the write and the rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        run_history.record_run(root, summary())
    monkeypatch.undo()
    assert len(run_history.read(root)) == 1  # the earlier record whole, and no torn one
    assert len(os.listdir(tmp_path / "root" / "history")) == 1


def test_hidden_and_foreign_files_are_not_records(tmp_path):
    root = tmp_path / "root"
    run_history.record_run(str(root), summary())
    (root / "history" / ".20261208T000000Z-0000.json.abc.tmp").write_text("{")
    (root / "history" / "notes.txt").write_text("not a record")
    assert len(run_history.read(str(root))) == 1


def test_the_label_distance_is_the_largest_change_of_a_class_share(tmp_path):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    def statistics(folder, counts):
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        feature = stats.datasets.add(num_examples=sum(counts.values())).features.add()
        feature.path.step.append("verdict")
        for label, count in counts.items():
            feature.string_stats.rank_histogram.buckets.add(label=label, sample_count=count)
        (folder / "Split-train").mkdir(parents=True)
        (folder / "Split-train" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
        return str(folder)

    now = statistics(tmp_path / "now", {"fresh": 70, "rotten": 30})
    before = statistics(tmp_path / "before", {"fresh": 50, "rotten": 50})
    assert run_history.label_distance(now, before, "verdict") == {"verdict": 0.2}
    assert run_history.label_distance(now, now, "verdict") == {"verdict": 0.0}
    assert run_history.label_distance(now, None, "verdict") is None  # a first run has no baseline


def images(page: str) -> dict:
    """alt -> PNG bytes of each embedded image."""
    return {alt: base64.b64decode(data) for alt, data in re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,'
                                                                    r'([^"]+)">', page)}


def records(count: int, serving: bool) -> list:
    found = []
    for i in range(count):
        record = run_history.new_record(summary(
            model_uri=f"/root/Trainer/model/{i}", eval_metrics={"sparse_categorical_accuracy": 0.8 + i / 100},
            anomalies=[]), found, {"verdict": 0.05 * i} if i else None)
        if serving:
            record["serving"] = {"requests": 100 * i, "skew_found": i == 2}
        found.append(record)
    return found


def test_the_history_section_plots_accuracy_drift_and_traffic_over_runs():
    page = history_section(records(3, serving=True))
    plots = images(page)
    assert set(plots) == {"Accuracy over runs", "Drift over runs", "Traffic and skew over runs"}
    assert all(png.startswith(PNG) and len(png) > 5000 for png in plots.values())
    assert page.count("<tr>") == 1 + 3 and "3 run(s) of this pipeline root" in page


def test_without_request_logs_the_section_says_there_is_no_traffic_to_plot():
    page = history_section(records(2, serving=False))
    assert set(images(page)) == {"Accuracy over runs", "Drift over runs"}
    assert "No run read request logs" in page


def test_a_first_run_has_a_table_and_no_plot_yet_and_no_history_says_so():
    page = history_section(records(1, serving=False))
    assert images(page) == {} and "start with the second run" in page and page.count("<tr>") == 2
    assert "No run history" in history_section([])


def test_on_kubeflow_the_run_report_is_handed_whether_and_where_the_pusher_pushed():
    """components/release/run_report.py's inputs as the step's container receives them: RuntimeArtifacts of the
    executor input, metadata and all (KFP hands a task the metadata its upstream task wrote), parsed into TFX
    artifacts by TFX's own Kubeflow V2 entrypoint. The Pusher's PushedModel says what the record calls `pushed`."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    from components.release.run_report import report_artifacts

    def handed(title, uri, **metadata):
        runtime = json_format.ParseDict({"type": {"schemaTitle": f"tfx.{title}"}, "uri": uri, "metadata": metadata},
                                        pipeline_spec_pb2.RuntimeArtifact())
        inputs = {"x": pipeline_spec_pb2.ArtifactList(artifacts=[runtime])}
        return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(inputs)["x"][0]

    anomalies = handed("ExampleAnomalies", "s3://b/root/ExampleValidator/anomalies/3", split_names='["train"]')
    given = dict(statistics=handed("ExampleStatistics", "s3://b/root/StatisticsGen/statistics/2"),
                 anomalies=anomalies, drift_anomalies=anomalies, text_statistics=anomalies, text_anomalies=anomalies,
                 model=handed("Model", "s3://b/root/Trainer/model/5"),
                 evaluation=handed("ModelEvaluation", "s3://b/root/Evaluator/evaluation/6"),
                 blessing=handed("ModelBlessing", "s3://b/root/Evaluator/blessing/6", blessed=1),
                 card_model=handed("Model", "s3://b/root/ModelCardWriter/card_model/7"))
    pushed = handed("PushedModel", "s3://b/root/Pusher/pushed_model/8", pushed=1,
                    pushed_destination="s3://b/serving/bert/1700000500", pushed_version="1700000500")
    assert report_artifacts(**given, pushed_model=pushed).pushed_dir == "s3://b/serving/bert/1700000500"
    not_pushed = handed("PushedModel", "s3://b/root/Pusher/pushed_model/8", pushed=0)
    assert report_artifacts(**given, pushed_model=not_pushed).pushed_dir is None
    assert report_artifacts(**given).blessed is True and report_artifacts(**given).pushed_dir is None
