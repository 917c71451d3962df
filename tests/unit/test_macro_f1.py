"""Macro F1 as the Evaluator gates it and the run reports it (components/release/macro_f1.py, model_metrics.py): the
mean F1 of the classes that occur in the split judged, never NaN because a class has no example there. The real
Evaluator on such splits: tests/integration/test_rare_classes.py."""

import json
import math
import random

import pytest
from sklearn.metrics import f1_score

from components.release import macro_f1, model_metrics


def _counts(labels, answers, weights=None):
    counts = {}
    for i, (label, answer) in enumerate(zip(labels, answers)):
        counts[(label, answer)] = counts.get((label, answer), 0.0) + (1.0 if weights is None else weights[i])
    return counts


@pytest.mark.parametrize("seed", range(5))
def test_the_average_is_scikit_learns_over_the_classes_of_the_split(seed):
    """Ten classes, of which a few never occur (some of them answered all the same): scikit-learn's macro F1 with the
    split's classes as its labels, and the ids averaged are those classes."""
    rng = random.Random(seed)
    occurring = sorted(rng.sample(range(10), 6))
    labels = [rng.choice(occurring) for _ in range(80)]
    answers = [label if rng.random() < 0.7 else rng.randrange(10) for label in labels]
    value, averaged = macro_f1.average_f1(_counts(labels, answers))
    assert averaged == sorted(set(labels))
    assert value == pytest.approx(f1_score(labels, answers, labels=averaged, average="macro"))
    # TFMA's average over every class was NaN here: an absent class never answered has F1 0/0
    assert not math.isnan(value)


def test_a_class_answered_but_absent_adds_no_f1_of_its_own_and_its_answers_still_count():
    value, averaged = macro_f1.average_f1(_counts([0, 0, 1, 1], [0, 2, 1, 1]))  # class 2: answered, never true
    assert averaged == [0, 1]
    assert value == pytest.approx((2 / 3 + 1.0) / 2)  # class 0's recall is 1/2: its example answered as 2


def test_rows_that_weigh_nothing_make_no_class_present_and_nothing_at_all_is_nan():
    """With several label columns a row without this task's label has label id 0 and weight 0."""
    value, averaged = macro_f1.average_f1(_counts([0, 0, 3, 3], [1, 1, 3, 3], weights=[0, 0, 1, 1]))
    assert averaged == [3] and value == 1.0
    value, averaged = macro_f1.average_f1(_counts([0], [0], weights=[0]))
    assert math.isnan(value) and averaged == []
    assert math.isnan(macro_f1.average_f1({})[0])


def test_the_metric_names_the_classes_averaged_and_left_out():
    """The metric's config carries the task's classes, and TFMA rebuilds it from the eval_config."""
    from tensorflow_model_analysis.metrics import metric_specs

    from components.release.eval_config import make_eval_config
    from components.settings.evaluator import EvaluatorSettings
    from components.tasks import Task

    config = make_eval_config(EvaluatorSettings(), [Task("label", ("a", "b", "c"))])
    found = [m for spec in config.metrics_specs for m in spec.metrics if m.class_name == "MacroF1Score"]
    assert len(found) == 1 and found[0].module == macro_f1.__name__
    metric = metric_specs.metric_instance(found[0])
    assert isinstance(metric, macro_f1.MacroF1Score) and metric.get_config()["classes"] == ["a", "b", "c"]


def test_the_test_splits_macro_f1_averages_its_own_classes():
    """The test split's figure (the exported model on raw texts) has the Evaluator's definition; the per-class
    figures keep every class, the one answered but absent included."""
    scores = model_metrics._scores(["t1", "t2", "t3", "t4"], ["a", "a", "b", "b"], ["a", "c", "b", "b"],
                                   [0.9] * 4, mistakes=1)
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2, abs=1e-4)  # scikit-learn's union: 0.5556
    assert scores["macro_f1_classes"] == ["a", "b"] and sorted(scores["per_class"]) == ["a", "b", "c"]


def test_the_report_says_which_classes_macro_f1_averaged():
    metrics = {"rating/macro_f1_score": 0.7, "rating/macro_f1_classes": ["neg", "pos"],
               "rating/macro_f1_absent_classes": ["mixed"], "macro_f1_classes": ["a", "b"],
               "macro_f1_absent_classes": []}
    assert model_metrics.classes_averaged(metrics, "rating") == ("the 2 of 3 classes with an eval example (none of: "
                                                                 "mixed)")
    assert model_metrics.classes_averaged(metrics) == "all 2 classes"
    assert model_metrics.classes_averaged({}) == ""
    figures = model_metrics.headline(metrics, {"tasks": {"rating": {"accuracy": 0.8, "macro_f1": 0.7}}})
    assert figures["rating: eval macro F1 over"] == "the 2 of 3 classes with an eval example (none of: mixed)"


def test_the_kubeflow_gate_parameters_set_the_macro_f1_thresholds():
    """`--param min_macro_f1=...` and `max_macro_f1_drop=...` find the metric's thresholds in the eval_config."""
    from google.protobuf import json_format

    from components.release.eval_config import make_eval_config
    from components.settings.evaluator import EvaluatorSettings
    from components.tasks import Task
    from pipeline.kubeflow import parameters

    document = json.loads(json_format.MessageToJson(make_eval_config(EvaluatorSettings(), [Task("label", ("a", "b"))]),
                                                    preserving_proto_field_name=True))
    parameters._set_gate(document, parameters.EVAL_FIELDS["min_macro_f1"], 0.7)
    parameters._set_gate(document, parameters.EVAL_FIELDS["max_macro_f1_drop"], 0.05)
    gate = [m for spec in document["metrics_specs"] for m in spec["metrics"] if m["class_name"] == "MacroF1Score"]
    assert gate[0]["threshold"]["value_threshold"]["lower_bound"] == 0.7
    assert gate[0]["threshold"]["change_threshold"]["absolute"] == -0.05


def test_the_run_summary_and_report_page_name_the_classes_averaged():
    from components.release.report_page import ReportContext, evaluation_section
    from components.release.run_summary import RunSummary
    from components.settings.evaluator import EvaluatorSettings
    from pipeline.local.console import summary_lines

    summary = RunSummary(dataset="own", model="m", wall_seconds=1, blessed=True, eval_metrics={
        "sparse_categorical_accuracy": 0.9, "macro_f1_score": 0.8, "macro_f1_classes": ["a", "b"],
        "macro_f1_absent_classes": ["c"]})
    over = "the 2 of 3 classes with an eval example (none of: c)"
    assert f"eval: sparse_categorical_accuracy 0.9, macro_f1_score 0.8 (over {over})" in summary_lines(summary)
    page = evaluation_section(ReportContext("p", "label", 64, EvaluatorSettings()), summary)
    assert f"macro F1 (eval) averages {over}." in page
