"""Crash safety of the push: the AtomicPusher's executor, driven directly with real artifacts and a real SavedModel,
never lets a poller of the serving folder (as TF Serving polls it) see a partial version, where TFX's stock Pusher
does. One run at a time per pipeline root, and a run killed in the Trainer, are tests/e2e/test_crash_safety.py's."""

import os
import time
from pathlib import Path

import pytest

from support.serving_server import ServingDirWatcher, push_model

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
