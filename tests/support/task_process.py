"""How tests/support/kfp_local.py runs a task's command: `python -m MODULE ARGS` (every task of this project's spec)
runs in a process forked from a server that has imported TensorFlow, TFX and Beam once (multiprocessing's
forkserver, itself a fresh interpreter started for this): each task is still its own process with the pod's
environment, working folder and argv, run as `python -m` runs it (runpy), but it does not spend ~15 s importing those
libraries again. Set KFP_LOCAL_FRESH_INTERPRETERS=1 to run every command in a fresh interpreter instead, exactly as a
pod would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Mapping

PRELOAD = ["tensorflow", "tensorflow_text", "tensorflow_transform", "tensorflow_data_validation",
           "tensorflow_model_analysis", "apache_beam", "tfx.v1"]


def run_command(argv: List[str], cwd: Path, env: Mapping[str, str], log: Path, python: str, timeout: float) -> int:
    if argv[:2] != [python, "-m"] or os.environ.get("KFP_LOCAL_FRESH_INTERPRETERS") == "1":
        with open(log, "w", encoding="utf-8") as out:
            return subprocess.run(argv, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # takes effect when the server starts (the first task)
    process = context.Process(target=_run_module, args=(argv[2], argv[3:], str(cwd), dict(env), str(log)))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        raise subprocess.TimeoutExpired(argv, timeout)
    return process.exitcode


def _run_module(module: str, args: List[str], cwd: str, env: Dict[str, str], log: str) -> None:
    """`python -m module args` in this (forked) process: the pod's environment, folder, output and import path."""
    import runpy

    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.path[:0] = [cwd] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.argv = [module, *args]  # runpy replaces argv[0] with the module's file, as `python -m` does
    runpy.run_module(module, run_name="__main__", alter_sys=True)
