"""The package installs: the wheel that pyproject.toml builds, installed without dependencies into a fresh virtual
environment, holds every module of components/ and pipeline/ (with the data files they read), and its three console
scripts answer --help, all from outside the checkout.

The fresh environment sees the project's pinned packages through a .pth file that adds .venv's site-packages as a
site directory (its own .pth files included, e.g. the google namespace's), after the environment's own site-packages:
the installed package comes first, and the checkout is on no path."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from support import REPO

# About 20 s, most of it importing TensorFlow, TFX and KFP once for every module: `make test`, not `make test-fast`.
pytestmark = pytest.mark.slow

# What setuptools needs to build the wheel: copied out, so that the build leaves nothing in the checkout.
SOURCES = ("pyproject.toml", "README.md", "components", "pipeline")
# The console scripts (pyproject.toml's [project.scripts]) and the modules they run.
PROGRAMS = {"bert-tfx-run": "pipeline.run_local", "bert-tfx-serve": "pipeline.serve",
            "bert-tfx-kubeflow": "pipeline.run_kubeflow"}

# Imports every module named in argv[1] (a JSON list), in a fresh interpreter, and prints where each came from.
_IMPORT_ALL = """
import importlib, json, sys
print(json.dumps({name: importlib.import_module(name).__file__ for name in json.loads(sys.argv[1])}))
"""


def checkout_modules() -> list:
    """Every module of components/ and pipeline/ in the checkout, by dotted name."""
    names = []
    for package in ("components", "pipeline"):
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def clean_env() -> dict:
    """The environment without anything that would put the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(cmd, cwd, timeout=300):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the fresh environment's folder, its python, a working folder outside the checkout)."""
    base = tmp_path_factory.mktemp("package")
    source, wheels, venv, elsewhere = base / "source", base / "wheels", base / "venv", base / "elsewhere"
    source.mkdir()
    elsewhere.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    # The pinned setuptools and wheel of .venv (requirements.lock): no build isolation, so nothing is downloaded.
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                "--wheel-dir", wheels, source], cwd=elsewhere)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = wheels.glob("*.whl")

    proc = run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin" / "python"
    own_site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=elsewhere).stdout.strip())
    pinned_site = sysconfig.get_paths()["purelib"]  # .venv's, where this test runs
    (own_site / "project_pins.pth").write_text(f"import site; site.addsitedir({pinned_site!r})\n", encoding="utf-8")
    # pip comes from .venv's site directory and installs into the fresh environment (sys.prefix of `python`).
    proc = run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheel], cwd=elsewhere)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return venv, python, elsewhere


def test_every_module_imports_from_the_installed_package(installed):
    venv, python, elsewhere = installed
    names = checkout_modules()
    proc = run([python, "-c", _IMPORT_ALL, json.dumps(names)], cwd=elsewhere, timeout=600)
    assert proc.returncode == 0, f"an import failed in the installed package:\n{proc.stderr[-4000:]}"
    files = json.loads(proc.stdout.strip().splitlines()[-1])
    outside = {name: file for name, file in files.items() if not Path(file).resolve().is_relative_to(venv.resolve())}
    assert not outside, f"modules taken from outside the fresh environment: {outside}"


def test_the_data_files_are_installed(installed):
    venv, python, elsewhere = installed
    code = ("from components.release.serving_ops import OPS_FILE; from pipeline.serving.server import DEMO_PAGE; "
            "print(OPS_FILE.is_file(), DEMO_PAGE.is_file())")
    proc = run([python, "-c", code], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_the_console_scripts_answer_help(installed, program):
    venv, python, elsewhere = installed
    proc = run([venv / "bin" / program, "--help"], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage: "), proc.stdout[:500]
    # The script is the installed one: its module lives in the fresh environment.
    where = run([python, "-c", f"import {PROGRAMS[program]} as m; print(m.__file__)"], cwd=elsewhere).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where
