"""Fixtures of the integration tests: the Kubeflow runner's compile (run once as a user would and in-process), the
stub KFP API on 127.0.0.1 and the runner's CLI called in-process (support/kubeflow.py, kfp_stub.py). Imports of TFX
and the KFP SDK wait for the fixtures, so that a lone linter test does not pay for them."""

from types import SimpleNamespace

import pytest

from support.kubeflow import COMPILE_ARGS, process_state_kept, run_cli


@pytest.fixture(autouse=True)
def _keep_process_state():
    """Every test leaves TensorFlow's log level and absl's verbosity as it found them (run_kubeflow's main() sets
    both for its CLI)."""
    with process_state_kept():
        yield


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """`run_kubeflow.py compile` run as a user would, and twice in-process (JSON, YAML): the spec, the job and the
    pipeline's components. Once per session (~17 s), shared by test_kubeflow.py and test_kubeflow_commands.py, which
    only read it (tests/conftest.py keeps them in one xdist group); test_beam_runners.py compiles its own."""
    import json

    from pipeline.dag.pipeline import create_pipeline
    from pipeline.kubeflow import cli as kfp_cli
    from pipeline.kubeflow import compile_config

    base = tmp_path_factory.mktemp("kfp")
    root = base / "pipeline_root"  # given to compile, which must leave it alone
    args = ["compile", *COMPILE_ARGS, "--pipeline-root", str(root)]
    proc = run_cli(*args, "--output", base / "cli.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with process_state_kept():
        assert kfp_cli.main([*args, "--output", str(base / "again.json")]) == 0
        assert kfp_cli.main([*args, "--output", str(base / "spec.yaml")]) == 0
    job = json.loads((base / "cli.json").read_text())
    config = compile_config.kubeflow_config(kfp_cli.build_parser().parse_args([*args, "--output", "unused.json"]))
    return SimpleNamespace(base=base, root=root, path=base / "cli.json", job=job, spec=job["pipelineSpec"],
                           components=create_pipeline(config).components, stdout=proc.stdout)


@pytest.fixture
def stub(monkeypatch, tmp_path):
    """support/kfp_stub.py's stand-in for the KFP API, started on 127.0.0.1; no KFP endpoint or token set."""
    import kfp

    from pipeline.kubeflow import client
    from support.kfp_stub import KfpStub

    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    for key in (client.ENV_ENDPOINT, client.ENV_TOKEN, client.ENV_COOKIE):
        monkeypatch.delenv(key, raising=False)
    server = KfpStub().start()
    yield server
    server.stop()


@pytest.fixture
def cli(capsys):
    """pipeline/run_kubeflow.py's main() in-process: call(*args) -> (status, out, err)."""
    from pipeline.kubeflow import cli as kfp_cli

    def call(*args):
        status = kfp_cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return SimpleNamespace(status=status, out=out, err=err)
    return call
