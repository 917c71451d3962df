"""The distillation stage (components/module_files/distillation.py) in a pipeline run: a student worse than the model in
service (the `served` run's) is not pushed. A student that learned, pushed and served: tests/e2e/test_multi_task.py
(a 1-layer student of a 2-layer teacher, each task above its majority share) and the executed Kubeflow spec's
Distiller (tests/integration/test_kubeflow_executed.py). The room on small in-memory models, where the student's
tensors are checked against the teacher's and the soft targets' effect is measured against the labels alone:
tests/unit/test_distillation.py."""

from pathlib import Path

from pipeline.dag import nodes
from support.retraining import Case, snapshot


def test_a_student_worse_than_the_model_in_service_is_not_pushed(served, tmp_path):
    """The model in service (the `served` run's) is good; here the teacher and its 1-layer student train two steps
    each. The Evaluator judges the student, blocks it, and neither model reaches the serving folder."""
    case = Case(served, tmp_path)
    case.run("--model-size", "mini", "--student-layers", "1", "--train-steps", "2", data_root=case.served_data)
    assert case.proc.returncode == 0, case.proc.stderr[-4000:]
    summary = case.summary
    assert summary["components"][nodes.DISTILLER]["state"] == "COMPLETE"
    student = Path(summary["model_uri"])
    assert student.parent.parent.name == nodes.DISTILLER  # the candidate the Evaluator judged
    assert summary["blessed"] is False and summary["pushed"] is False
    assert summary["baseline_model"] == case.in_service()
    assert "sparse_categorical_accuracy is" in " ".join(summary["not_blessed_because"])
    assert snapshot(case.serving) == case.before
