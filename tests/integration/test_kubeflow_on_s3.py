"""The compiled Kubeflow spec on an S3-compatible store, as on a stock open-source Kubeflow (MinIO/SeaweedFS): its
pipeline root, serving folder and data root on s3:// (moto's server on 127.0.0.1, support/s3_server.py).

The spec carries what the pods need and KFP's launcher does not hand them: S3_ENDPOINT in every container's env, and
the credentials from the secret mlpipeline-minio-artifact through the Kubernetes platform spec (secretAsEnv), as
pipeline/kubeflow/storage.py writes them. It is then executed task by task with the launcher's storage steps
(support/kfp_storage.py): inputs downloaded to the pod's disk, the ExecutorOutput on the pod's disk, local output paths
uploaded after exit 0 or skipped when missing. Every TFX step writes straight to its s3:// URI, so the launcher
uploads nothing of theirs (and overwrites nothing): the skip is what makes TFX and the launcher agree. The pods' only
credentials are the secret's: this process's environment has none.

The spec is compiled with the distillation stage (`--student-layers 1`): the Distiller task trains a 1-layer student
from the Trainer's model, on the store like every other step, and the student, not the teacher, is checked, evaluated
and pushed. (One execution serves both: the whole pipeline task by task takes minutes.)
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

import json
import subprocess
import sys

import pytest
import yaml

from pipeline.dag import nodes
from pipeline.kubeflow import parameters
from support import REPO, kfp_local
from support.fresh_process import layers_and_labels
from support.retraining import LABEL, TEXT, rows, tiny_checkpoint, write_csv
from support.s3_server import ACCESS_KEY, SECRET_KEY

BUCKET = "mlpipeline"
COMPILE_ARGS = ["--image", "registry.example.com/ml/bert-tfx-pipeline:1.2.3", "--dataset", "custom", "--labels",
                "fresh,rotten", "--text-column", TEXT, "--label-column", LABEL, "--max-seq-length", "32",
                "--batch-size", "16", "--epochs", "1", "--train-steps", "5", "--learning-rate", "2e-3",
                "--min-accuracy", "0.0", "--min-macro-f1", "0.0", "--student-layers", "1", "--distill-epochs", "1"]
SECRET = {"mlpipeline-minio-artifact": {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY}}


def compile_spec(tmp, server, *extra, output="pipeline.yaml"):
    checkpoint = tiny_checkpoint(tmp / "checkpoint" / "tiny")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    return subprocess.run(
        [sys.executable, str(REPO / "pipeline" / "run_kubeflow.py"), "compile", *COMPILE_ARGS, "--pretrained",
         str(checkpoint), "--data-root", f"s3://{BUCKET}/data", "--pipeline-root", f"s3://{BUCKET}/v2/bert",
         "--serving-dir", f"s3://{BUCKET}/serving", "--s3-endpoint", server.endpoint, *extra,
         "--output", str(tmp / output)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def compiled_s3(s3_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kfp_s3")
    proc = compile_spec(tmp, s3_server)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    return tmp, tmp / "pipeline.yaml"


def test_the_spec_gives_every_step_the_endpoint_and_the_secrets_keys(compiled_s3, s3_server):
    _, path = compiled_s3
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    executors = {k: v for k, v in spec["deploymentSpec"]["executors"].items() if "container" in v}
    assert executors
    for label, executor in executors.items():
        env = {e["name"]: e["value"] for e in executor["container"]["env"]}
        assert env["S3_ENDPOINT"] == env["AWS_ENDPOINT_URL_S3"] == s3_server.endpoint, label
        assert not any(k.startswith("AWS_ACCESS") or k.startswith("AWS_SECRET") for k in env), label  # never inline
        secret = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][label]["secretAsEnv"]
        assert secret == [{"secretName": "mlpipeline-minio-artifact", "keyToEnv": [
            {"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
            {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}], label
    assert spec["defaultPipelineRoot"] == f"s3://{BUCKET}/v2/bert"


def test_the_platform_spec_is_read_as_the_kfp_sdk_and_backend_read_it(compiled_s3):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    from pipeline.kubeflow import specs

    _, path = compiled_s3
    platform = specs.load_platform_spec(str(path))
    message = json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())  # the backend's PlatformSpec proto
    assert "kubernetes" in message.platforms
    upload = specs.write_upload_file(specs.load_spec(str(path)), str(path.parent), "upload", platform)
    assert [d.get("platforms") is not None for d in yaml.safe_load_all(open(upload))] == [False, True]


def test_s3_flags_are_checked():
    from pipeline.kubeflow import storage
    from pipeline.kubeflow.errors import UserError

    with pytest.raises(UserError, match="--s3-credentials-secret 'just-a-name' must be NAME:ACCESS_KEY_KEY:"):
        storage.secret_as_env("just-a-name")
    assert storage.secret_as_env("none") is None
    with pytest.raises(UserError, match="--s3-endpoint: S3 endpoint 'minio:9000' must start with http"):
        storage.container_env("minio:9000")
    spec = {"deploymentSpec": {"executors": {"a": {"container": {"image": "x"}}, "b": {"importer": {}}}}}
    assert storage.apply(spec, "http://minio:9000", "none") is None  # env on containers only, no platform spec
    assert "env" in spec["deploymentSpec"]["executors"]["a"]["container"] and "container" not in \
        spec["deploymentSpec"]["executors"]["b"]


@pytest.fixture(scope="module")
def executed(compiled_s3, s3_server, tmp_path_factory):
    """Every task of the compiled spec, run as KFP's driver and launcher run it, with the data, pipeline root and
    serving folder on the store. Returns the task results."""
    _, path = compiled_s3
    tmp_path = tmp_path_factory.mktemp("kfp_s3_run")
    s3_server.bucket(BUCKET)
    local = tmp_path / "reviews.csv"
    write_csv(local, rows(300, seed=0))
    s3_server.client().upload_file(str(local), BUCKET, "data/reviews.csv")
    (tmp_path / "no-data").mkdir()
    pod_env = {"PYTHONPATH": str(REPO), "TF_USE_LEGACY_KERAS": "1", "BERT_TFX_DATA_DIR": str(tmp_path / "no-data"),
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    spec, _, _ = kfp_local.load(path)
    values = parameters.resolve_parameters(spec, ["train_steps=3"])  # `run --param train_steps=3`
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    os_environ = dict(os.environ)
    os.environ.clear()
    os.environ.update(clean)  # the pods get the store's settings from the spec alone
    try:
        results = kfp_local.execute_spec(path, f"s3://{BUCKET}/v2/bert", pod_env, parameter_values=values,
                                         run_id="run-1", scratch_root=tmp_path / "pods", secrets=SECRET, timeout=900)
    finally:
        os.environ.clear()
        os.environ.update(os_environ)
    failed = [f"{r.name}: {r.status}\n{r.log_tail()}" for r in results.values() if r.status not in kfp_local.DONE]
    assert not failed, "\n".join(failed)
    return spec, results


def _key(uri: str) -> str:
    prefix = f"s3://{BUCKET}/"
    assert uri.startswith(prefix), uri
    return uri[len(prefix):]


def _output_uri(results, task: str, key: str = "model") -> str:
    return results[task].artifacts[key][0]["uri"]


@pytest.mark.slow  # the whole pipeline, task by task
def test_the_spec_runs_with_every_artifact_on_the_store(executed, s3_server):
    spec, results = executed
    assert set(results) == set(spec["root"]["dag"]["tasks"]) and nodes.DISTILLER in results
    containers = [r for r in results.values() if r.kind == "container"]
    for result in containers:
        # TFX wrote every output straight to its s3:// URI: the launcher had no local file to upload
        assert set(result.uploads.values()) <= {"skipped: local path does not exist"}, (result.name, result.uploads)
        for listing in result.artifacts.values():
            assert listing[0]["uri"].startswith(f"s3://{BUCKET}/v2/bert/"), (result.name, listing)
    assert results[nodes.TRAINER].downloaded  # the launcher copied the Trainer's inputs to the pod's disk
    keys = s3_server.keys(BUCKET)
    pushed = [k for k in keys if k.startswith("serving/bert_classifier/") and k.endswith("/saved_model.pb")]
    assert len(pushed) == 1, keys
    assert any(k.startswith("v2/bert/baselines/DataValidationGate/") for k in keys)
    assert any(k.endswith("/executor-logs") for k in keys)  # the launcher's log upload


@pytest.mark.slow
def test_the_distiller_trained_a_one_layer_student_from_the_trainers_model(executed, s3_server):
    _, results = executed
    teacher = _output_uri(results, nodes.TRAINER)
    given = results[nodes.DISTILLER].executor_input["inputs"]["artifacts"]["base_model"]["artifacts"]
    assert [a["uri"] for a in given] == [teacher]
    student = _output_uri(results, nodes.DISTILLER)
    record = json.loads(s3_server.read(BUCKET, _key(student) + "/training_history.json"))
    assert record["distillation"]["teacher"] == teacher + "/Format-Serving"
    assert record["distillation"]["copied_from_teacher_layers"] == [1] and record["encoder"]["num_layers"] == 1
    # Its cap is the compiled --train-steps: the run's train_steps parameter is the Trainer's TrainArgs alone.
    assert record["total_steps"] == 5
    trainer_record = json.loads(s3_server.read(BUCKET, _key(teacher) + "/training_history.json"))
    assert trainer_record["total_steps"] == 3
    for task in (nodes.SERVING_CHECK, nodes.EVALUATOR, nodes.MODEL_CARD):
        judged = results[task].executor_input["inputs"]["artifacts"]["model"]["artifacts"]
        assert [a["uri"] for a in judged] == [student], task


@pytest.mark.slow
def test_the_pushed_version_is_the_student_and_answers_in_a_fresh_process(executed, s3_server, tmp_path):
    _, results = executed
    pushed = results[nodes.PUSHER].artifacts["pushed_model"][0]["metadata"]
    assert pushed["pushed"] == 1
    version = _key(pushed["pushed_destination"])
    assert version.rsplit("/", 1)[0] == "serving/bert_classifier"
    student = _key(_output_uri(results, nodes.DISTILLER)) + "/Format-Serving"
    data = "variables/variables.data-00000-of-00001"
    assert s3_server.read(BUCKET, f"{version}/{data}") == s3_server.read(BUCKET, f"{student}/{data}")
    local = tmp_path / "version"  # a copy on this disk: serving from the store is tests/e2e/test_object_store.py's
    for key in s3_server.keys(BUCKET, version + "/"):
        target = local / key[len(version) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3_server.read(BUCKET, key))
    layers, labels = layers_and_labels(local, ["a wonderful, moving film"])
    assert layers == [0] and labels[0] in ("fresh", "rotten")
