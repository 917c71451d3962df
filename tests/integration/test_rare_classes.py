"""A label column whose rare classes have no example in the eval split, judged by the real Evaluator (this project's
executor, TFX's underneath, TFMA and Beam) at the default gates (EvaluatorSettings()): a model that answers most
examples right is blessed, with one label column and with several. TFMA's own macro average of F1 was NaN there (a
class with no example and no answer has F1 0/0), and its gate refused every such model: a first run on real
long-tailed data failed for nothing the model did.

The data: a split one class short (4 classes, one never in eval) and a 30-class long tail (a third of the classes
never in eval, and, with several label columns, rows without a label in that column, which weigh 0 and make no class
present). Small stand-ins, not BERT: each model's answer is a feature of the example the test writes, so the test
knows every answer and checks macro F1 against scikit-learn's over the classes of the split.
"""

from __future__ import annotations

import pytest

from components.tasks import Task
from support.evaluator_run import evaluate

SHORT = tuple(f"topic_{c}" for c in "abcd")  # topic_d never occurs in eval
TAIL = tuple(f"kind_{i:02d}" for i in range(30))


def _tail_labels():
    """The long tail's eval labels: kind_01 (12 examples) down to kind_20 (1 example); kind_00 and kind_21..29
    never occur (kind_00 is label id 0, which a row without a label also gets, with weight 0)."""
    return [TAIL[i] for i in range(1, 21) for _ in range(max(1, 13 - i))]


def _answers(labels, classes, every: int):
    """The model's answers: right, except every `every`-th example, answered as the next of `classes`."""
    return [classes[(classes.index(label) + 1) % len(classes)] if i % every == every - 1 else label
            for i, label in enumerate(labels)]


def _sklearn_macro_f1(labels, answers) -> float:
    from sklearn.metrics import f1_score

    return f1_score(labels, answers, labels=sorted(set(labels)), average="macro")


def _assert_macro_f1(metrics, prefix: str, classes, labels, answers) -> None:
    """macro F1 is scikit-learn's over the classes of the split; the classes averaged and left out are named; the
    per-class figures keep every class of the model."""
    present = [c for c in classes if c in set(labels)]
    assert metrics[f"{prefix}macro_f1_score"] == pytest.approx(_sklearn_macro_f1(labels, answers), abs=1e-5)
    assert metrics[f"{prefix}macro_f1_classes"] == present
    assert metrics[f"{prefix}macro_f1_absent_classes"] == [c for c in classes if c not in present]
    assert all(f"{prefix}f1_score[class_{i}]" in metrics for i in range(len(classes))), sorted(metrics)


@pytest.mark.parametrize("classes,labels", [
    (SHORT, [SHORT[i % 3] for i in range(30)]),  # one class short
    (TAIL, _tail_labels()),  # a 30-class long tail, 10 classes never in eval
], ids=["one-class-short", "long-tail"])
def test_one_label_column_with_classes_absent_from_eval_is_blessed_at_default_flags(tmp_path, classes, labels):
    answers = _answers(labels, sorted(set(labels)), every=7)  # never an absent class: its F1 was 0/0, NaN
    rows = [{"text": f"text {i}", "label": label, "answer_label": answer}
            for i, (label, answer) in enumerate(zip(labels, answers))]
    blessed, metrics, reasons = evaluate(tmp_path, (Task("label", classes),), rows, with_baseline=False)
    assert blessed and not reasons, (reasons, metrics.get("macro_f1_score"))
    _assert_macro_f1(metrics, "", classes, labels, answers)
    from components.release.model_metrics import classes_averaged

    absent = [c for c in classes if c not in set(labels)]
    assert classes_averaged(metrics) == (f"the {len(classes) - len(absent)} of {len(classes)} classes with an eval "
                                         f"example (none of: {', '.join(absent)})")


def test_several_label_columns_with_rare_classes_absent_from_eval_are_blessed_against_a_model_in_service(tmp_path):
    """A column one class short and a long-tailed one (some rows without its label), judged at the default gates
    against a model in service that answers a few more wrong: blessed, the drop gates on macro F1 included (their
    difference was NaN too, the candidate's NaN minus the served model's)."""
    from components.release.run_summary import RunSummary
    from pipeline.local.console import summary_lines

    tasks = (Task("coarse", SHORT, multi=True), Task("fine", TAIL, multi=True))
    fine = _tail_labels()
    n = len(fine) + 12  # 12 rows without a fine label, which weigh 0 in that task (label id 0: kind_00)
    coarse = [SHORT[i % 3] for i in range(n)]
    fine = fine + [""] * 12
    answers = {"coarse": _answers(coarse, SHORT[:3], every=9), "fine": _answers([f or TAIL[1] for f in fine], TAIL, 9)}
    served = {"coarse": _answers(coarse, SHORT[:3], every=6), "fine": _answers([f or TAIL[1] for f in fine], TAIL, 6)}
    rows = [{"text": f"text {i}", "coarse": coarse[i], "fine": fine[i],
             **{f"answer_{c}": answers[c][i] for c in answers}, **{f"served_{c}": served[c][i] for c in served}}
            for i in range(n)]
    blessed, metrics, reasons = evaluate(tmp_path, tasks, rows, with_baseline=True)
    assert blessed and not reasons, (reasons, {k: v for k, v in metrics.items() if "macro_f1_score" in k})
    _assert_macro_f1(metrics, "coarse/", SHORT, coarse, answers["coarse"])
    labelled = [i for i in range(n) if fine[i]]
    _assert_macro_f1(metrics, "fine/", TAIL, [fine[i] for i in labelled], [answers["fine"][i] for i in labelled])
    assert TAIL[0] in metrics["fine/macro_f1_absent_classes"]  # the unlabelled rows' id 0 weighs nothing
    lines = summary_lines(RunSummary(dataset="own", model="stand-in", wall_seconds=1, eval_metrics=metrics,
                                     blessed=blessed))
    fine_line = next(line for line in lines if line.startswith("eval (fine): "))
    assert "(over the 20 of 30 classes with an eval example (none of: kind_00, kind_21," in fine_line, fine_line
