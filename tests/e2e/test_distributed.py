"""Distributed training, for real: two processes on 127.0.0.1 train under MultiWorkerMirroredStrategy (gRPC collectives
on the CPU) through the project's run_fn (`python -m pipeline.train_job`, each with its own TF_CONFIG as a TFJob sets
it), on the quick run's transformed data, next to one process training on the same global batches.

Synchronous data parallelism is the same maths as one process on the global batch: each step, the replicas' gradients
of the global-batch mean loss are summed. So the two must agree up to float32 summation order; the stated tolerance is
1e-5 on every logged loss (measured: 1e-7). The encoder here has no dropout (a random tiny checkpoint with dropout 0,
and --dropout 0): dropout masks are drawn per replica, so with dropout the two runs differ by design.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components.model import bert, distribution
from support.checkpoints import hf_tensors, write_checkpoint
from support.signatures import check_signatures

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5
STEPS = 12
PER_REPLICA_BATCH = 8


def _latest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)


def _train_job(args, env_extra, log: Path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update({"TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO), **env_extra})
    return subprocess.Popen([sys.executable, "-m", "pipeline.train_job", *map(str, args)], cwd=REPO, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def runs(first_run, tmp_path_factory):
    """Trains twice from the quick run's Transform outputs: a chief and a worker (per-replica batch 8, global 16), and
    one process with batch 16; all three at once. Returns a dict of paths and histories."""
    paths, _, _ = first_run
    root = Path(paths["pipeline_root"])
    examples = _latest(root / "Transform" / "transformed_examples")
    graph = _latest(root / "Transform" / "transform_graph")
    settings = json.loads((_latest(root / "Trainer" / "model") / "training_history.json").read_text())["settings"]

    base = tmp_path_factory.mktemp("distributed")
    vocab = Path(settings["vocab_file"])
    config = bert.BertConfig(vocab_size=sum(1 for _ in vocab.open(encoding="utf-8")), hidden_size=32, num_layers=2,
                             num_heads=2, intermediate_size=64, max_position_embeddings=128, hidden_dropout=0.0,
                             attention_dropout=0.0)
    checkpoint = write_checkpoint(base / "checkpoint", config, hf_tensors(config, seed=3), vocab=vocab)
    settings.update(pretrained_dir=str(checkpoint), dropout=0.0, epochs=1, learning_rate=5e-3, distribution="auto",
                    precision="float32",  # the float32 maths is what the tolerance is stated for
                    adapted_encoder=False)  # from the checkpoint
    for name, batch in (("single", 2 * PER_REPLICA_BATCH), ("multi", PER_REPLICA_BATCH)):
        (base / f"{name}.json").write_text(json.dumps(dict(settings, batch_size=batch)))

    tf_configs = dict(zip(("chief", "worker"), distribution.localhost_cluster(2)))
    common = ["--examples", examples, "--transform-graph", graph, "--train-steps", STEPS]
    procs = {}
    for task in ("chief", "worker"):
        scratch = base / f"tmp-{task}"  # the worker's temporary folders go here: checked empty afterwards
        scratch.mkdir()
        procs[task] = _train_job([*common, "--model-dir", base / task / "model", "--config", base / "multi.json"],
                                 {"TF_CONFIG": tf_configs[task], "TMPDIR": str(scratch)}, base / f"{task}.log")
    procs["single"] = _train_job([*common, "--model-dir", base / "single" / "model", "--config", base / "single.json"],
                                 {}, base / "single.log")
    try:
        codes = {name: proc.wait(timeout=600) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    logs = {name: (base / f"{name}.log").read_text() for name in procs}
    for name, code in codes.items():
        assert code == 0, f"{name} failed:\n{logs[name][-6000:]}"

    def history(name):
        return json.loads((base / name / "model" / "training_history.json").read_text())

    return {"base": base, "logs": logs, "multi": history("chief"), "single": history("single")}


def test_both_workers_finish_and_only_the_chief_keeps_what_it_writes(runs):
    base = runs["base"]
    assert (base / "chief" / "model" / "Format-Serving" / "saved_model.pb").is_file()
    assert (base / "chief" / "model" / "Format-Serving" / "variables" / "variables.index").is_file()
    assert "trained:" in runs["logs"]["chief"]
    # The worker ran the same saving code into a temporary folder, deleted afterwards; its --model-dir stays unmade.
    assert not (base / "worker" / "model").exists()
    assert "worker:0 (writes to a temporary folder)" in runs["logs"]["worker"]
    assert list((base / "tmp-worker").iterdir()) == []
    assert "MultiWorkerMirroredStrategy, 2 replica(s), task chief:0; global batch 16" in runs["logs"]["chief"]
    assert runs["multi"]["replicas"] == 2 and runs["multi"]["global_batch_size"] == 16
    assert runs["single"]["replicas"] == 1 and runs["single"]["global_batch_size"] == 16


def test_loss_equals_one_process_on_the_same_global_batches(runs):
    multi, single = runs["multi"], runs["single"]
    assert len(multi["step_loss"]) == len(single["step_loss"]) == STEPS
    # After every step (Keras' running mean of the epoch so far), and the epoch's train and eval loss.
    np.testing.assert_allclose(multi["step_loss"], single["step_loss"], atol=TOLERANCE, rtol=0)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(multi["history"][key], single["history"][key], atol=TOLERANCE, rtol=0,
                                   err_msg=key)
    # The tolerance is small next to what training changed: the losses of single steps move by far more.
    mean = np.asarray(single["step_loss"])
    per_step = mean * np.arange(1, STEPS + 1) - np.concatenate([[0.0], mean[:-1] * np.arange(1, STEPS)])
    assert per_step.max() - per_step.min() > 1000 * TOLERANCE


def test_the_chiefs_export_passes_the_signature_checks_and_predicts_like_the_single_process_model(runs):
    base = runs["base"]
    texts = ["a warm, funny and moving film", "dull, overlong and badly acted"]
    import tensorflow as tf

    results = []
    for name in ("chief", "single"):
        loaded = check_signatures(base / name / "model" / "Format-Serving", max_seq_length=64)
        results.append(loaded.signatures["serving_default"](text=tf.constant(texts))["probabilities"].numpy())
    np.testing.assert_allclose(results[0], results[1], atol=1e-4)
    np.testing.assert_allclose(results[0].sum(axis=1), 1.0, atol=1e-5)


def test_train_job_refuses_missing_inputs_and_bad_configs_in_one_line(first_run, tmp_path, monkeypatch, capsys):
    from pipeline import train_job

    monkeypatch.delenv("TF_CONFIG", raising=False)
    root = Path(first_run[0]["pipeline_root"])
    examples = _latest(root / "Transform" / "transformed_examples")
    graph = _latest(root / "Transform" / "transform_graph")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"epochs": 1}))
    cases = [
        (["--examples", tmp_path / "nowhere", "--transform-graph", graph], "--examples", "no such folder"),
        (["--examples", graph, "--transform-graph", graph], "--examples", "no Split-train/"),
        (["--examples", examples, "--transform-graph", examples], "--transform-graph", "not a Transform output"),
        (["--examples", examples, "--transform-graph", graph], f"--config {config}", "missing key(s)"),
    ]
    for args, flag, fragment in cases:
        assert train_job.main([*map(str, args), "--model-dir", str(tmp_path / "m"), "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert flag in err and fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "m").exists()
