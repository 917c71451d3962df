"""The compiled Kubeflow spec, executed run after run as a recurring run on open-source Kubeflow Pipelines would:
`run_kubeflow.py compile --warm-start` as a user runs it, then every task of the spec run the way KFP's v2 driver and
launcher run it (tests/support/kfp_local.py), which first checks the spec against the open-source backend's rules
(tests/support/kfp_rules.py: a resolver task, for one, is refused) and keeps its metadata store and task cache from one
run to the next (kfp_local.Server, with the backend's cache key).

Three runs on one pipeline root and one serving folder, each with its own run id, the data root's file replaced
before each (new data arriving where the recurring run reads):
- run-1, span-1: nothing in service yet; trains, is blessed and pushes version A;
- run-2, a span whose labels drifted (95% one class): refused by the drift gate against run-1's accepted statistics;
  nothing downstream runs, version A stays in service byte for byte, and no baseline is published;
- run-3, a good span-3, with `--param learning_rate=1e-9` (its weights after training are its initial weights to
  within 1e-6): warm-starts from version A, is evaluated against version A, and pushes version B, whose weights are
  A's. Drift is measured against run-1's statistics, never run-2's refused ones.
The local runner goes through the same scenario in tests/e2e/test_bad_inputs.py (the `served` run, a drifted span, the
`accepted` warm-started run), with the same outcomes asserted there.

The spec is compiled with this machine's paths (what the pods would see) and, in place of the packaged checkpoint
(the image's /pipeline/data is not here), a tiny random one written by the test, given as --pretrained PATH: its
vocabulary is fixed, as warm-starting needs (a vocabulary learned anew from each run's data would give the served
embeddings other tokens, which the Trainer refuses). Each container task runs its own command and arguments
from the spec's deploymentSpec in a process of its own (forked from a server that has imported TensorFlow, TFX and
Beam once; KFP_LOCAL_FRESH_INTERPRETERS=1: fresh interpreters), with this checkout on PYTHONPATH in place of the
image's /pipeline and an empty BERT_TFX_DATA_DIR; the runs' parameters are what `run --param train_steps=3` sends.

What this does not reproduce, and so does not prove:
- ExampleGen's `preCacheCheck` hook (TFX's span/fingerprint driver) is not run: open-source KFP ignores lifecycle
  hooks. So the data root holds plain CSV files; `--spans` on Kubeflow is compiled and checked against the rules,
  not executed.
- Retries, pod resources and the KFP UI's artifact views are not modelled; the pipeline root is a local folder, as
  a volume mounted in every pod would be (the launcher's object-store steps, with an s3:// root, are
  tests/integration/test_kubeflow_on_s3.py's).
- The image itself (tensorflow/tfx:1.16.0 with this project's code): the steps run with this checkout's virtualenv,
  whose TFX, TensorFlow and tensorflow-text versions are the image's by the pins tests/integration/test_k8s.py checks.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

import copy
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.dag import nodes
from pipeline.kubeflow import compiler, entrypoint, parameters
from support import kfp_local
from support.kubeflow import compiled_here
from support.retraining import LABEL, TEXT, rows, snapshot, write_csv

pytestmark = pytest.mark.slow  # the whole pipeline, task by task, three times: minutes

IMAGE = "registry.example.com/ml/bert-tfx-pipeline:1.2.3"
MODEL_NAME = "bert_classifier"
# The quick settings of support's QUICK_ARGS, on support/retraining.py's reviews, in fewer steps, from a tiny
# checkpoint (support.kubeflow.compiled_here).
COMPILE_ARGS = ["--image", IMAGE, "--dataset", "custom", "--labels", "fresh,rotten", "--text-column", TEXT,
                "--label-column", LABEL, "--max-seq-length", "32", "--batch-size", "16", "--epochs", "1",
                "--train-steps", "5", "--learning-rate", "2e-3", "--min-accuracy", "0.0", "--min-macro-f1", "0.0",
                "--warm-start"]
RUN_PARAMS = ["train_steps=3"]  # `run_kubeflow.py run --param train_steps=3`
SPANS = {"run-1": dict(seed=0), "run-2": dict(seed=8, fresh_share=0.95), "run-3": dict(seed=3)}
EXTRA_PARAMS = {"run-3": ["learning_rate=1e-9"]}


def served_versions(serving: Path):
    base = serving / MODEL_NAME
    return sorted(p.name for p in base.iterdir() if p.name.isdigit()) if base.is_dir() else []


def baseline_versions(root: Path, gate: str):
    base = root / "baselines" / gate
    return sorted(p.name for p in base.iterdir() if p.name.isdigit()) if base.is_dir() else []


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    base = tmp_path_factory.mktemp("kfp_retraining")
    here = compiled_here(base, *COMPILE_ARGS)
    data, root, serving, spec_path, job, pod_env = (here.data, here.root, here.serving, here.spec_path, here.job,
                                                    here.pod_env)
    server = kfp_local.Server()
    runs, after = {}, {}
    for run_id, span in SPANS.items():
        shutil.rmtree(data, ignore_errors=True)
        write_csv(data / "reviews.csv", rows(300, **span))
        values = parameters.resolve_parameters(job["pipelineSpec"], RUN_PARAMS + EXTRA_PARAMS.get(run_id, []))
        started = time.monotonic()
        runs[run_id] = kfp_local.execute_spec(spec_path, root, pod_env, parameter_values=values, run_id=run_id,
                                              server=server, timeout=900)
        print(f"\n{run_id}: {len(runs[run_id])} tasks in {time.monotonic() - started:.0f} s: "
              + ", ".join(f"{r.name} {r.status} {r.seconds:.0f}s" for r in runs[run_id].values()))
        after[run_id] = SimpleNamespace(serving=snapshot(serving), versions=served_versions(serving),
                                        data_baselines=baseline_versions(root, nodes.DATA_GATE),
                                        text_baselines=baseline_versions(root, nodes.TEXT_GATE))
    return SimpleNamespace(job=job, spec=job["pipelineSpec"], runs=runs, after=after, root=root, serving=serving,
                           data=data, server=server, pod_env=pod_env, base=base)


def failures(results, allowed=()):
    return "\n".join(f"{r.name}: {r.status} (exit {r.returncode})\n{r.log_tail()}" for r in results.values()
                     if r.status not in kfp_local.DONE and r.name not in allowed)


def artifact(results, task, key):
    return results[task].artifacts[key][0]


def lookup_record(results, key):
    return json.loads((Path(artifact(results, nodes.BASELINE_LOOKUP, key)["uri"]) / "baseline.json").read_text())


# run-1: the first run, as the earlier single-run checks ---------------------------------------------------------

def test_every_task_of_the_spec_ran_its_own_command_with_exit_0(scenario):
    tasks = scenario.spec["root"]["dag"]["tasks"]
    results = scenario.runs["run-1"]
    assert not failures(results), failures(results)
    assert list(results) == kfp_local.dag_order(tasks) and set(results) == set(tasks)
    executors = scenario.spec["deploymentSpec"]["executors"]
    for name, task in tasks.items():
        executor = executors[scenario.spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        result = results[name]
        assert result.status == "SUCCEEDED", name
        container = executor["container"]
        assert result.kind == "container" and result.returncode == 0, name
        assert container["command"] == compiler.ENTRYPOINT, name
        assert result.command[1:3] == container["command"][1:3] and result.command[0] == sys.executable, name
        assert len(result.command) == len(container["command"]) + len(container["args"]), name
        assert result.executor_output is not None, f"{name} wrote no executor output"
        # The driver's own executor-logs output was there, and the launcher uploaded the task's log into it.
        assert kfp_local.LOGS_OUTPUT in result.executor_input["outputs"]["artifacts"], name
        assert Path(result.artifacts[kfp_local.LOGS_OUTPUT][0]["uri"]).is_file(), name
    assert {nodes.EXAMPLE_GEN, nodes.BASELINE_LOOKUP, nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER,
            nodes.RUN_REPORT, nodes.SCHEMA_CURATOR, nodes.SCHEMA_FREEZER} <= set(results)


def test_inputs_were_upstream_outputs_as_kfp_hands_them_over(scenario):
    """Downstream tasks got the upstream artifact at its URI with the metadata its executor reported (the splits),
    untyped as KFP's driver leaves it; runtime parameters came from the run, constants from the spec."""
    results = scenario.runs["run-1"]
    examples = results[nodes.EXAMPLE_GEN].artifacts["examples"][0]
    assert json.loads(examples["metadata"]["split_names"]) == ["train", "eval", "test"]
    given = results[nodes.STATISTICS_GEN].executor_input["inputs"]["artifacts"]["examples"]["artifacts"]
    assert len(given) == 1 and given[0]["uri"] == examples["uri"] and given[0]["name"].isdigit()
    assert given[0]["metadata"]["split_names"] == examples["metadata"]["split_names"]
    assert given[0]["type"] == {"instanceSchema": ""}
    trainer = results[nodes.TRAINER].executor_input["inputs"]["parameterValues"]
    assert json.loads(trainer["train_args"]) == {"splits": ["train"], "num_steps": 3}
    assert trainer["run_fn"] == "components.modules.trainer.run_fn"
    assert results[nodes.EXAMPLE_GEN].executor_input["inputs"]["parameterValues"]["input_base"] == str(scenario.data)


def test_the_run_trained_with_its_runtime_parameters(scenario):
    model = Path(scenario.runs["run-1"][nodes.TRAINER].artifacts["model"][0]["uri"])
    history = json.loads((model / "training_history.json").read_text())
    assert history["total_steps"] == 3  # the run's train_steps, not the compiled 5
    assert history["settings"]["batch_size"] == 16 and history["settings"]["pretrained_dir"].endswith("/tiny")


def test_the_pusher_pushed_a_saved_model_in_tf_servings_layout(scenario):
    blessing = scenario.runs["run-1"][nodes.EVALUATOR].artifacts["blessing"][0]["metadata"]
    assert blessing["blessed"] == 1
    assert scenario.runs["run-1"][nodes.SERVING_CHECK].artifacts["blessing"][0]["metadata"]["blessed"] == 1
    pushed = scenario.runs["run-1"][nodes.PUSHER].artifacts["pushed_model"][0]["metadata"]
    assert pushed["pushed"] == 1
    versions = [scenario.serving / MODEL_NAME / v for v in scenario.after["run-1"].versions]
    assert [v.name for v in versions] == [pushed["pushed_version"]] and versions[0].name.isdigit()
    assert pushed["pushed_destination"] == str(versions[0])
    assert (versions[0] / "saved_model.pb").is_file() and (versions[0] / "variables").is_dir()
    assert (versions[0] / "assets.extra" / "model_card.json").is_file()  # the ModelCardWriter's model was pushed
    # The schema the run was checked with, frozen under the pipeline root for the next runs, and the run report.
    assert (scenario.root / "schema" / "schema.pbtxt").is_file()
    report = Path(scenario.runs["run-1"][nodes.RUN_REPORT].artifacts["report"][0]["uri"]) / "report.html"
    assert report.is_file() and "<html" in report.read_text()[:2000].lower()


def test_pushed_model_answers_serving_default_in_a_fresh_process(scenario):
    version = scenario.runs["run-1"][nodes.PUSHER].artifacts["pushed_model"][0]["metadata"]["pushed_destination"]
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
    # The outputs the open-source driver adds for itself are removed before TFX parses the ExecutorInput.
    with_logs = {"outputs": {"artifacts": {
        "model": {"artifacts": [{"name": "model", "uri": "/r/m", "type": {"instanceSchema": "title: tfx.Model\n"}}]},
        kfp_local.LOGS_OUTPUT: {"artifacts": [{"name": kfp_local.LOGS_OUTPUT, "uri": "/r/l",
                                                "type": {"schemaTitle": "system.Artifact"}}]}}}}
    out = entrypoint.with_input_types(["prog", entrypoint.INVOCATION, json.dumps(with_logs)])
    assert list(json.loads(out[2])["outputs"]["artifacts"]) == ["model"]


# run-2 and run-3: the retraining loop --------------------------------------------------------------------------

def test_a_first_run_compares_with_nothing_and_publishes_what_its_gates_accepted(scenario):
    results, after = scenario.runs["run-1"], scenario.after["run-1"]
    for key in ("model", "data_statistics", "text_statistics"):
        assert lookup_record(results, key)["found"] is False, key
    assert "warm start requested, but no model is in service yet" in results[nodes.TRAINER].log_tail(200_000)
    assert len(after.data_baselines) == 1 and len(after.text_baselines) == 1
    published = json.loads((scenario.root / "baselines" / nodes.DATA_GATE / after.data_baselines[0] /
                            "baseline.json").read_text())
    assert published["produced_by"] == artifact(results, nodes.STATISTICS_GEN, "statistics")["uri"]
    assert "/run-1/" in published["produced_by"]  # the run that produced them, by its run id


def test_drifted_labels_are_refused_against_the_last_accepted_data_and_a_stays_in_service(scenario):
    results = scenario.runs["run-2"]
    gate = results[nodes.DATA_GATE]
    assert gate.status == "FAILED" and gate.returncode != 0
    assert f"feature '{LABEL}' in split 'train'" in gate.log_tail(20_000) and "Linfty" in gate.log_tail(20_000)
    assert not failures(results, allowed={nodes.DATA_GATE} | {n for n, r in results.items() if r.status == "SKIPPED"})
    for task in (nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert results[task].status == "SKIPPED", task
    # The drift baseline was run-1's accepted statistics, found by the lookup (never cached: it ran again).
    assert results[nodes.BASELINE_LOOKUP].status == "SUCCEEDED" and results[nodes.BASELINE_LOOKUP].fingerprint is None
    record = lookup_record(results, "data_statistics")
    assert record["found"] and record["published"]["produced_by"].count("/run-1/") == 1
    drift_input = results[nodes.DRIFT_VALIDATOR].executor_input["inputs"]["artifacts"]["baseline_statistics"]
    assert drift_input["artifacts"][0]["uri"] == artifact(results, nodes.BASELINE_LOOKUP, "data_statistics")["uri"]
    # Version A in service byte for byte, and the refused data published nowhere.
    assert scenario.after["run-2"].serving == scenario.after["run-1"].serving
    assert scenario.after["run-2"].data_baselines == scenario.after["run-1"].data_baselines


def _variables(folder: Path, part: str = "weights") -> dict:
    """The classifier's variables in a SavedModel: its weights, or its optimizer's state ("optimizer")."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
    names = [n for n in reader.get_variable_to_shape_map() if n.startswith("model/")]
    if part == "optimizer":
        return {n: reader.get_tensor(n) for n in names if n.startswith("model/optimizer/")}
    return {n: reader.get_tensor(n) for n in names
            if not n.startswith(("model/optimizer/", "model/keras_api/metrics/"))}


def test_a_good_span_is_compared_with_a_warm_started_from_it_and_pushes_b(scenario):
    import numpy as np

    results = scenario.runs["run-3"]
    assert not failures(results), failures(results)
    version_a = scenario.serving / MODEL_NAME / scenario.after["run-1"].versions[0]
    # The lookup ran again and handed over version A, byte for byte, as the Evaluator's baseline.
    assert results[nodes.BASELINE_LOOKUP].status == "SUCCEEDED"
    assert lookup_record(results, "model")["source"] == str(version_a)
    lookup_model = artifact(results, nodes.BASELINE_LOOKUP, "model")["uri"]
    evaluator_inputs = results[nodes.EVALUATOR].executor_input["inputs"]["artifacts"]
    assert evaluator_inputs["baseline_model"]["artifacts"][0]["uri"] == lookup_model
    assert snapshot(Path(lookup_model) / "Format-Serving") == snapshot(version_a)
    blessing = artifact(results, nodes.EVALUATOR, "blessing")["metadata"]
    assert blessing["blessed"] == 1 and blessing["baseline_model"] == str(version_a)
    # Drift against run-1's accepted statistics (run-2's were refused, so never published).
    assert lookup_record(results, "data_statistics")["published"]["produced_by"].count("/run-1/") == 1
    # The Trainer started from version A: same input, and with a learning rate of 1e-9 its trained weights are its
    # initial weights to within 1e-6; they are A's (three steps at 2e-3 away from any other starting point).
    assert results[nodes.TRAINER].executor_input["inputs"]["artifacts"]["base_model"]["artifacts"][0]["uri"] == \
        lookup_model
    trained = Path(artifact(results, nodes.TRAINER, "model")["uri"])
    history = json.loads((trained / "training_history.json").read_text())
    assert history["started_from"] == str(version_a)
    ours, theirs = _variables(trained / "Format-Serving"), _variables(version_a)
    assert ours.keys() == theirs.keys() and len(ours) > 10
    assert max(float(np.max(np.abs(ours[k] - theirs[k]))) for k in ours) < 1e-6
    # ... and not its optimizer: no exported model carries one (the export saves the weights alone), and the
    # learning-rate schedule counted this run's 3 steps.
    assert _variables(trained / "Format-Serving", "optimizer") == {} == _variables(version_a, "optimizer")
    assert history["total_steps"] == 3
    # Version B pushed beside A, which is kept; B is what TF Serving serves now.
    after = scenario.after["run-3"].versions
    pushed = artifact(results, nodes.PUSHER, "pushed_model")["metadata"]
    assert pushed["pushed"] == 1 and after == [version_a.name, pushed["pushed_version"]]
    assert snapshot(version_a) == {k.split("/", 2)[2]: v for k, v in scenario.after["run-1"].serving.items()}
    assert len(scenario.after["run-3"].data_baselines) == 2


def test_the_backend_cache_would_answer_a_cached_lookup_with_the_old_model(scenario, tmp_path):
    """The lookup alone, run twice through the harness with a new version pushed in between: with the backend's
    cache on for it (what TFX compiles by default), the second run is answered from the cache with version A's
    copy; as compiled (caching off for it), it runs and finds the new version."""
    spec = copy.deepcopy(scenario.spec)
    spec["root"]["dag"]["tasks"] = {nodes.BASELINE_LOOKUP: spec["root"]["dag"]["tasks"][nodes.BASELINE_LOOKUP]}
    serving = tmp_path / "serving" / MODEL_NAME
    shutil.copytree(scenario.serving / MODEL_NAME / scenario.after["run-1"].versions[0], serving / "1700000000")
    lookup = spec["root"]["dag"]["tasks"][nodes.BASELINE_LOOKUP]
    lookup["inputs"]["parameters"]["serving_base"]["runtimeValue"]["constant"] = str(serving)
    cached = copy.deepcopy(spec)
    cached["root"]["dag"]["tasks"][nodes.BASELINE_LOOKUP]["cachingOptions"] = {"enableCache": True}
    found = {}
    for name, variant in (("as compiled", spec), ("cache on", cached)):
        server, root = kfp_local.Server(), tmp_path / name.replace(" ", "-")
        first = kfp_local.execute_spec(variant, root, scenario.pod_env, run_id="one", server=server)
        newer = serving / str(1700000000 + len(found) * 100 + 50)
        shutil.copytree(serving / "1700000000", newer)  # pushed between the two runs
        second = kfp_local.execute_spec(variant, root, scenario.pod_env, run_id="two", server=server)
        found[name] = (first[nodes.BASELINE_LOOKUP].status, second[nodes.BASELINE_LOOKUP].status,
                       lookup_record(second, "model")["source"], str(newer))
    status_1, status_2, source, newest = found["as compiled"]
    assert (status_1, status_2, source) == ("SUCCEEDED", "SUCCEEDED", newest)
    status_1, status_2, source, newest = found["cache on"]
    assert (status_1, status_2) == ("SUCCEEDED", "CACHED") and source != newest


def test_the_cache_key_is_the_backends():
    """cacheutils/cache.go: store ids of the inputs, resolved parameters, output specs without URIs, raw command."""
    container = {"image": "i", "command": ["python", "-m", "x"], "args": ["{{$}}"]}
    out = {"name": "out", "uri": "/run-1/t/out", "type": {"schemaTitle": "t"}}
    outputs = {"artifacts": {"out": {"artifacts": [out]}}, "parameters": {}, "outputFile": "/run-1/t/meta.json"}

    def key(artifact_id="7", value="a", uri="/run-1/t/out", command=("python", "-m", "x")):
        given = {"inputs": {"parameterValues": {"p": value},
                            "artifacts": {"in": {"artifacts": [{"name": artifact_id, "uri": "/u"}]}}},
                 "outputs": copy.deepcopy(outputs)}
        given["outputs"]["artifacts"]["out"]["artifacts"][0]["uri"] = uri
        return kfp_local.cache_fingerprint(given, {}, {**container, "command": list(command)})

    assert key() == key(uri="/run-2/t/out")  # a new run's output folder does not change it
    assert len({key(), key(artifact_id="8"), key(value="b"), key(command=("python", "-m", "y"))}) == 4
