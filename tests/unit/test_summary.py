"""The run summary (components/release/run_summary.py), its lines on the console (pipeline/local/console.py) and the
facts it reads (components/release/run_facts.py), on small in-memory inputs: the reasons a model was not blessed,
the lines a person reads, and the readers of the artifacts it summarises. The summary built from a real Evaluator's
output: tests/integration/test_run_summary.py."""

import json

import pandas as pd
import tensorflow as tf
from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2, validation_result_pb2

from components.release import run_facts
from components.release.model_metrics import read_split
from components.release.run_summary import RunSummary, not_comparable_text
from pipeline.local import reports
from pipeline.local.console import summary_lines


def _failure(name, value, is_diff=False, lower=None, absolute=None):
    failure = validation_result_pb2.ValidationFailure(
        metric_key=metrics_for_slice_pb2.MetricKey(name=name, is_diff=is_diff))
    failure.metric_value.double_value.value = value
    if lower is not None:
        failure.metric_threshold.value_threshold.lower_bound.value = lower
    if absolute is not None:
        failure.metric_threshold.change_threshold.absolute.value = absolute
        failure.metric_threshold.change_threshold.direction = config_pb2.MetricDirection.HIGHER_IS_BETTER
    return failure


def test_not_blessed_reasons_name_the_metric_both_values_and_the_bound():
    below = run_facts.describe_failure(_failure("sparse_categorical_accuracy", 0.55, lower=0.6), {})
    assert below == "sparse_categorical_accuracy 0.5500 is below the minimum 0.6 (--min-accuracy)"
    dropped = run_facts.describe_failure(_failure("sparse_categorical_accuracy", -0.05, is_diff=True, absolute=-0.01),
                                  {"sparse_categorical_accuracy": 0.80})
    assert dropped == ("sparse_categorical_accuracy is 0.0500 below the model in service's (0.8000 against 0.8500); "
                       "the most it may drop is 0.01 (--max-accuracy-drop)")
    without_value = validation_result_pb2.ValidationFailure(
        metric_key=metrics_for_slice_pb2.MetricKey(name="auc"), message="missing")
    assert run_facts.describe_failure(without_value, {}) == ("auc was not judged: TFMA computed no value of it on the "
                                                             "eval split (missing)")


def _summary(**extra):
    return RunSummary(dataset="custom", model="tiny", wall_seconds=12.5, components={
        "CsvExampleGen": {"state": "CACHED", "seconds": 0.1}, "Trainer": {"state": "COMPLETE", "seconds": 9.0}},
        **extra)


def test_summary_lines_for_people():
    lines = summary_lines(_summary(
        examples_per_split={"train": 8, "eval": 1}, warnings=["extra column"], anomalies=[{"kind": "X"}],
        eval_metrics={"sparse_categorical_accuracy": 0.5, "example_count": 1.0},
        test_metrics={"accuracy": 0.4, "macro_f1": 0.3, "examples": 5},
        not_blessed_because=["accuracy 0.5 is below the minimum 0.6"],
        text_statistics={"train": {"examples": 8, "tokens_mean": 3.5, "tokens_p95": 6, "truncated": 1,
                                   "max_seq_length": 64, "empty": 0, "unk_share": 0.0125}}))
    assert lines[0] == "dataset: custom  model: tiny  wall: 12.5 s"
    assert "examples: train 8, eval 1" in lines
    assert "from the cache: CsvExampleGen" in lines
    assert "text (train): 8 texts, 3.5 tokens on average (95% up to 6), 1 truncated to 64, 0 empty, [UNK] 1.25% " \
           "of tokens" in lines
    assert "warning: extra column" in lines
    assert f"anomalies: 1 (see {reports.ANOMALIES_REPORT} in the pipeline root)" in lines
    assert "eval: sparse_categorical_accuracy 0.5, example_count 1.0" in lines
    assert "test: accuracy 0.4, macro F1 0.3 on 5 examples" in lines
    assert lines[-2:] == ["blessed: False (accuracy 0.5 is below the minimum 0.6)", "pushed: no"]
    assert summary_lines(_summary(blessed=True, pushed_dir="/srv/m/1"))[-2:] == ["blessed: True", "pushed: /srv/m/1"]


def test_the_summary_json_has_its_keys_always_and_says_nothing_of_what_did_not_happen():
    written = _summary(eval_metrics={"sparse_categorical_accuracy": 0.5}).to_json()
    assert written["pushed_dir"] is None and written["baseline_model"] is None and written["pushed"] is False
    assert written["eval_metrics"] == {"sparse_categorical_accuracy": 0.5}
    assert "test_metrics" not in written and "error" not in written and "not_comparable" not in written


def test_write_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "deep" / "summary.json"
    reports.write_json(str(path), {"a": 1})
    reports.write_json(str(path), {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json"]  # no temporary file left


def test_read_split_and_split_counts(tmp_path):
    examples = tmp_path / "examples" / "Split-test"
    examples.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(examples / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
        for text, label in [("good", "pos"), ("bad", "neg"), ("ünïcode ✓", "pos")]:
            example = tf.train.Example()
            example.features.feature["text"].bytes_list.value.append(text.encode())
            example.features.feature["label"].bytes_list.value.append(label.encode())
            writer.write(example.SerializeToString())
    texts, labels = read_split(str(tmp_path / "examples"), "test", "text", "label")
    assert texts == ["good", "bad", "ünïcode ✓"] and labels == ["pos", "neg", "pos"]
    assert read_split(str(tmp_path / "examples"), "train", "text", "label") == ([], [])

    import tensorflow_data_validation as tfdv

    for split, n in (("train", 8), ("eval", 2)):
        stats = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"x": list(range(n))}))
        folder = tmp_path / "stats" / f"Split-{split}"
        folder.mkdir(parents=True)
        (folder / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    assert run_facts.split_counts(str(tmp_path / "stats")) == {"eval": 2, "train": 8}


def test_a_macro_f1_failure_names_its_flags():
    ours = _failure("macro_f1_score", 0.33, lower=0.5)  # components/release/macro_f1.py's metric
    assert run_facts.describe_failure(ours, {}) == "macro_f1_score 0.3300 is below the minimum 0.5 (--min-macro-f1)"
    failure = _failure("f1_score", 0.33, lower=0.5)  # TFMA's macro average (an eval_config given whole)
    failure.metric_key.aggregation_type.macro_average = True
    assert run_facts.describe_failure(failure, {}) == "macro_f1_score 0.3300 is below the minimum 0.5 (--min-macro-f1)"
    drop = _failure("f1_score", -0.1, is_diff=True, absolute=-0.02)
    drop.metric_key.aggregation_type.macro_average = True
    text = run_facts.describe_failure(drop, {"macro_f1_score": 0.7})
    assert text.startswith("macro_f1_score is 0.1000 below the model in service's (0.7000 against 0.8000)")
    assert text.endswith("(--max-macro-f1-drop)")


def test_a_gate_given_a_nan_or_no_value_says_so_naming_the_metric_and_the_cause():
    """A NaN or a missing metric is never reported as a threshold it failed: one line naming the metric, its gate's
    flag and why there was nothing to judge."""
    nan = float("nan")
    no_example = _failure("macro_f1_score", nan, lower=0.5)
    no_example.metric_key.output_name = "fine"
    assert run_facts.describe_failure(no_example, {"fine/example_count": 0.0, "fine/macro_f1_score": None}) == (
        "fine/macro_f1_score was not judged (--min-macro-f1): its value is NaN (not a number) because the eval split "
        "has no example labelled in this column")
    assert run_facts.describe_failure(_failure("sparse_categorical_accuracy", nan, lower=0.6), {}) == (
        "sparse_categorical_accuracy was not judged (--min-accuracy): its value is NaN (not a number) because the "
        "eval split has no example labelled in the label column")
    assert run_facts.describe_failure(_failure("macro_f1_score", nan, lower=0.5), {"example_count": 8.0}) == (
        "macro_f1_score was not judged (--min-macro-f1): its value is NaN (not a number): TFMA had nothing to divide "
        "by on the eval split")
    served_nan = _failure("macro_f1_score", nan, is_diff=True, absolute=-0.02)
    assert run_facts.describe_failure(served_nan, {"macro_f1_score": 0.8, "example_count": 8.0}) == (
        "macro_f1_score was not judged (--max-macro-f1-drop): the model in service's value is NaN (not a number), so "
        "there is nothing to compare with")
    missing = validation_result_pb2.ValidationFailure(
        metric_key=metrics_for_slice_pb2.MetricKey(name="macro_f1_score", output_name="coarse"),
        message="Metric not found.")
    missing.metric_threshold.value_threshold.lower_bound.value = 0.5
    assert run_facts.describe_failure(missing, {}) == (
        "coarse/macro_f1_score was not judged (--min-macro-f1): TFMA computed no value of it on the eval split "
        "(Metric not found.)")
    missing.metric_key.is_diff = True
    assert run_facts.describe_failure(missing, {}) == (
        "coarse/macro_f1_score was not judged (--max-macro-f1-drop): TFMA has no value of it for the candidate or "
        "for the model in service, so there is nothing to compare (Metric not found.)")


def test_not_comparable_reasons():
    note = {"baseline_classes": ["a", "b"], "candidate_classes": ["a", "b", "c"], "accepted": False}
    assert not_comparable_text(note).startswith("not comparable with the model in service, whose classes differ "
                                                  "(new: c)")
    assert "--accept-new-classes" in not_comparable_text(note)
    accepted = not_comparable_text({**note, "candidate_classes": ["a"], "accepted": True})
    assert accepted.startswith("the model in service has other classes (gone: b)") and "absolute gates" in accepted


def test_the_blessing_gates_hold_macro_f1_not_each_class_f1():
    """The macro F1 gate applies to the macro average only (components/release/macro_f1.py's metric, over the
    classes of the eval split): a class with a low F1 alone does not fail a model."""
    import tensorflow_model_analysis as tfma

    from components.release.eval_config import make_eval_config
    from components.settings.evaluator import EvaluatorSettings
    from components.tasks import Task

    config = make_eval_config(EvaluatorSettings(min_macro_f1=0.55, max_macro_f1_drop=0.03),
                              [Task("label", ("a", "b", "c"))])
    thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)
    assert not [key for key in thresholds if key.name == "f1_score"]  # no gate on a class's F1, nor TFMA's average
    f1 = {key: value for key, value in thresholds.items() if key.name == "macro_f1_score"}
    assert f1 and all(key.sub_key is None and key.aggregation_type is None for key in f1), list(f1)
    found = [threshold for entries in f1.values() for _, threshold in entries]  # (slice, threshold) pairs
    bounds = sorted(t.lower_bound.value for t in found if "lower_bound" in t.DESCRIPTOR.fields_by_name)
    drops = sorted(t.absolute.value for t in found if "absolute" in t.DESCRIPTOR.fields_by_name)
    assert bounds == [0.55] and drops == [-0.03]
    accuracy = [k for k in thresholds if k.name == "sparse_categorical_accuracy"]
    assert len(accuracy) == 2  # its floor and its allowed drop


def test_every_task_has_its_own_gates_on_its_own_output():
    """With several label columns, each task's output gets the accuracy and macro F1 gates, its predictions, labels
    and example weights keyed by its column: TFMA blesses only when all of them hold."""
    import tensorflow_model_analysis as tfma

    from components.release.eval_config import make_eval_config
    from components.settings.evaluator import EvaluatorSettings
    from components.tasks import Task

    tasks = [Task("rating", ("negative", "neutral", "positive"), multi=True),
             Task("condition", ("acne", "pain"), multi=True)]
    config = make_eval_config(EvaluatorSettings(), tasks)
    spec = config.model_specs[0]
    assert dict(spec.prediction_keys) == {"rating": "rating/probabilities", "condition": "condition/probabilities"}
    assert dict(spec.label_keys) == {"rating": "label_id_rating", "condition": "label_id_condition"}
    assert dict(spec.example_weight_keys) == {"rating": "label_weight_rating", "condition": "label_weight_condition"}
    thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)
    gated = sorted((k.output_name, k.name) for k in thresholds)  # each twice: its floor and its allowed drop
    assert gated == sorted(2 * [(task, name) for task in ("rating", "condition")
                                for name in ("sparse_categorical_accuracy", "macro_f1_score")]), gated
    assert not any(k.output_name == "" for k in thresholds)
    aucs = [s for s in config.metrics_specs if any(m.class_name == "AUC" for m in s.metrics)]
    assert [list(s.output_names) for s in aucs] == [["condition"]]  # AUC for the two-class task alone
