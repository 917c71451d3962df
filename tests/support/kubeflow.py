"""What tests/integration/test_kubeflow.py (the compiled spec), test_kubeflow_commands.py (upload, run, schedule) and
test_beam_runners.py share: the arguments of the compile they check, `run_cli` (pipeline/run_kubeflow.py as a user runs
it) and `process_state_kept`; `compiled_here`, the spec the executed-spec test (test_kubeflow_executed.py) compiles
for the tests' S3 server; and what an administrator gives KFP's launcher there (`documented_launcher_config`, the
namespace's `SECRETS`). The fixtures built on them (`compiled`, `stub`, `cli`) are tests/integration/conftest.py's."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import absl.logging

from pipeline.kubeflow import client
from support import REPO
from support.s3_server import ACCESS_KEY, SECRET_KEY

RUN_KUBEFLOW = REPO / "pipeline" / "run_kubeflow.py"
IMAGE = "registry.example.com/ml/bert-tfx-pipeline:1.2.3"
NAME = "bert-text-classifier"
ENTRYPOINT = ["python", "-m", "pipeline.kubeflow.entrypoint"]  # TFX's run_executor, inputs typed (entrypoint.py)
COMPILE_ARGS = ["--image", IMAGE, "--data-root", "gs://bucket/reviews", "--serving-dir", "gs://bucket/serving",
                "--epochs", "2", "--train-steps", "50", "--learning-rate", "3e-5", "--min-accuracy", "0.7"]
PARAMETERS = {"data_root", "train_args", "trainer_config", "eval_config"}
# The namespace's Kubernetes secrets: the store's keys under a stock install's name (pipeline/kubeflow/storage.py).
SECRETS = {"mlpipeline-minio-artifact": {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY}}
DOCUMENTED_ENDPOINT = "seaweedfs.kubeflow:8333"  # in docs/kubeflow.md's ConfigMap


def documented_launcher_config(endpoint: str) -> dict:
    """docs/kubeflow.md's kfp-launcher ConfigMap, as an administrator applies it, its store endpoint replaced by
    `endpoint` (HOST:PORT of the tests' S3 server)."""
    import re

    import yaml

    text = (REPO / "docs" / "kubeflow.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "name: kfp-launcher" in b]
    assert len(blocks) == 1, "docs/kubeflow.md has no (or several) kfp-launcher ConfigMap blocks"
    assert DOCUMENTED_ENDPOINT in blocks[0], f"docs/kubeflow.md's ConfigMap no longer names {DOCUMENTED_ENDPOINT}"
    return yaml.safe_load(blocks[0].replace(DOCUMENTED_ENDPOINT, endpoint))


@contextlib.contextmanager
def process_state_kept():
    """run_kubeflow's main() quiets TensorFlow (an environment variable) and absl logging for the CLI; in-process
    calls (tests/integration/conftest.py's fixtures, test_beam_runners.py) must not leave that behind for the rest
    of the test session."""
    level, verbosity = os.environ.get("TF_CPP_MIN_LOG_LEVEL"), absl.logging.get_verbosity()
    try:
        yield
    finally:
        if level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = level
        absl.logging.set_verbosity(verbosity)


def run_cli(*args, env=None, timeout=300):
    """pipeline/run_kubeflow.py in a fresh interpreter, as a user runs it."""
    unset = (client.ENV_ENDPOINT, client.ENV_TOKEN, client.ENV_COOKIE)
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update(TF_USE_LEGACY_KERAS="1", **(env or {}))
    return subprocess.run([sys.executable, str(RUN_KUBEFLOW), *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def compiled_here(base: Path, store: str, s3_endpoint: str, *compile_args: str) -> SimpleNamespace:
    """`run_kubeflow.py compile` with the data root, pipeline root and serving folder on the S3 bucket `store`
    (s3://BUCKET/data, /v2/bert, /serving) at `s3_endpoint`, and, for the packaged checkpoint the image has, a tiny
    random one written under `base` (support/retraining.py's tiny_checkpoint). Returns the spec file, the
    PipelineJob, the three URIs, and the image's environment for the pods: this checkout on PYTHONPATH in place of
    the image's /pipeline, and an empty BERT_TFX_DATA_DIR (the store's settings are the spec's)."""
    from support.retraining import tiny_checkpoint

    data, root, serving = f"s3://{store}/data", f"s3://{store}/v2/bert", f"s3://{store}/serving"
    spec_path = base / "pipeline.json"
    checkpoint = tiny_checkpoint(base / "checkpoint" / "tiny")
    proc = run_cli("compile", *compile_args, "--pretrained", str(checkpoint), "--data-root", data,
                   "--pipeline-root", root, "--serving-dir", serving, "--s3-endpoint", s3_endpoint,
                   "--output", str(spec_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    (base / "no-data").mkdir()
    pod_env = {"PYTHONPATH": str(REPO), "TF_USE_LEGACY_KERAS": "1", "BERT_TFX_DATA_DIR": str(base / "no-data"),
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    return SimpleNamespace(spec_path=spec_path, job=json.loads(spec_path.read_text()), data=data, root=root,
                           serving=serving, pod_env=pod_env, checkpoint=checkpoint)
