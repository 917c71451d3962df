"""What tests/test_kubeflow.py (the compiled spec) and tests/test_kubeflow_commands.py (upload, run, schedule) share:
the compile they check, run once per module as a user would and in-process, and the stub KFP API on 127.0.0.1."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import absl.logging
import kfp
import pytest

from pipeline.kubeflow import cli as kfp_cli
from pipeline.kubeflow import client
from pipeline.kubeflow import options as kfp_options

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kfp_stub import KfpStub  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RUN_KUBEFLOW = REPO / "pipeline" / "run_kubeflow.py"
IMAGE = "registry.example.com/ml/bert-tfx-pipeline:1.2.3"
NAME = "bert-text-classifier"
ENTRYPOINT = ["python", "-m", "pipeline.kubeflow.entrypoint"]  # TFX's run_executor, inputs typed (entrypoint.py)
COMPILE_ARGS = ["--image", IMAGE, "--data-root", "gs://bucket/reviews", "--serving-dir", "gs://bucket/serving",
                "--epochs", "2", "--train-steps", "50", "--learning-rate", "3e-5", "--min-accuracy", "0.7"]
PARAMETERS = {"data_root", "train_args", "trainer_config", "eval_config"}


@contextlib.contextmanager
def process_state_kept():
    """run_kubeflow's main() quiets TensorFlow (an environment variable) and absl logging for the CLI; in-process
    calls (here and in tests/test_beam_runners.py) must not leave that behind for the rest of the test session."""
    level, verbosity = os.environ.get("TF_CPP_MIN_LOG_LEVEL"), absl.logging.get_verbosity()
    try:
        yield
    finally:
        if level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = level
        absl.logging.set_verbosity(verbosity)


@pytest.fixture(autouse=True)
def _keep_process_state():
    with process_state_kept():
        yield


def run_cli(*args, env=None, timeout=300):
    """pipeline/run_kubeflow.py in a fresh interpreter, as a user runs it."""
    full_env = {k: v for k, v in os.environ.items() if k not in (client.ENV_ENDPOINT, client.ENV_TOKEN, client.ENV_COOKIE)}
    full_env.update(TF_USE_LEGACY_KERAS="1", **(env or {}))
    return subprocess.run([sys.executable, str(RUN_KUBEFLOW), *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    base = tmp_path_factory.mktemp("kfp")
    root = base / "pipeline_root"  # given to compile, which must leave it alone
    args = ["compile", *COMPILE_ARGS, "--pipeline-root", str(root)]
    proc = run_cli(*args, "--output", base / "cli.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with process_state_kept():
        assert kfp_cli.main([*args, "--output", str(base / "again.json")]) == 0
        assert kfp_cli.main([*args, "--output", str(base / "spec.yaml")]) == 0
    job = json.loads((base / "cli.json").read_text())
    from pipeline.dag.pipeline import create_pipeline

    config = kfp_options.kubeflow_config(kfp_cli.build_parser().parse_args([*args, "--output", "unused.json"]))
    return SimpleNamespace(base=base, root=root, path=base / "cli.json", job=job, spec=job["pipelineSpec"],
                           components=create_pipeline(config).components, stdout=proc.stdout)


@pytest.fixture
def stub(monkeypatch, tmp_path):
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    for key in (client.ENV_ENDPOINT, client.ENV_TOKEN, client.ENV_COOKIE):
        monkeypatch.delenv(key, raising=False)
    server = KfpStub().start()
    yield server
    server.stop()


@pytest.fixture
def cli(capsys):
    def call(*args):
        status = kfp_cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return SimpleNamespace(status=status, out=out, err=err)
    return call
