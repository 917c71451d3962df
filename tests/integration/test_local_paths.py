"""A URI given to a local run's path flag is refused, naming the flag, before anything is read or written: it is
never taken for a local folder (Path("s3://b/r") is the relative folder s3:/b/r). The runner and the server are run
as a user runs them, from an empty working folder that must stay empty."""

import os
import subprocess
import sys

import pytest

from support import REPO, assert_one_error

LOCAL = [("--pipeline-root", "s3://bucket/root"), ("--serving-dir", "gs://bucket/serving"),
         ("--data-root", "s3://bucket/incoming"), ("--schema", "gs://bucket/schema.pbtxt"),
         ("--unlabeled-data", "s3://bucket/texts"), ("--pretrained", "gs://bucket/checkpoints/minilm"),
         ("--summary-json", "s3://bucket/summary.json")]


def run(tmp_path, script, *args):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "pipeline" / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("flag,uri", LOCAL, ids=[flag for flag, _ in LOCAL])
def test_a_uri_for_a_local_path_flag_is_refused_naming_the_flag(tmp_path, flag, uri):
    proc = run(tmp_path, "run_local.py", flag, uri)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, f"{flag} {uri}:", "local folders only", f"not {uri.split('://')[0]}:// locations")
    assert os.listdir(tmp_path) == []  # no folder named s3: or gs:, no report, no summary


def test_the_server_refuses_a_uri_for_its_serving_folder(tmp_path):
    proc = run(tmp_path, "serve.py", "--serving-dir", "s3://bucket/serving")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, "--serving-dir s3://bucket/serving:", "not a URI")
    assert os.listdir(tmp_path) == []


def test_local_paths_stay_paths():
    from pathlib import Path

    from pipeline.cli.local_paths import Uri, local_path

    assert local_path("runs/root") == Path("runs/root") and local_path("/abs/c:d") == Path("/abs/c:d")
    assert isinstance(local_path("s3://b/r"), Uri) and local_path("s3://b/r") == "s3://b/r"
