"""The compiled Kubeflow spec with the distillation stage (`run_kubeflow.py compile --student-layers 1`), executed
task by task as KFP's v2 driver and launcher run it (tests/support/kfp_local.py, after the open-source backend's
rules): the Distiller task trains a 1-layer student from the Trainer's model, and the student, not the teacher, is
checked, evaluated and pushed. One first run on support/retraining.py's reviews with a tiny 2-layer checkpoint, as
tests/integration/test_kubeflow_executed.py's retraining scenario (which warm-starts, and so has no student); what
that file says this setup does not reproduce holds here too."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.dag import nodes
from pipeline.kubeflow import parameters
from support import kfp_local
from support.kubeflow import compiled_here
from support.retraining import LABEL, TEXT, rows, write_csv

pytestmark = pytest.mark.slow  # the whole pipeline, task by task: minutes

COMPILE_ARGS = ["--image", "registry.example.com/ml/bert-tfx-pipeline:1.2.3", "--dataset", "custom", "--labels",
                "fresh,rotten", "--text-column", TEXT, "--label-column", LABEL, "--max-seq-length", "32",
                "--batch-size", "16", "--epochs", "1", "--train-steps", "5", "--learning-rate", "2e-3",
                "--min-accuracy", "0.0", "--min-macro-f1", "0.0", "--student-layers", "1", "--distill-epochs", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    here = compiled_here(tmp_path_factory.mktemp("kfp_distilled"), *COMPILE_ARGS)
    spec = here.job["pipelineSpec"]
    write_csv(here.data / "reviews.csv", rows(300, seed=0))
    results = kfp_local.execute_spec(here.spec_path, here.root, here.pod_env, run_id="run-1", server=kfp_local.Server(),
                                     parameter_values=parameters.resolve_parameters(spec, ["train_steps=3"]),
                                     timeout=900)
    return spec, results, here.serving


def test_every_task_ran_and_the_distiller_trained_a_one_layer_student_from_the_trainers_model(run):
    spec, results, _ = run
    failed = {name: r.log_tail() for name, r in results.items() if r.status not in kfp_local.DONE}
    assert not failed, failed
    assert set(results) == set(spec["root"]["dag"]["tasks"]) and nodes.DISTILLER in results
    teacher = Path(results[nodes.TRAINER].artifacts["model"][0]["uri"])
    given = results[nodes.DISTILLER].executor_input["inputs"]["artifacts"]["base_model"]["artifacts"]
    assert [a["uri"] for a in given] == [str(teacher)]
    student = Path(results[nodes.DISTILLER].artifacts["model"][0]["uri"])
    record = json.loads((student / "training_history.json").read_text())
    assert record["distillation"]["teacher"] == str(teacher / "Format-Serving")
    assert record["distillation"]["copied_from_teacher_layers"] == [1] and record["encoder"]["num_layers"] == 1
    # Its cap is the compiled --train-steps: the run's train_steps parameter is the Trainer's TrainArgs alone.
    assert record["total_steps"] == 5
    trainer_record = json.loads((teacher / "training_history.json").read_text())
    assert trainer_record["total_steps"] == 3
    for task in (nodes.SERVING_CHECK, nodes.EVALUATOR, nodes.MODEL_CARD):
        judged = results[task].executor_input["inputs"]["artifacts"]["model"]["artifacts"]
        assert [a["uri"] for a in judged] == [str(student)], task


def test_the_pushed_version_is_the_student(run):
    _, results, serving = run
    pushed = results[nodes.PUSHER].artifacts["pushed_model"][0]["metadata"]
    assert pushed["pushed"] == 1
    version = Path(pushed["pushed_destination"])
    assert version.parent == serving / "bert_classifier"
    student = Path(results[nodes.DISTILLER].artifacts["model"][0]["uri"]) / "Format-Serving"
    data = "variables/variables.data-00000-of-00001"
    assert (version / data).read_bytes() == (student / data).read_bytes()
    code = ("import json, re, sys, tensorflow as tf, tensorflow_text\n"
            "m = tf.saved_model.load(sys.argv[1])\n"
            "layers = sorted({int(g) for v in m.model.variables for g in re.findall(r'layer_(\\d+)/', v.name)})\n"
            "out = m.signatures['serving_default'](text=tf.constant(['a wonderful, moving film']))\n"
            "print(json.dumps([layers, [x.decode() for x in out['label'].numpy()]]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(version)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    layers, labels = json.loads(proc.stdout.strip().splitlines()[-1])
    assert layers == [0] and labels[0] in ("fresh", "rotten")
