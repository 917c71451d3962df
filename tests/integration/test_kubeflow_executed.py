"""The compiled Kubeflow spec, executed: `run_kubeflow.py compile` as a user runs it, then every task of the spec run
the way KFP's v2 driver and launcher run it (tests/support/kfp_local.py), from CsvExampleGen to a pushed model.

The spec is compiled with this machine's paths (data root, pipeline root, serving folder: what the pods would see)
and no packaged checkpoint (--pretrained none --vocab learn: the image's /pipeline/data is not here). Each container
task runs its own command and arguments from the spec's deploymentSpec in a process of its own (forked from a
server that has imported TensorFlow, TFX and Beam once; KFP_LOCAL_FRESH_INTERPRETERS=1: fresh interpreters), with
this checkout on PYTHONPATH in place of the image's /pipeline and an empty BERT_TFX_DATA_DIR; the run's runtime
parameters are what `run --param train_steps=3` sends.

What this does not reproduce, and so does not prove:
- Open-source KFP (every v2 backend to date) refuses a spec with resolver tasks when the run is created
  ("resolver executors not implemented", backend/src/v2/compiler/argocompiler/dag.go); this spec has four (the
  model in service, the last accepted statistics of both gates), so as compiled it runs on Vertex AI Pipelines,
  which executes them, and not on open-source KFP. Here they return nothing, as on a first run; the harness has no
  metadata store to query, so second runs (a baseline model, drift against earlier statistics, warm start) are not
  executed this way.
- ExampleGen's `preCacheCheck` hook (TFX's span/fingerprint driver) is not run: open-source KFP ignores lifecycle
  hooks. So the data root holds plain CSV files; `--spans` on Kubeflow is not covered.
- KFP's step cache, retries, pod resources, object-store uploads and the KFP UI's artifact views are not modelled;
  the pipeline root is a local folder (KFP would have gs://, s3://, or a volume), so output folders are not
  pre-created beyond their parent, as KFP's launcher does.
- The image itself (tensorflow/tfx:1.16.0 with this project's code): the steps run with this checkout's virtualenv,
  whose TFX, TensorFlow and tensorflow-text versions are the image's by the pins tests/integration/test_k8s.py checks.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.dag import nodes
from pipeline.kubeflow import compiler, entrypoint, parameters
from support import REPO, kfp_local
from support.retraining import LABEL, TEXT, rows, write_csv

pytestmark = pytest.mark.slow  # the whole pipeline, task by task: minutes

IMAGE = "registry.example.com/ml/bert-tfx-pipeline:1.2.3"
MODEL_NAME = "bert_classifier"
# The quick settings of support's QUICK_ARGS, on support/retraining.py's reviews, in fewer steps.
COMPILE_ARGS = ["--image", IMAGE, "--dataset", "custom", "--labels", "fresh,rotten", "--text-column", TEXT,
                "--label-column", LABEL, "--pretrained", "none", "--model-size", "tiny", "--vocab", "learn",
                "--max-seq-length", "32", "--batch-size", "16", "--epochs", "1", "--train-steps", "5",
                "--learning-rate", "2e-3", "--min-accuracy", "0.0", "--min-macro-f1", "0.0"]
RUN_PARAMS = ["train_steps=3"]  # `run_kubeflow.py run --param train_steps=3`


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    base = tmp_path_factory.mktemp("kfp_executed")
    data, root, serving = base / "data", base / "pipeline_root", base / "serving"
    write_csv(data / "reviews.csv", rows(300))
    spec_path = base / "pipeline.json"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "pipeline" / "run_kubeflow.py"), "compile", *COMPILE_ARGS, "--data-root",
         str(data), "--pipeline-root", str(root), "--serving-dir", str(serving), "--output", str(spec_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    job = json.loads(spec_path.read_text())
    run_values = parameters.resolve_parameters(job["pipelineSpec"], RUN_PARAMS)

    (base / "no-data").mkdir()
    pod_env = {"PYTHONPATH": str(REPO), "TF_USE_LEGACY_KERAS": "1", "BERT_TFX_DATA_DIR": str(base / "no-data"),
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    results = kfp_local.execute_spec(spec_path, root, pod_env, parameter_values=run_values, timeout=900)
    seconds = time.monotonic() - started
    print(f"\nexecuted {len(results)} tasks in {seconds:.0f} s: "
          + ", ".join(f"{r.name} {r.seconds:.0f}s" for r in results.values() if r.kind == "container"))
    failed = [r for r in results.values() if r.status != "SUCCEEDED"]
    assert not failed, "\n".join(f"{r.name}: {r.status} (exit {r.returncode})\n{r.log_tail()}" for r in failed)
    return SimpleNamespace(job=job, spec=job["pipelineSpec"], results=results, root=root, serving=serving,
                           data=data, run_values=run_values, seconds=seconds)


def test_every_task_of_the_spec_ran_its_own_command_with_exit_0(executed):
    tasks = executed.spec["root"]["dag"]["tasks"]
    results = executed.results
    assert list(results) == kfp_local.dag_order(tasks) and set(results) == set(tasks)
    executors = executed.spec["deploymentSpec"]["executors"]
    resolvers = set()
    for name, task in tasks.items():
        executor = executors[executed.spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        result = results[name]
        assert result.status == "SUCCEEDED", name
        if "resolver" in executor:
            resolvers.add(name)
            assert result.kind == "resolver" and all(not found for found in result.artifacts.values()), name
            continue
        container = executor["container"]
        assert result.kind == "container" and result.returncode == 0, name
        assert container["command"] == compiler.ENTRYPOINT, name
        assert result.command[1:3] == container["command"][1:3] and result.command[0] == sys.executable, name
        assert len(result.command) == len(container["command"]) + len(container["args"]), name
        assert result.executor_output is not None, f"{name} wrote no executor output"
    assert resolvers == {f"{nodes.MODEL_RESOLVER}-model-blessing-resolver", f"{nodes.MODEL_RESOLVER}-model-resolver",
                         nodes.baseline_resolver_id(nodes.DATA_GATE), nodes.baseline_resolver_id(nodes.TEXT_GATE)}
    assert {nodes.EXAMPLE_GEN, nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER, nodes.RUN_REPORT,
            nodes.SCHEMA_CURATOR, nodes.SCHEMA_FREEZER} <= set(results)


def test_inputs_were_upstream_outputs_as_kfp_hands_them_over(executed):
    """Downstream tasks got the upstream artifact at its URI with the metadata its executor reported (the splits),
    untyped as KFP's driver leaves it; runtime parameters came from the run, constants from the spec."""
    results = executed.results
    examples = results[nodes.EXAMPLE_GEN].artifacts["examples"][0]
    assert json.loads(examples["metadata"]["split_names"]) == ["train", "eval", "test"]
    given = results[nodes.STATISTICS_GEN].executor_input["inputs"]["artifacts"]["examples"]["artifacts"]
    assert len(given) == 1 and given[0]["uri"] == examples["uri"] and given[0]["name"].isdigit()
    assert given[0]["metadata"]["split_names"] == examples["metadata"]["split_names"]
    assert given[0]["type"] == {"instanceSchema": ""}
    trainer = results[nodes.TRAINER].executor_input["inputs"]["parameterValues"]
    assert json.loads(trainer["train_args"]) == {"splits": ["train"], "num_steps": 3}
    assert trainer["run_fn"] == "components.modules.trainer.run_fn"
    assert results[nodes.EXAMPLE_GEN].executor_input["inputs"]["parameterValues"]["input_base"] == str(executed.data)


def test_the_run_trained_with_its_runtime_parameters(executed):
    model = Path(executed.results[nodes.TRAINER].artifacts["model"][0]["uri"])
    history = json.loads((model / "training_history.json").read_text())
    assert history["total_steps"] == 3  # the run's train_steps, not the compiled 5
    assert history["settings"]["batch_size"] == 16 and history["settings"]["model_size"] == "tiny"


def test_the_pusher_pushed_a_saved_model_in_tf_servings_layout(executed):
    blessing = executed.results[nodes.EVALUATOR].artifacts["blessing"][0]["metadata"]
    assert blessing["blessed"] == 1
    assert executed.results[nodes.SERVING_CHECK].artifacts["blessing"][0]["metadata"]["blessed"] == 1
    pushed = executed.results[nodes.PUSHER].artifacts["pushed_model"][0]["metadata"]
    assert pushed["pushed"] == 1
    versions = sorted((executed.serving / MODEL_NAME).iterdir())
    assert [v.name for v in versions] == [pushed["pushed_version"]] and versions[0].name.isdigit()
    assert pushed["pushed_destination"] == str(versions[0])
    assert (versions[0] / "saved_model.pb").is_file() and (versions[0] / "variables").is_dir()
    assert (versions[0] / "assets.extra" / "model_card.json").is_file()  # the ModelCardWriter's model was pushed
    # The schema the run was checked with, frozen under the pipeline root for the next runs, and the run report.
    assert (executed.root / "schema" / "schema.pbtxt").is_file()
    report = Path(executed.results[nodes.RUN_REPORT].artifacts["report"][0]["uri"]) / "report.html"
    assert report.is_file() and "<html" in report.read_text()[:2000].lower()


def test_pushed_model_answers_serving_default_in_a_fresh_process(executed):
    version = executed.results[nodes.PUSHER].artifacts["pushed_model"][0]["metadata"]["pushed_destination"]
    code = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "out = m.signatures['serving_default'](text=tf.constant(['a wonderful, moving film', 'dull and bland']))\n"
        "print(json.dumps({'labels': [l.decode() for l in out['label'].numpy()],"
        " 'sums': [float(s) for s in tf.reduce_sum(out['probabilities'], -1).numpy()]}))\n")
    proc = subprocess.run([sys.executable, "-c", code, version], capture_output=True, text=True, cwd="/",
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["labels"]) == 2 and set(result["labels"]) <= {"fresh", "rotten"}
    assert all(abs(s - 1.0) < 1e-4 for s in result["sums"])


def test_entrypoint_types_only_untyped_inputs():
    """pipeline/kubeflow/entrypoint.py: the declared type for an input KFP's driver left untyped, nothing else."""
    declared = {"artifacts": {"examples": {"artifactType": {"instanceSchema": "title: tfx.Examples\n"}},
                              "schema": {"artifactType": {"instanceSchema": "title: tfx.Schema\n"}}}}
    executor_input = {"inputs": {"artifacts": {
        "examples": {"artifacts": [{"name": "7", "uri": "/r/e", "type": {"instanceSchema": ""}}]},
        "schema": {"artifacts": [{"name": "8", "uri": "/r/s", "type": {"schemaTitle": "tfx.Schema"}}]}}}}
    for form in ("separate", "joined"):
        invocation = json.dumps(executor_input)
        args = ([entrypoint.INVOCATION, invocation] if form == "separate"
                else [f"{entrypoint.INVOCATION}={invocation}"])
        argv = ["prog", "--executor_class_path", "x.Y", *args, entrypoint.INPUTS_SPEC, json.dumps(declared), "--b=1"]
        out = entrypoint.with_input_types(argv)
        assert len(out) == len(argv) and out[-1] == "--b=1" and out[:3] == argv[:3]
        text = out[4] if form == "separate" else out[3].split("=", 1)[1]
        fixed = json.loads(text)["inputs"]["artifacts"]
        assert fixed["examples"]["artifacts"][0]["type"] == {"instanceSchema": "title: tfx.Examples\n"}
        assert fixed["schema"]["artifacts"][0]["type"] == {"schemaTitle": "tfx.Schema"}  # typed: kept
    assert entrypoint.with_input_types(["prog", "--executor_class_path", "x.Y"]) == ["prog", "--executor_class_path",
                                                                                      "x.Y"]
