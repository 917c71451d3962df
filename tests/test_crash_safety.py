"""Crash safety: pushes are atomic, one run at a time per pipeline root, and a run killed with SIGKILL in the
middle of the Trainer completes when started again, reusing the upstream components from the cache."""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.dag import pipeline as nodes
from conftest import QUICK_ARGS, REPO
from serving_server import push_model

# ---------------------------------------------------------------------------------------------------------------
# The Pusher executor, driven directly with real artifacts and a real SavedModel.


def _manifest(model_dir: Path) -> dict:
    """Relative path -> size of every file of a model folder: what a complete copy must contain."""
    return {str(p.relative_to(model_dir)): p.stat().st_size for p in model_dir.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory):
    """A Trainer-style Model artifact folder (<uri>/Format-Serving/) holding a real SavedModel of a few MB."""
    import tensorflow as tf

    uri = tmp_path_factory.mktemp("model") / "model"
    module = tf.Module()
    module.table = tf.Variable(tf.random.stateless_normal([512, 1024], seed=[1, 2]))  # 2 MiB of variables
    module.bias = tf.Variable(tf.zeros([16]))
    module.score = tf.function(lambda x: tf.reduce_sum(module.table) * x,
                               input_signature=[tf.TensorSpec([], tf.float32)])
    serving = uri / "Format-Serving"
    tf.saved_model.save(module, str(serving))
    (serving / "assets").mkdir(exist_ok=True)
    (serving / "assets" / "vocab.txt").write_text("[PAD]\n[UNK]\n" * 1000)
    manifest = _manifest(serving)
    assert "saved_model.pb" in manifest and any(k.startswith("variables/") for k in manifest)
    return uri


class ServingDirWatcher(threading.Thread):
    """Polls a serving base directory the way TF Serving does (all-digit folders are versions) and records every
    version folder it sees that is not a complete copy of the model."""

    def __init__(self, base: Path, manifest: dict):
        super().__init__(daemon=True)
        self.base, self.manifest = base, manifest
        self.stop_event = threading.Event()
        self.incomplete, self.complete_seen, self.polls = [], 0, 0

    def check(self, version_dir: Path):
        missing = []
        for rel, size in self.manifest.items():
            try:
                actual = (version_dir / rel).stat().st_size
            except FileNotFoundError:
                actual = None
            if actual != size:
                missing.append(f"{rel}: {actual} of {size} bytes")
        return missing

    def run(self):
        while not self.stop_event.is_set():
            self.polls += 1
            names = os.listdir(self.base) if self.base.is_dir() else []
            for name in names:
                if name.isdigit():
                    missing = self.check(self.base / name)
                    if missing:
                        self.incomplete.append((name, missing[:3]))
                    else:
                        self.complete_seen += 1
            time.sleep(0.001)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=30)


@pytest.fixture
def slow_copy(monkeypatch):
    """Makes every file copy of TFX's fileio take a while and write each file in two halves, as a big model on a
    busy disk would, so that a non-atomic push is visible to a poller."""
    from tfx.dsl.io import fileio

    def copy(src, dst, overwrite=False):
        data = Path(src).read_bytes()
        with open(dst, "wb") as f:
            f.write(data[:len(data) // 2])
            f.flush()
            time.sleep(0.05)
            f.write(data[len(data) // 2:])
        time.sleep(0.05)

    monkeypatch.setattr(fileio, "copy", copy)


def _push_while_watching(executor_class, model_uri: Path, tmp_path: Path):
    base = tmp_path / "serving" / "bert_classifier"
    base.mkdir(parents=True)
    watcher = ServingDirWatcher(base, _manifest(model_uri / "Format-Serving"))
    watcher.start()
    try:
        pushed = push_model(executor_class, model_uri, base, tmp_path / "pushed_model")
        deadline = time.time() + 10
        while watcher.complete_seen == 0 and time.time() < deadline:  # let the watcher see the final state
            time.sleep(0.01)
    finally:
        watcher.stop()
    return base, pushed, watcher


def test_atomic_pusher_never_exposes_a_partial_version(model_uri, tmp_path, slow_copy):
    import tensorflow as tf

    from components.release.pusher import AtomicPusherExecutor

    base, pushed, watcher = _push_while_watching(AtomicPusherExecutor, model_uri, tmp_path)
    assert watcher.polls > 100 and watcher.complete_seen > 0
    assert watcher.incomplete == [], watcher.incomplete[:5]

    version = pushed.get_string_custom_property("pushed_version")
    assert pushed.get_int_custom_property("pushed") == 1 and version.isdigit()
    assert pushed.get_string_custom_property("pushed_destination") == str(base / version)
    assert os.listdir(base) == [version]  # the staging folder is gone
    assert _manifest(base / version) == _manifest(model_uri / "Format-Serving")
    assert _manifest(Path(pushed.uri)) == _manifest(model_uri / "Format-Serving")  # the archive copy
    loaded = tf.saved_model.load(str(base / version))
    assert float(loaded.score(tf.constant(0.0))) == 0.0


def test_the_watcher_catches_the_stock_pushers_partial_versions(model_uri, tmp_path, slow_copy):
    """The same harness against TFX's stock executor, which copies into the version folder file by file: the
    watcher does see incomplete versions, so the test above would fail for a non-atomic push."""
    from tfx.components.pusher.executor import Executor

    _, pushed, watcher = _push_while_watching(Executor, model_uri, tmp_path)
    assert pushed.get_int_custom_property("pushed") == 1
    assert watcher.incomplete, "the watcher did not notice a push that is not atomic"


def test_atomic_pusher_takes_the_next_free_version_and_cleans_up(model_uri, tmp_path):
    from components.release.pusher import STAGING_PREFIX, AtomicPusherExecutor

    base = tmp_path / "bert_classifier"
    now = int(time.time())
    for version in range(now, now + 4):  # folders already taken for the next few seconds' versions
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / "marker").write_text(str(version))
    stale, fresh = base / f"{STAGING_PREFIX}stale", base / f"{STAGING_PREFIX}fresh"
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (time.time() - 3 * 24 * 3600,) * 2)  # left by a push killed three days ago

    pushed = push_model(AtomicPusherExecutor, model_uri, base, tmp_path / "pushed_model")
    version = pushed.get_string_custom_property("pushed_version")
    assert int(version) >= now + 4
    assert _manifest(base / version) == _manifest(model_uri / "Format-Serving")
    for taken in range(now, now + 4):
        assert os.listdir(base / str(taken)) == ["marker"]
    assert not stale.exists() and fresh.exists()  # a recent one may belong to a push in progress elsewhere
    assert sorted(n for n in os.listdir(base) if n.startswith(".")) == [fresh.name]

    not_blessed = push_model(AtomicPusherExecutor, model_uri, base, tmp_path / "pushed_model_2", blessed=False)
    assert not_blessed.get_int_custom_property("pushed") == 0
    assert sorted(os.listdir(base)) == sorted([fresh.name, version] + [str(v) for v in range(now, now + 4)])


# ---------------------------------------------------------------------------------------------------------------
# Real runs of pipeline/run_local.py: a concurrent run is refused; a run SIGKILLed in the Trainer resumes.

# One epoch, no masked-LM stage and float32 are enough here (and keep the file's runtime down: the quick run tests
# those); the Trainer still runs for well over the watcher's polling interval.
CRASH_ARGS = [*QUICK_ARGS, "--epochs", "1", "--pretrain-epochs", "0", "--precision", "float32"]
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
    from pipeline.cli.summary import RunRecord

    base = tmp_path_factory.mktemp("crash")
    code = _snapshot_code(base / "code")
    root, serving = base / "root", base / "serving"
    args = [*CRASH_ARGS, "--pipeline-root", root, "--serving-dir", serving]
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
