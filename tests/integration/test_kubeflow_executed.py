"""The compiled Kubeflow spec, executed run after run as a recurring run on open-source Kubeflow Pipelines would:
`run_kubeflow.py compile --warm-start` as a user runs it, then every task of the spec run the way KFP's v2 driver and
launcher run it (tests/support/kfp_local.py), which first checks the spec and its platform spec against the
open-source backend's rules (tests/support/kfp_rules.py: a resolver task, for one, is refused) and keeps its metadata
store and task cache from one run to the next (kfp_local.Server, with the backend's cache key).

Everything is on an S3 server on 127.0.0.1 (moto's, support/s3_server.py), as on a stock open-source install: the
pipeline root, the serving folder and the data root. The pods get the store's endpoint from the spec's container env
and its keys from the secret the platform spec names (secretAsEnv), nothing from this process's environment; KFP's
launcher gets the store from the kfp-launcher ConfigMap of docs/kubeflow.md, as an administrator applies it, and its
own secret (support/kfp_storage.py): a spec that reached the store only because its pods were handed the endpoint
fails there (tests/integration/test_kubeflow_launcher.py).

Three runs on one pipeline root and one serving folder, each with its own run id, the data root's file replaced
before each (new data arriving where the recurring run reads):
- run-1, span-1: nothing in service yet; trains, is blessed and pushes version A;
- run-2, a span whose labels drifted (95% one class): refused by the drift gate against run-1's accepted statistics;
  nothing downstream runs, version A stays in service byte for byte, and no baseline is published;
- run-3, a good span-3, with `--param learning_rate=1e-9` (its weights after training are its initial weights to
  within 1e-6): warm-starts from version A, is evaluated against version A, and pushes version B, whose weights are
  A's. Drift is measured against run-1's statistics, never run-2's refused ones.
The local runner goes through the same scenario in tests/e2e/test_bad_inputs.py (the `served` run, a drifted span, the
`accepted` warm-started run), with the same outcomes asserted there. On the store, every TFX step writes straight to
its s3:// URI, so the launcher uploads nothing of theirs (and overwrites nothing): the skip is what makes TFX and the
launcher agree.

The Distiller (`--student-layers`, which excludes `--warm-start`) runs once more on its own: the Distiller task of a
spec compiled with `--student-layers 1`, its inputs imported from run-1's Transform, SchemaCurator and Trainer (an
importer task each, as KFP's importer publishes an artifact), so the step's own command is executed the KFP way
without a fourth whole pipeline.

The spec is compiled with, in place of the packaged checkpoint (the image's /pipeline/data is not here), a tiny random
one written by the test, given as --pretrained PATH: its vocabulary is fixed, as warm-starting needs (a vocabulary
learned anew from each run's data would give the served embeddings other tokens, which the Trainer refuses). Each
container task runs its own command and arguments from the spec's deploymentSpec in a process of its own (forked from
a server that has imported TensorFlow, TFX and Beam once; KFP_LOCAL_FRESH_INTERPRETERS=1: fresh interpreters), with
this checkout on PYTHONPATH in place of the image's /pipeline and an empty BERT_TFX_DATA_DIR; the runs' parameters
are what `run --param train_steps=3` sends.

What this does not reproduce, and so does not prove:
- ExampleGen's `preCacheCheck` hook (TFX's span/fingerprint driver) is not run: open-source KFP ignores lifecycle
  hooks. So the data root holds plain CSV files; `--spans` on Kubeflow is compiled and checked against the rules,
  not executed.
- Retries, pod resources and the KFP UI's artifact views are not modelled; SeaweedFS and MinIO themselves are not
  here (moto stands in for them).
- The image itself (tensorflow/tfx:1.16.0 with this project's code): the steps run with this checkout's virtualenv,
  whose TFX, TensorFlow and tensorflow-text versions are the image's by the pins tests/integration/test_k8s.py checks.
"""

import copy
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.dag import nodes
from pipeline.kubeflow import compiler, entrypoint, parameters
from support import kfp_local
from support.fresh_process import layers_and_labels
from support.kubeflow import SECRETS, compiled_here, documented_launcher_config, process_state_kept
from support.retraining import LABEL, TEXT, rows, write_csv

pytestmark = pytest.mark.slow  # the whole pipeline, task by task, three times: minutes

IMAGE = "registry.example.com/ml/bert-tfx-pipeline:1.2.3"
MODEL_NAME = "bert_classifier"
BUCKET = "kfp-retraining"
# The quick settings of support's QUICK_ARGS, on support/retraining.py's reviews, in fewer steps, from a tiny
# checkpoint (support.kubeflow.compiled_here).
MODEL_ARGS = ["--image", IMAGE, "--dataset", "custom", "--labels", "fresh,rotten", "--text-column", TEXT,
              "--label-column", LABEL, "--max-seq-length", "32", "--batch-size", "16", "--epochs", "1",
              "--train-steps", "5", "--learning-rate", "2e-3", "--min-accuracy", "0.0", "--min-macro-f1", "0.0"]
COMPILE_ARGS = [*MODEL_ARGS, "--warm-start"]
STUDENT_ARGS = [*MODEL_ARGS, "--student-layers", "1", "--distill-epochs", "1"]
RUN_PARAMS = ["train_steps=3"]  # `run_kubeflow.py run --param train_steps=3`
SPANS = {"run-1": dict(seed=0), "run-2": dict(seed=8, fresh_share=0.95), "run-3": dict(seed=3)}
EXTRA_PARAMS = {"run-3": ["learning_rate=1e-9"]}


class Store:
    """The tests' S3 server, read by URI."""

    def __init__(self, server):
        self.server, self.client = server, server.client()

    @staticmethod
    def key(uri: str) -> str:
        prefix = f"s3://{BUCKET}/"
        assert uri.startswith(prefix), uri
        return uri[len(prefix):]

    def keys(self, uri: str):
        return self.server.keys(BUCKET, self.key(uri).rstrip("/") + "/")

    def read(self, uri: str) -> bytes:
        return self.server.read(BUCKET, self.key(uri))

    def json(self, uri: str):
        return json.loads(self.read(uri))

    def snapshot(self, uri: str) -> dict:
        """Relative key -> sha256 of every object under uri: the model in service, byte for byte."""
        base = self.key(uri).rstrip("/") + "/"
        return {k[len(base):]: hashlib.sha256(self.server.read(BUCKET, k)).hexdigest() for k in self.keys(uri)}

    def versions(self, uri: str):
        base = self.key(uri).rstrip("/") + "/"
        return sorted({k[len(base):].split("/", 1)[0] for k in self.keys(uri)} - {""}, key=str)

    def download(self, uri: str, folder: Path) -> Path:
        base = self.key(uri).rstrip("/") + "/"
        for key in self.keys(uri):
            target = folder / key[len(base):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.server.read(BUCKET, key))
        return folder

    def replace(self, uri: str, name: str, data) -> None:
        """The data root holds this file alone (new data arriving where the recurring run reads)."""
        for key in self.keys(uri):
            self.client.delete_object(Bucket=BUCKET, Key=key)
        local = write_csv(Path(f"/tmp/{BUCKET}-{os.getpid()}-{name}"), data)
        self.client.upload_file(str(local), BUCKET, f"{self.key(uri)}/{name}")
        local.unlink()


def digits(names):
    return sorted(n for n in names if n.isdigit())


@pytest.fixture(scope="module")
def scenario(s3_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("kfp_retraining")
    s3_server.bucket(BUCKET)
    store = Store(s3_server)
    here = compiled_here(base, BUCKET, s3_server.endpoint, *COMPILE_ARGS)
    launcher = documented_launcher_config(s3_server.endpoint.split("://", 1)[1])
    server = kfp_local.Server()
    runs, after = {}, {}
    for run_id, span in SPANS.items():
        store.replace(here.data, "reviews.csv", rows(300, **span))
        values = parameters.resolve_parameters(here.job["pipelineSpec"], RUN_PARAMS + EXTRA_PARAMS.get(run_id, []))
        started = time.monotonic()
        runs[run_id] = kfp_local.execute_spec(here.spec_path, here.root, here.pod_env, launcher=launcher,
                                              secrets=SECRETS, parameter_values=values, run_id=run_id, server=server,
                                              scratch_root=base / "pods", timeout=900)
        print(f"\n{run_id}: {len(runs[run_id])} tasks in {time.monotonic() - started:.0f} s: "
              + ", ".join(f"{r.name} {r.status} {r.seconds:.0f}s" for r in runs[run_id].values()))
        serving = f"{here.serving}/{MODEL_NAME}"
        after[run_id] = SimpleNamespace(serving=store.snapshot(here.serving), versions=digits(store.versions(serving)),
                                        data_baselines=digits(store.versions(f"{here.root}/baselines/"
                                                                             f"{nodes.DATA_GATE}")),
                                        text_baselines=digits(store.versions(f"{here.root}/baselines/"
                                                                             f"{nodes.TEXT_GATE}")),
                                        history=store.keys(f"{here.root}/history"))
    return SimpleNamespace(job=here.job, spec=here.job["pipelineSpec"], runs=runs, after=after, root=here.root,
                           serving=here.serving, data=here.data, server=server, pod_env=here.pod_env, base=base,
                           store=store, launcher=launcher, checkpoint=here.checkpoint)


def failures(results, allowed=()):
    return "\n".join(f"{r.name}: {r.status} (exit {r.returncode}) {r.launcher_error or ''}\n{r.log_tail()}"
                     for r in results.values() if r.status not in kfp_local.DONE and r.name not in allowed)


def artifact(results, task, key):
    return results[task].artifacts[key][0]


def lookup_record(scenario, results, key):
    return scenario.store.json(artifact(results, nodes.BASELINE_LOOKUP, key)["uri"] + "/baseline.json")


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
        assert scenario.store.read(result.artifacts[kfp_local.LOGS_OUTPUT][0]["uri"]), name
        # TFX wrote every output straight to its s3:// URI: the launcher had no local file to upload.
        assert set(result.uploads.values()) <= {"skipped: local path does not exist"}, (name, result.uploads)
        for key, listing in result.artifacts.items():
            assert listing[0]["uri"].startswith(f"{scenario.root}/bert-text-classifier/run-1/{name}/"), (name, key)
    assert results[nodes.TRAINER].downloaded  # the launcher copied the Trainer's inputs to the pod's disk
    assert {nodes.EXAMPLE_GEN, nodes.BASELINE_LOOKUP, nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER,
            nodes.RUN_REPORT, nodes.SCHEMA_CURATOR, nodes.SCHEMA_FREEZER} <= set(results)


def test_inputs_were_upstream_outputs_as_kfp_hands_them_over(scenario):
    """Downstream tasks got the upstream artifact at its URI with the metadata its executor reported (the splits),
    untyped as KFP's driver leaves it, with the run's store session; runtime parameters came from the run,
    constants from the spec."""
    results = scenario.runs["run-1"]
    examples = results[nodes.EXAMPLE_GEN].artifacts["examples"][0]
    assert json.loads(examples["metadata"]["split_names"]) == ["train", "eval", "test"]
    given = results[nodes.STATISTICS_GEN].executor_input["inputs"]["artifacts"]["examples"]["artifacts"]
    assert len(given) == 1 and given[0]["uri"] == examples["uri"] and given[0]["name"].isdigit()
    assert given[0]["metadata"]["split_names"] == examples["metadata"]["split_names"]
    assert given[0]["type"] == {"instanceSchema": ""}
    session = json.loads(given[0]["metadata"]["store_session_info"])
    assert session["Provider"] == "s3" and session["Params"]["secretName"] == "mlpipeline-minio-artifact"
    trainer = results[nodes.TRAINER].executor_input["inputs"]["parameterValues"]
    assert json.loads(trainer["train_args"]) == {"splits": ["train"], "num_steps": 3}
    assert trainer["run_fn"] == "components.module_files.trainer.run_fn"
    assert results[nodes.EXAMPLE_GEN].executor_input["inputs"]["parameterValues"]["input_base"] == scenario.data


def test_the_run_trained_with_its_runtime_parameters(scenario):
    model = scenario.runs["run-1"][nodes.TRAINER].artifacts["model"][0]["uri"]
    history = scenario.store.json(f"{model}/training_history.json")
    assert history["total_steps"] == 3  # the run's train_steps, not the compiled 5
    assert history["settings"]["batch_size"] == 16 and history["settings"]["pretrained_dir"].endswith("/tiny")


def test_the_pusher_pushed_a_saved_model_in_tf_servings_layout(scenario):
    store = scenario.store
    blessing = scenario.runs["run-1"][nodes.EVALUATOR].artifacts["blessing"][0]["metadata"]
    assert blessing["blessed"] == 1
    assert scenario.runs["run-1"][nodes.SERVING_CHECK].artifacts["blessing"][0]["metadata"]["blessed"] == 1
    pushed = scenario.runs["run-1"][nodes.PUSHER].artifacts["pushed_model"][0]["metadata"]
    assert pushed["pushed"] == 1
    assert scenario.after["run-1"].versions == [pushed["pushed_version"]]
    version = f"{scenario.serving}/{MODEL_NAME}/{pushed['pushed_version']}"
    assert pushed["pushed_destination"] == version
    files = {k.split(f"/{pushed['pushed_version']}/", 1)[1] for k in store.keys(version)}
    assert {"saved_model.pb", "assets.extra/model_card.json"} <= files  # the ModelCardWriter's model was pushed
    assert any(f.startswith("variables/") for f in files)
    # The schema the run was checked with, frozen under the pipeline root for the next runs, and the run report.
    assert store.read(f"{scenario.root}/schema/schema.pbtxt")
    report = scenario.runs["run-1"][nodes.RUN_REPORT].artifacts["report"][0]["uri"] + "/report.html"
    assert "<html" in store.read(report)[:2000].decode().lower()


def test_pushed_model_answers_serving_default_in_a_fresh_process(scenario, tmp_path):
    version = scenario.runs["run-1"][nodes.PUSHER].artifacts["pushed_model"][0]["metadata"]["pushed_destination"]
    local = scenario.store.download(version, tmp_path / "version")  # serving from the store: tests/e2e's
    code = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "out = m.signatures['serving_default'](text=tf.constant(['a wonderful, moving film', 'dull and bland']))\n"
        "print(json.dumps({'labels': [l.decode() for l in out['label'].numpy()],"
        " 'sums': [float(s) for s in tf.reduce_sum(out['probabilities'], -1).numpy()]}))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(local)], capture_output=True, text=True, cwd="/",
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
        assert lookup_record(scenario, results, key)["found"] is False, key
    assert "warm start requested, but no model is in service yet" in results[nodes.TRAINER].log_tail(200_000)
    assert len(after.data_baselines) == 1 and len(after.text_baselines) == 1
    published = scenario.store.json(f"{scenario.root}/baselines/{nodes.DATA_GATE}/{after.data_baselines[0]}/"
                                    "baseline.json")
    assert published["produced_by"] == artifact(results, nodes.STATISTICS_GEN, "statistics")["uri"]
    assert "/run-1/" in published["produced_by"]  # the run that produced them, by its run id


def test_drifted_labels_are_refused_against_the_last_accepted_data_and_a_stays_in_service(scenario):
    results = scenario.runs["run-2"]
    gate = results[nodes.DATA_GATE]
    assert gate.status == "FAILED" and gate.returncode not in (0, None)
    assert f"feature '{LABEL}' in split 'train'" in gate.log_tail(20_000) and "Linfty" in gate.log_tail(20_000)
    assert not failures(results, allowed={nodes.DATA_GATE} | {n for n, r in results.items() if r.status == "SKIPPED"})
    for task in (nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert results[task].status == "SKIPPED", task
    # The drift baseline was run-1's accepted statistics, found by the lookup (never cached: it ran again).
    assert results[nodes.BASELINE_LOOKUP].status == "SUCCEEDED" and results[nodes.BASELINE_LOOKUP].fingerprint is None
    record = lookup_record(scenario, results, "data_statistics")
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


def test_a_good_span_is_compared_with_a_warm_started_from_it_and_pushes_b(scenario, tmp_path):
    import numpy as np

    store, results = scenario.store, scenario.runs["run-3"]
    assert not failures(results), failures(results)
    version_a = f"{scenario.serving}/{MODEL_NAME}/{scenario.after['run-1'].versions[0]}"
    # The lookup ran again and handed over version A, byte for byte, as the Evaluator's baseline.
    assert results[nodes.BASELINE_LOOKUP].status == "SUCCEEDED"
    assert lookup_record(scenario, results, "model")["source"] == version_a
    lookup_model = artifact(results, nodes.BASELINE_LOOKUP, "model")["uri"]
    evaluator_inputs = results[nodes.EVALUATOR].executor_input["inputs"]["artifacts"]
    assert evaluator_inputs["baseline_model"]["artifacts"][0]["uri"] == lookup_model
    assert store.snapshot(f"{lookup_model}/Format-Serving") == store.snapshot(version_a)
    blessing = artifact(results, nodes.EVALUATOR, "blessing")["metadata"]
    assert blessing["blessed"] == 1 and blessing["baseline_model"] == version_a
    # Drift against run-1's accepted statistics (run-2's were refused, so never published).
    assert lookup_record(scenario, results, "data_statistics")["published"]["produced_by"].count("/run-1/") == 1
    # The Trainer started from version A: same input, and with a learning rate of 1e-9 its trained weights are its
    # initial weights to within 1e-6; they are A's (three steps at 2e-3 away from any other starting point).
    assert results[nodes.TRAINER].executor_input["inputs"]["artifacts"]["base_model"]["artifacts"][0]["uri"] == \
        lookup_model
    trained = artifact(results, nodes.TRAINER, "model")["uri"]
    history = store.json(f"{trained}/training_history.json")
    assert history["started_from"] == version_a
    ours = store.download(f"{trained}/Format-Serving", tmp_path / "trained")
    theirs = store.download(version_a, tmp_path / "version_a")
    weights, a_weights = _variables(ours), _variables(theirs)
    assert weights.keys() == a_weights.keys() and len(weights) > 10
    assert max(float(np.max(np.abs(weights[k] - a_weights[k]))) for k in weights) < 1e-6
    # ... and not its optimizer: no exported model carries one (the export saves the weights alone), and the
    # learning-rate schedule counted this run's 3 steps.
    assert _variables(ours, "optimizer") == {} == _variables(theirs, "optimizer")
    assert history["total_steps"] == 3
    # Version B pushed beside A, which is kept; B is what TF Serving serves now.
    after = scenario.after["run-3"].versions
    pushed = artifact(results, nodes.PUSHER, "pushed_model")["metadata"]
    assert pushed["pushed"] == 1 and after == [scenario.after["run-1"].versions[0], pushed["pushed_version"]]
    prefix = f"{MODEL_NAME}/{scenario.after['run-1'].versions[0]}/"
    assert store.snapshot(version_a) == {k[len(prefix):]: v for k, v in scenario.after["run-1"].serving.items()
                                         if k.startswith(prefix)}
    assert len(scenario.after["run-3"].data_baselines) == 2


def test_each_run_that_reached_the_run_report_left_one_record_in_the_run_history(scenario):
    """The RunReport step appends the run's record under the pipeline root (components/release/run_history.py): run-1
    and run-3 reached it; run-2, stopped by the data gate, did not."""
    after = scenario.after
    assert len(after["run-1"].history) == 1 and after["run-2"].history == after["run-1"].history
    assert len(after["run-3"].history) == 2 and after["run-3"].history[0] == after["run-1"].history[0]
    first, third = (scenario.store.json(f"s3://{BUCKET}/{key}") for key in after["run-3"].history)
    version_a, version_b = after["run-3"].versions
    assert first["pushed"] and first["versions"]["pushed"] == version_a and first["trained"]
    assert third["versions"] == {"pushed": version_b, "in_service": version_a,
                                 "model_uri": artifact(scenario.runs["run-3"], nodes.TRAINER, "model")["uri"]}
    assert third["trained"] and third["drift"]["label_l_infinity"] is not None


def test_the_backend_cache_would_answer_a_cached_lookup_with_the_old_model(scenario):
    """The lookup alone, run twice through the harness with a new version pushed in between: with the backend's
    cache on for it (what TFX compiles by default), the second run is answered from the cache with version A's
    copy; as compiled (caching off for it), it runs and finds the new version."""
    store = scenario.store
    spec = copy.deepcopy(scenario.spec)
    spec["root"]["dag"]["tasks"] = {nodes.BASELINE_LOOKUP: spec["root"]["dag"]["tasks"][nodes.BASELINE_LOOKUP]}
    version_a = f"{scenario.serving}/{MODEL_NAME}/{scenario.after['run-1'].versions[0]}"
    found = {}
    for name in ("as compiled", "cache on"):
        variant = copy.deepcopy(spec)
        lookup = variant["root"]["dag"]["tasks"][nodes.BASELINE_LOOKUP]
        serving = f"s3://{BUCKET}/cache-check/{name.replace(' ', '-')}/{MODEL_NAME}"
        lookup["inputs"]["parameters"]["serving_base"]["runtimeValue"]["constant"] = serving
        if name == "cache on":
            lookup["cachingOptions"] = {"enableCache": True}
        copy_version(store, version_a, f"{serving}/1700000000")
        server, root = kfp_local.Server(), f"s3://{BUCKET}/cache-check/{name.replace(' ', '-')}/root"
        run = dict(launcher=scenario.launcher, secrets=SECRETS, server=server,
                   scratch_root=scenario.base / "cache-pods" / name.replace(" ", "-"))
        job = {"pipelineSpec": variant, "platformSpec": scenario.job["platformSpec"]}  # the pods' keys
        first = kfp_local.execute_spec(job, root, scenario.pod_env, run_id="one", **run)
        newer = f"{serving}/1700000050"
        copy_version(store, version_a, newer)  # pushed between the two runs
        second = kfp_local.execute_spec(job, root, scenario.pod_env, run_id="two", **run)
        found[name] = (first[nodes.BASELINE_LOOKUP].status, second[nodes.BASELINE_LOOKUP].status,
                       lookup_record(scenario, second, "model")["source"], newer)
    status_1, status_2, source, newest = found["as compiled"]
    assert (status_1, status_2, source) == ("SUCCEEDED", "SUCCEEDED", newest)
    status_1, status_2, source, newest = found["cache on"]
    assert (status_1, status_2) == ("SUCCEEDED", "CACHED") and source != newest


def copy_version(store, source: str, target: str) -> None:
    source_key, target_key = store.key(source), store.key(target)
    for key in store.keys(source):
        store.client.copy_object(Bucket=BUCKET, Key=target_key + key[len(source_key):],
                                 CopySource={"Bucket": BUCKET, "Key": key})


# the Distiller, on run-1's artifacts ----------------------------------------------------------------------------

def distiller_alone(student: dict, run: dict) -> dict:
    """The student spec's Distiller task alone, each input artifact imported from `run`'s producer of it (its URI
    and metadata) by an importer task of the input's declared type."""
    spec = copy.deepcopy(student)
    distiller = spec["root"]["dag"]["tasks"][nodes.DISTILLER]
    declared = spec["components"][distiller["componentRef"]["name"]]["inputDefinitions"]["artifacts"]
    tasks = {}
    for key, source in distiller["inputs"]["artifacts"].items():
        producer = source["taskOutputArtifact"]
        given = run[producer["producerTask"]].artifacts[producer["outputArtifactKey"]][0]
        name = f"import-{key.replace('_', '-')}"
        spec["components"][f"comp-{name}"] = {"executorLabel": f"exec-{name}", "outputDefinitions": {
            "artifacts": {"artifact": {"artifactType": declared[key]["artifactType"]}}}}
        spec["deploymentSpec"]["executors"][f"exec-{name}"] = {"importer": {
            "artifactUri": {"constant": given["uri"]}, "typeSchema": declared[key]["artifactType"],
            "metadata": given.get("metadata", {})}}
        tasks[name] = {"taskInfo": {"name": name}, "componentRef": {"name": f"comp-{name}"}}
        source["taskOutputArtifact"] = {"producerTask": name, "outputArtifactKey": "artifact"}
    distiller["dependentTasks"] = sorted(tasks)
    spec["root"]["dag"]["tasks"] = {**tasks, nodes.DISTILLER: distiller}
    return spec


@pytest.fixture(scope="module")
def distilled(scenario):
    """The --student-layers 1 spec (compiled in this process), its Distiller run on run-1's Transform, schema and
    Trainer model. Returns (the student spec, the Distiller's results)."""
    from pipeline.kubeflow import cli as kfp_cli

    output = scenario.base / "student.json"
    with process_state_kept():
        assert kfp_cli.main(["compile", *STUDENT_ARGS, "--pretrained", str(scenario.checkpoint), "--data-root",
                             scenario.data, "--pipeline-root", scenario.root, "--serving-dir", scenario.serving,
                             "--s3-endpoint", scenario.store.server.endpoint, "--output", str(output)]) == 0
    job = json.loads(output.read_text())
    alone = {"pipelineSpec": distiller_alone(job["pipelineSpec"], scenario.runs["run-1"]),
             "platformSpec": job["platformSpec"]}
    results = kfp_local.execute_spec(alone, scenario.root, scenario.pod_env, launcher=scenario.launcher,
                                     secrets=SECRETS, run_id="distil", scratch_root=scenario.base / "pods",
                                     timeout=900)
    return job["pipelineSpec"], results


def test_the_distiller_trains_a_one_layer_student_from_the_trainers_model(scenario, distilled, tmp_path):
    student_spec, results = distilled
    assert not failures(results), failures(results)
    store, run_1 = scenario.store, scenario.runs["run-1"]
    teacher = artifact(run_1, nodes.TRAINER, "model")["uri"]
    given = results[nodes.DISTILLER].executor_input["inputs"]["artifacts"]["base_model"]["artifacts"]
    assert [a["uri"] for a in given] == [teacher] and given[0]["type"] == {"instanceSchema": ""}
    assert results[nodes.DISTILLER].uploads == {"model": "skipped: local path does not exist",
                                                "model_run": "skipped: local path does not exist"}
    student = artifact(results, nodes.DISTILLER, "model")["uri"]
    record = store.json(f"{student}/training_history.json")
    assert record["distillation"]["teacher"] == teacher + "/Format-Serving"
    assert record["distillation"]["copied_from_teacher_layers"] == [1] and record["encoder"]["num_layers"] == 1
    assert record["total_steps"] == 5  # the compiled --train-steps: the run's train_steps is the Trainer's alone
    layers, labels = layers_and_labels(store.download(f"{student}/Format-Serving", tmp_path / "student"),
                                       ["a wonderful, moving film"])
    assert layers == [0] and labels[0] in ("fresh", "rotten")
    # In that spec the student, not the teacher, is what is checked, evaluated, described and pushed.
    tasks = student_spec["root"]["dag"]["tasks"]
    for task in (nodes.SERVING_CHECK, nodes.EVALUATOR, nodes.MODEL_CARD):
        model = tasks[task]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
        assert model == {"producerTask": nodes.DISTILLER, "outputArtifactKey": "model"}, task
    assert tasks[nodes.PUSHER]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]["producerTask"] == \
        nodes.MODEL_CARD  # the ModelCardWriter's copy of the student, with its card
