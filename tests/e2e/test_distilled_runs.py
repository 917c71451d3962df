"""The distillation stage (components/module_files/distillation.py) in pipeline runs.

The quick run's teacher (tests/conftest.py's `first_run`: four pretrained layers, fine-tuned) distilled in its own
pipeline root, everything before the Distiller taken from the cache, into a student of 2 layers. The run pushes its
student, never the teacher; the student starts from the teacher's own tensors and learned. A student worse than the
model in service (the `served` run's) is not pushed. The room on small in-memory models, where the soft targets'
effect is measured against the labels alone on a rule only the teacher knows:
tests/unit/test_distillation.py."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.dag import nodes
from support import QUICK_ARGS, STUDENT_ARGS, run_local
from support.fresh_process import layers_and_labels
from support.learned import majority_share
from support.retraining import Case, snapshot


def _latest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: int(p.name))


def _record(model: Path) -> dict:
    return json.loads((model / "training_history.json").read_text())


@pytest.fixture(scope="module")
def students(first_run, tmp_path_factory):
    """A run in the quick run's own pipeline root (a copy would not do: the curated schema's snapshot lies under the
    root and is imported by its path, so a copy imports anew and trains anew), pushing to a serving folder of its own,
    so it has no model in service. It adds outputs to the quick run's root, which other tests read:
    tests/conftest.py runs the tests using this fixture after every other test of the quick run. A second student on
    the labels alone, to compare with, would cost the suite minutes; the comparison is the unit test's.
    Returns {"distilled": (summary, stdout)}."""
    base = tmp_path_factory.mktemp("students")
    proc = run_local(*QUICK_ARGS, *STUDENT_ARGS, "--pipeline-root", first_run[0]["pipeline_root"],
                     "--serving-dir", base / "serving", "--summary-json", base / "distilled.json")
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return {"distilled": (json.loads((base / "distilled.json").read_text()), proc.stdout)}


def test_a_distilled_run_pushes_a_student_of_two_layers_and_never_the_teacher(first_run, students):
    summary, stdout = students["distilled"]
    teacher = _latest(Path(first_run[0]["pipeline_root"]) / nodes.TRAINER / "model")
    for node in (nodes.TRANSFORM, nodes.TRAINER):  # the quick run's data and teacher
        assert summary["components"][node]["state"] == "CACHED", node
    assert summary["components"][nodes.DISTILLER]["state"] == "COMPLETE"
    student = Path(summary["model_uri"])
    assert student.parent.parent.name == nodes.DISTILLER  # what the release stage judged
    assert summary["pushed"] and "student of 2 layers" in summary["model"]
    pushed = Path(summary["pushed_dir"])
    texts = ["a wonderful, moving film", "dull and far too long"]
    layers, labels = layers_and_labels(pushed, texts)
    assert layers == [0, 1] and labels == ["fresh", "rotten"]
    assert layers_and_labels(teacher / "Format-Serving", texts)[0] == [0, 1, 2, 3]
    variables = "variables/variables.data-00000-of-00001"
    assert (pushed / variables).read_bytes() == (student / "Format-Serving" / variables).read_bytes()
    record = _record(student)["distillation"]
    assert record["teacher_layers"] == 4 and record["copied_from_teacher_layers"] == [1, 3]
    assert record["teacher"] == str(teacher / "Format-Serving")
    assert f"{nodes.DISTILLER} done" in stdout and "student of 2 of the teacher's 4 layers" in stdout
    card = json.loads((pushed / "assets.extra" / "model_card.json").read_text())
    assert "distilled into a student of 2 of its 4 encoder layers" in card["checkpoint"]
    assert card["training"]["distillation"]["student_layers"] == 2


def test_the_student_starts_from_the_teachers_own_tensors(first_run, students):
    """On the runs' own artifacts: the teacher is read back strictly from the Trainer's SavedModel, and the student
    built from it holds, tensor by tensor, the teacher's embeddings, head, and layers 2 and 4 (the record's map)."""
    from components.module_files import distillation

    teacher_model = _latest(Path(first_run[0]["pipeline_root"]) / nodes.TRAINER / "model") / "Format-Serving"
    record = distillation.teacher_record(str(teacher_model))
    teacher, config, settings, data = distillation.build_teacher(str(teacher_model), record)
    student, sources, copied = distillation.build_student(teacher, config, settings, data, 2)
    assert sources == (1, 3) and config.num_layers == 4
    recorded = _record(Path(students["distilled"][0]["model_uri"]))["distillation"]["copied_tensors"]
    assert copied == recorded and len(copied) == len(student.weights)
    teacher_tensors = {w.name: w.numpy() for w in teacher.weights}
    for weight in student.weights:
        source = re.sub(r"^layer_(\d+)/", lambda m: f"layer_{sources[int(m.group(1))]}/", weight.name)
        assert np.array_equal(weight.numpy(), teacher_tensors[source]), (weight.name, source)


def test_the_distilled_student_learned_and_is_what_the_evaluator_judged(first_run, students):
    """Eval accuracy 0.05 above the eval split's majority share (half the quick run's own margin, since two layers of
    four lose some) and macro F1 above 0.6; the Evaluator's accuracy is the Distiller's own figure for the student."""
    record = _record(Path(students["distilled"][0]["model_uri"]))["distillation"]
    summary = students["distilled"][0]
    assert record["settings"]["soft_weight"] == 0.5
    share = majority_share(Path(first_run[0]["pipeline_root"]))
    assert record["student_eval_accuracy"] >= share + 0.05, (share, record)
    assert summary["eval_metrics"]["macro_f1_score"] > 0.6, summary["eval_metrics"]
    assert summary["eval_metrics"]["sparse_categorical_accuracy"] == pytest.approx(
        record["student_eval_accuracy"], abs=1e-3)


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
