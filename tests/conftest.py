"""Shared fixtures: one real pipeline run on a small deterministic subset, reused by several tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

REPO = Path(__file__).resolve().parent.parent
RUN_LOCAL = REPO / "pipeline" / "run_local.py"

# Small enough for the suite's time budget. A tiny model on 1,000 examples barely beats the majority class,
# so the absolute accuracy gate is off here (the tests check the mechanics: blessing, baseline, push).
QUICK_ARGS = ["--max-examples", "1000", "--pretrained", "none", "--model-size", "tiny",
              "--max-seq-length", "64", "--epochs", "2", "--batch-size", "32", "--learning-rate", "1e-3",
              "--vocab", "checkpoint", "--min-accuracy", "0.0"]


def run_local(*args, timeout=900, env=None):
    """Runs pipeline/run_local.py as a user would (a fresh interpreter), returning the CompletedProcess."""
    full_env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", **(env or {})}
    return subprocess.run([sys.executable, str(RUN_LOCAL), *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def first_run(tmp_path_factory):
    """The first run into a fresh pipeline root: returns (paths, summary dict, process)."""
    base = tmp_path_factory.mktemp("e2e")
    paths = {"pipeline_root": base / "root", "serving_dir": base / "serving", "summary": base / "summary1.json"}
    proc = run_local(*QUICK_ARGS, "--pipeline-root", paths["pipeline_root"], "--serving-dir", paths["serving_dir"],
                     "--summary-json", paths["summary"])
    assert proc.returncode == 0, f"run_local failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return paths, json.loads(paths["summary"].read_text()), proc
