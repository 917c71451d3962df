"""--serving-logs: the request logs the model server wrote, read back by the pipeline's ServingLogsGen into a
`serving` split that TFX's StatisticsGen reads as any other, and recorded as consumed by ServingLogsCommit so that
every logged request is counted by exactly one run. Real components in a pipeline of their own (TFX's local runner,
ML Metadata, the cache on), on log files written by the server's own writer (support/logged_traffic.py); a run is
killed for real (SIGKILL) in a fresh process. The refusals read real files too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.ingestion import serving_logs
from components.tf_serving import consumed_logs, request_log
from support import REPO, logged_traffic

CLASSES = ["neg", "pos"]


def mini_pipeline(tmp_path: Path, prefix: str, with_commit: bool = True, with_statistics: bool = False):
    """The reader, StatisticsGen on its split (optional), and the commit after them: the pipeline's own builder."""
    from tfx import v1 as tfx

    from pipeline.dag.serving_logs import commit_node, ledger_dir, reader_node

    root = str(tmp_path / "root")
    reader = reader_node(prefix, ledger_dir(root), "text", "label", CLASSES)
    nodes, reported = [reader], None
    if with_statistics:
        statistics = tfx.components.StatisticsGen(examples=reader.outputs["examples"]).with_id("StatisticsGen")
        nodes.append(statistics)
        reported = statistics.outputs["statistics"]
    if with_commit:
        nodes.append(commit_node(reader, ledger_dir(root), reported))
    return tfx.dsl.Pipeline(
        pipeline_name="traffic", pipeline_root=root, components=nodes, enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")))


def run(tmp_path: Path, prefix: str, **kw) -> dict:
    """Runs the pipeline; returns the serving_logs.json of this run's read."""
    from tfx import v1 as tfx

    from pipeline.dag.pipeline import local_ir

    tfx.orchestration.LocalDagRunner().run_with_ir(local_ir(mini_pipeline(tmp_path, prefix, **kw)))
    return serving_logs.read_summary(newest_output(tmp_path, "ServingLogsGen", "examples"))


def newest_output(tmp_path: Path, node: str, key: str) -> str:
    folder = tmp_path / "root" / node / key
    return str(folder / max(os.listdir(folder), key=int))


def serving_texts(examples_uri: str) -> list:
    import tensorflow as tf

    path = os.path.join(examples_uri, "Split-serving", serving_logs.DATA_FILE)
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset([path], compression_type="GZIP")]


def value(example, key):
    feature = example.features.feature[key]
    kind = feature.WhichOneof("kind")
    found = getattr(feature, kind).value[0]
    return found.decode() if isinstance(found, bytes) else found


def test_each_logged_text_is_a_serving_example_with_its_answer_and_statistics_gen_reads_the_split(tmp_path):
    prefix = str(tmp_path / "logs" / "bert")
    start = int(time.time())
    logged_traffic.predict_batches(prefix, [["a fine film"], ["dull", "one long text of many words"]],
                                   version=3, file_bytes=1)  # a file per request
    logged_traffic.classify_requests(prefix, ["classified"], [("neg", 0.75)], version=4)
    summary = run(tmp_path, prefix, with_statistics=True)

    assert summary["requests"] == 3 and summary["examples"] == 4 and summary["new_traffic"] is True
    assert summary["files"] == request_log.log_files(prefix) and len(summary["files"]) == 3
    assert summary["versions"] == {"3": 3, "4": 1}
    assert start <= summary["first_time"] <= summary["last_time"] <= time.time()
    examples = serving_texts(newest_output(tmp_path, "ServingLogsGen", "examples"))
    by_text = {value(e, "text"): e for e in examples}
    assert sorted(by_text) == ["a fine film", "classified", "dull", "one long text of many words"]
    assert value(by_text["dull"], "predicted_label") == "neg"
    assert value(by_text["one long text of many words"], "predicted_label") == "pos"
    assert value(by_text["classified"], "predicted_label") == "neg"
    assert value(by_text["classified"], "probability_label") == pytest.approx(0.75)
    assert value(by_text["classified"], "model_version") == 4
    # TFX's own StatisticsGen describes the split, and the commit ran after it.
    import tensorflow_data_validation as tfdv

    stats = tfdv.load_stats_binary(os.path.join(newest_output(tmp_path, "StatisticsGen", "statistics"),
                                                "Split-serving", "FeatureStats.pb"))
    assert stats.datasets[0].num_examples == 4
    assert {f.path.step[0] for f in stats.datasets[0].features} >= {"text", "predicted_label", "model_version"}
    assert consumed_logs.consumed(str(tmp_path / "root" / "serving_logs" / "consumed")) == set(summary["files"])


def test_a_second_read_counts_nothing_twice_and_reads_only_what_came_since(tmp_path):
    prefix = str(tmp_path / "logs" / "bert")
    logged_traffic.predict_batches(prefix, [["one"], ["two"]])
    assert run(tmp_path, prefix)["examples"] == 2
    again = run(tmp_path, prefix)  # same inputs, cache on: read again at run time, never answered from the cache
    assert again["requests"] == 0 and again["files"] == [] and again["new_traffic"] is False
    logged_traffic.predict_batches(prefix, [["three"]])
    third = run(tmp_path, prefix)
    assert third["requests"] == 1
    assert [value(e, "text") for e in serving_texts(newest_output(tmp_path, "ServingLogsGen", "examples"))] == \
        ["three"]


def test_a_run_that_ended_after_the_read_but_before_the_commit_leaves_its_files_to_the_next_run(tmp_path):
    """What a kill between the two steps leaves: the read published, no ledger entry."""
    prefix = str(tmp_path / "logs" / "bert")
    logged_traffic.predict_batches(prefix, [["one"], ["two"]], file_bytes=1)
    assert run(tmp_path, prefix, with_commit=False)["requests"] == 2
    assert run(tmp_path, prefix)["requests"] == 2  # read again: the first run's figures were never committed
    assert run(tmp_path, prefix)["requests"] == 0


_RUN = """
import sys
sys.path[:0] = [{repo!r}, {repo!r} + '/tests', {tests!r}]
from tfx import v1 as tfx
from pipeline.dag.pipeline import local_ir
from pathlib import Path
import test_serving_logs as t
tfx.orchestration.LocalDagRunner().run_with_ir(local_ir(t.mini_pipeline(Path({tmp!r}), {prefix!r})))
"""


@pytest.mark.slow  # ~20 s: a fresh interpreter loads TFX, and 12,000 logged texts are read twice
def test_a_run_killed_during_the_read_loses_nothing_and_counts_nothing_twice(tmp_path):
    prefix = str(tmp_path / "logs" / "bert")
    batches = [[f"text {i} " + "word " * (i % 13)] * 8 for i in range(1500)]  # 12,000 texts: seconds to read
    logged_traffic.predict_batches(prefix, batches, file_bytes=64 * 1024)
    code = _RUN.format(repo=str(REPO), tests=str(Path(__file__).parent), tmp=str(tmp_path), prefix=prefix)
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    split = tmp_path / "root" / "ServingLogsGen" / "examples"
    deadline = time.monotonic() + 240
    while not list(split.glob("*/Split-serving/" + serving_logs.DATA_FILE)):  # the read has begun
        assert proc.poll() is None and time.monotonic() < deadline, "the read never began"
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ledger = tmp_path / "root" / "serving_logs" / "consumed"
    assert not list(ledger.glob("*.json")), "the run was killed too late: it had committed already"
    assert not list(split.glob("*/" + serving_logs.SUMMARY_FILE)), "killed after the read, not during it"

    summary = run(tmp_path, prefix)
    assert summary["requests"] == 1500 and summary["examples"] == 12000
    assert run(tmp_path, prefix)["requests"] == 0


def test_logs_of_a_model_with_another_text_column_or_other_classes_are_refused_in_one_sentence(tmp_path):
    prefix = str(tmp_path / "logs" / "other")
    logged_traffic.predict_batches(prefix, [["ein Text"]], text_key="sentence")
    with pytest.raises(serving_logs.ServingLogsError,
                       match=rf"^the request logs under {prefix} .* no text input 'text' \(their inputs: sentence\)"):
        serving_logs.read_traffic(prefix, request_log.log_files(prefix), "text", "label", CLASSES)
    classes = str(tmp_path / "logs" / "classes")
    logged_traffic.predict_batches(classes, [["a text"]], classes=("a", "b", "c"))
    with pytest.raises(serving_logs.ServingLogsError, match=r"answers with 3 class probabilities where this "
                                                            r"pipeline has 2 classes \(neg, pos\)"):
        serving_logs.read_traffic(classes, request_log.log_files(classes), "text", "label", CLASSES)
    named = str(tmp_path / "logs" / "named")
    logged_traffic.predict_batches(named, [["a text"]], classes=("bad", "good"))
    with pytest.raises(serving_logs.ServingLogsError, match=r"answers class '(bad|good)', which is not among this "
                                                            r"pipeline's classes \(neg, pos\)"):
        serving_logs.read_traffic(named, request_log.log_files(named), "text", "label", CLASSES)


def test_predict_requests_carry_the_texts_under_the_signatures_input_and_classify_under_the_text_column(tmp_path):
    """A pipeline whose text column is `review`: its model's predict signature still takes `text`."""
    prefix = str(tmp_path / "logs" / "review")
    logged_traffic.predict_batches(prefix, [["a predicted review"]])
    logged_traffic.classify_requests(prefix, ["a classified review"], [("pos", 0.9)], text_key="review")
    read = serving_logs.read_traffic(prefix, request_log.log_files(prefix), "review", "label", CLASSES)
    assert read["examples"] == 2
    wrong = str(tmp_path / "logs" / "wrong")
    logged_traffic.classify_requests(wrong, ["a classified text"], [("pos", 0.9)], text_key="text")
    with pytest.raises(serving_logs.ServingLogsError, match=r"no text input 'review' \(their inputs: text\)"):
        serving_logs.read_traffic(wrong, request_log.log_files(wrong), "review", "label", CLASSES)


def test_a_prefix_with_no_new_file_is_no_new_traffic_not_an_error(tmp_path):
    summary = run(tmp_path, str(tmp_path / "nothing" / "here"))
    assert summary == {**summary, "requests": 0, "examples": 0, "files": [], "new_traffic": False}
    assert serving_texts(newest_output(tmp_path, "ServingLogsGen", "examples")) == []
    assert "no new traffic" in serving_logs.no_new_traffic("p")


def test_kubeflow_compile_reads_and_compares_the_logs_in_uncached_tasks_and_refuses_a_relative_prefix(tmp_path):
    from pipeline.kubeflow import cli as kfp_cli
    from support.kubeflow import COMPILE_ARGS, process_state_kept

    args = ["compile", *COMPILE_ARGS, "--pipeline-root", "gs://bucket/root"]
    with process_state_kept():
        assert kfp_cli.main([*args, "--serving-logs", "gs://bucket/logs/", "--output", str(tmp_path / "s.json")]) == 0
        assert kfp_cli.main([*args, "--serving-logs", "logs/", "--output", str(tmp_path / "r.json")]) == 2
    spec = json.loads((tmp_path / "s.json").read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    # The commit follows the comparison, which reads the read and BaselineLookup's baselines.
    assert sorted(tasks["ServingLogsCommit"]["dependentTasks"]) == ["ServingLogsGen", "ServingSkewCheck"]
    assert sorted(tasks["ServingSkewCheck"]["dependentTasks"]) == ["BaselineLookup", "ServingLogsGen"]
    for task in ("ServingLogsGen", "ServingLogsCommit"):
        assert not tasks[task]["cachingOptions"].get("enableCache"), task  # the backend never answers from its cache
    parameters = tasks["ServingLogsGen"]["inputs"]["parameters"]
    # Kept as given (the trailing "/" makes it a folder); the ledger under the pipeline root.
    assert parameters["prefix"]["runtimeValue"]["constant"] == "gs://bucket/logs/"
    assert parameters["ledger"]["runtimeValue"]["constant"] == "gs://bucket/root/serving_logs/consumed"
    assert not (tmp_path / "r.json").exists()


def test_on_an_object_store_the_logs_the_split_and_the_ledger_go_through_the_store(s3_server, tmp_path,
                                                                                    monkeypatch):
    """s3:// (the tests' S3 server): the server's writer uploads whole files, ServingLogsGen's code lists and reads
    them and writes the split there, and the ledger's entry is one object; a second read finds nothing new."""
    from components.runtime import object_store

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    for name, value in object_store.s3_environment(s3_server.endpoint).items():  # configure_s3's, undone after
        monkeypatch.setenv(name, value)
    object_store.load_file_systems(["s3://x"])
    bucket = s3_server.bucket("serving-loop")
    prefix, root = f"s3://{bucket}/logs/", f"s3://{bucket}/root"
    logged_traffic.predict_batches(prefix, [["one text", "two texts here"], ["three"]], file_bytes=1)
    ledger = f"{root}/serving_logs/consumed"
    paths = consumed_logs.new_files(prefix, ledger)
    assert len(paths) == 2 and all(p.startswith(prefix) for p in paths)
    read = serving_logs.write_split(f"{root}/ServingLogsGen/examples/1", prefix, paths, "text", "label", CLASSES)
    assert read["examples"] == 3 and read == serving_logs.read_summary(f"{root}/ServingLogsGen/examples/1")
    assert len(serving_texts(f"{root}/ServingLogsGen/examples/1")) == 3
    entry = consumed_logs.commit(ledger, f"{root}/ServingLogsGen/examples/1", paths, read["requests"])
    assert entry.startswith(ledger) and consumed_logs.commit(
        ledger, f"{root}/ServingLogsGen/examples/1", paths, read["requests"]) == entry  # a retried commit: one entry
    assert [k for k in s3_server.keys(bucket, "root/serving_logs/")] == [entry.split(f"{bucket}/", 1)[1]]
    assert consumed_logs.new_files(prefix, ledger) == []
