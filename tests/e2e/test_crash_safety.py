"""Crash safety of runs: real runs of pipeline/run_local.py. A second run on the same pipeline root is refused while the
first holds it; a run killed with SIGKILL in the middle of the Trainer completes when started again, reusing the
upstream components from the cache, while a watcher of the serving folder never sees a partial version. The atomic
push itself is tests/integration/test_atomic_push.py's."""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.dag import nodes
from support import REPO
from support.learned import assert_learned
from support.retraining import ARGS, GOOD_RUN, LABEL, rows, write_csv
from support.serving_server import ServingDirWatcher

# support/retraining.py's small own data and tiny model, which learns it in seconds (the `served` run's settings):
# what is tested here is the runner's lock, the cache and the push, not the model, which still has to learn.
CRASH_ARGS = [*ARGS, *GOOD_RUN]
UPSTREAM_CACHED = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.TRANSFORM)


def _wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str, log: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{log.read_text()[-6000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}:\n{log.read_text()[-6000:]}")


def _snapshot_code(target: Path) -> Path:
    """A copy of the code the runs use. The digest of components/*.py is part of Transform's and the Trainer's
    configuration, so a file saved under components/ between the killed run and the rerun (an editor, a
    colleague's checkout) would rightly invalidate the cache; the runs use this frozen copy instead."""
    for name in ("components", "pipeline", "schema"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _command(code: Path, args) -> list:
    return [sys.executable, str(code / "pipeline" / "run_local.py"), *map(str, args)]


def _env() -> dict:
    from pipeline.data.assets import DATA_DIR  # the checkout's data and weights, not a copy of them

    return {**os.environ, "TF_USE_LEGACY_KERAS": "1", "BERT_TFX_DATA_DIR": str(DATA_DIR)}


def _run(code: Path, args, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(_command(code, args), cwd=code, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _trainer_is_training(root: Path) -> bool:
    """The Trainer's TensorBoard callback writes into model_run/<execution id>/ when training begins."""
    runs = root / "Trainer" / "model_run"
    return runs.is_dir() and any(any(d.iterdir()) for d in runs.iterdir() if d.is_dir())


@pytest.fixture(scope="module")
def crash_and_rerun(tmp_path_factory):
    """Starts a run; while it holds the pipeline root, starts a second one with the same arguments (refused);
    SIGKILLs the first one's process group once its Trainer is training; runs again with the same arguments
    while a watcher polls the serving directory. Returns what each step observed."""
    from pipeline.local.record import RunRecord

    base = tmp_path_factory.mktemp("crash")
    code = _snapshot_code(base / "code")
    root, serving = base / "root", base / "serving"
    write_csv(base / "data" / "span-1" / "reviews.csv", rows())
    args = [*CRASH_ARGS, "--data-root", base / "data", "--pipeline-root", root, "--serving-dir", serving]
    log = base / "first.log"
    started = time.time()
    with open(log, "w") as out:
        first = subprocess.Popen(_command(code, args), cwd=code, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # its own process group, killed as a whole
    result = {"first_pid": first.pid, "root": root, "serving": serving}
    try:
        lock_file = root / ".run.lock"
        _wait_for(lambda: lock_file.is_file() and lock_file.read_text().strip() == str(first.pid), 300, first,
                  "the run took the pipeline root's lock", log)
        t0 = time.time()
        result["second"] = _run(code, args, timeout=300)
        result["second_seconds"] = time.time() - t0
        result["first_alive_after_second"] = first.poll() is None

        _wait_for(lambda: _trainer_is_training(root), 600, first, "the Trainer started training", log)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
        result["killed_after_seconds"] = time.time() - started
        record = RunRecord(str(root / "metadata.sqlite"), "bert_text_classifier")
        result["killed_states"] = {node: record.state(node) for node in record.nodes}
        result["serving_after_kill"] = sorted(os.listdir(serving)) if serving.exists() else []
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=60)

    watcher = ServingDirWatcher(serving / "bert_classifier", {"saved_model.pb": None})
    watcher.check = lambda d: [] if (d / "saved_model.pb").is_file() and (d / "variables").is_dir() and (
        d / "variables" / "variables.index").is_file() else ["saved_model.pb/variables missing"]
    watcher.start()
    t0 = time.time()
    try:
        result["rerun"] = _run(code, [*args, "--summary-json", base / "summary.json"], timeout=900)
    finally:
        watcher.stop()
    result["rerun_seconds"] = time.time() - t0
    result["watcher"] = watcher
    summary_file = base / "summary.json"
    result["summary"] = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    return result


def test_a_second_run_on_the_same_pipeline_root_is_refused(crash_and_rerun):
    r = crash_and_rerun
    second = r["second"]
    assert second.returncode == 3, (second.returncode, second.stdout[-2000:], second.stderr[-4000:])
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: another run is using pipeline root {r['root']} (pid {r['first_pid']}); "
                      "wait for it or use another --pipeline-root."], second.stderr[-4000:]
    assert "pipeline root:" not in second.stdout  # refused before any TFX work
    assert r["first_alive_after_second"] and r["second_seconds"] < 120


def test_a_run_killed_in_the_trainer_was_killed_mid_training(crash_and_rerun):
    states = crash_and_rerun["killed_states"]
    assert states.get(nodes.TRAINER) == "RUNNING", states  # MLMD still says RUNNING: the process died in it
    assert all(states[node] == "COMPLETE" for node in UPSTREAM_CACHED), states
    assert nodes.EVALUATOR not in states and nodes.PUSHER not in states
    assert crash_and_rerun["serving_after_kill"] == []


def test_the_rerun_completes_and_reuses_the_finished_upstream_steps(crash_and_rerun):
    rerun, summary = crash_and_rerun["rerun"], crash_and_rerun["summary"]
    assert rerun.returncode == 0, f"{rerun.stdout[-3000:]}\n{rerun.stderr[-6000:]}"
    assert summary["blessed"] is True and summary["pushed"] is True, summary
    assert_learned(summary, crash_and_rerun["root"], label=LABEL)
    components = summary["components"]
    for node in UPSTREAM_CACHED:
        assert components[node]["state"] == "CACHED", (node, components)
    for node in (nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert components[node]["state"] == "COMPLETE", (node, components)

    pushed = Path(summary["pushed_dir"])
    base = crash_and_rerun["serving"] / "bert_classifier"
    assert pushed.parent == base and pushed.name.isdigit()
    assert (pushed / "saved_model.pb").is_file() and (pushed / "variables" / "variables.index").is_file()
    assert os.listdir(base) == [pushed.name]  # no staging folder left behind
    watcher = crash_and_rerun["watcher"]
    assert watcher.incomplete == [] and watcher.complete_seen > 0, watcher.incomplete[:5]


def test_the_lock_is_free_once_runs_have_ended(crash_and_rerun):
    """Neither the SIGKILLed run (the rerun got the lock) nor the finished one leaves the root locked."""
    with open(crash_and_rerun["root"] / ".run.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError when still held
        fcntl.flock(f, fcntl.LOCK_UN)
