"""The masked-LM stage (components/module_files/pretraining.py) in a pipeline run: on support/retraining.py's own data
and tiny model, it adapts the encoder and the fine-tuning Trainer starts from exactly its weights; without the stage
(the `served` run) the Trainer starts from its checkpoint. On an object store, with unlabeled texts:
tests/e2e/test_object_store.py. Its flags: tests/unit/test_pretraining_flags.py."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.dag import nodes
from support import run_local
from support.retraining import ARGS, GOOD_RUN, rows, write_csv


def _latest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: int(p.name))


@pytest.fixture(scope="module")
def adapted_run(tmp_path_factory):
    """(pipeline root, summary, process) of a run with two masked-LM epochs before fine-tuning, at the rate the
    tiny model needs (test_multi_task.py's)."""
    base = tmp_path_factory.mktemp("pretraining")
    write_csv(base / "data" / "span-1" / "reviews.csv", rows())
    proc = run_local(*ARGS, *GOOD_RUN, "--pretrain-epochs", "2", "--pretrain-learning-rate", "1e-3",
                     "--data-root", base / "data",
                     "--pipeline-root", base / "root", "--serving-dir", base / "serving",
                     "--summary-json", base / "summary.json")
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return base / "root", json.loads((base / "summary.json").read_text()), proc


def _pretrainer_model(adapted_run) -> Path:
    return _latest(adapted_run[0] / nodes.PRETRAINER / "model")


def test_the_stage_adapts_the_encoder_and_reports_it(adapted_run):
    from components.features import PRETRAINING_HISTORY_FILE

    model = _pretrainer_model(adapted_run)
    assert sorted(p.name for p in (model / "Format-Serving").iterdir()) == [
        "config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    record = json.loads((model / PRETRAINING_HISTORY_FILE).read_text())
    assert "initialised" in record["head"] or "new encoder" in record["head"]
    # Trained: the eval split's masked-LM loss fell (the eval texts are measured on, never trained on).
    assert record["history"]["val_loss"][-1] < record["before"]["loss"] - 0.5, record
    _, summary, proc = adapted_run
    assert summary["components"][nodes.PRETRAINER]["state"] == "COMPLETE" and summary["pushed"], summary
    assert f"{nodes.PRETRAINER} done" in proc.stdout and "eval masked-LM accuracy" in proc.stdout


def test_the_trainer_starts_from_exactly_the_adapted_weights(adapted_run):
    import tensorflow_transform as tft

    from components.model import mlm
    from components.module_files import trainer
    from components.settings.data import read_config
    from components.settings.trainer import TrainerSettings

    root = adapted_run[0]
    history = json.loads((_latest(root / nodes.TRAINER / "model") / "training_history.json").read_text())
    settings, data = read_config(TrainerSettings, history["settings"])
    adapted = _pretrainer_model(adapted_run) / "Format-Serving"
    assert settings.adapted_encoder and history["started_from"] == str(adapted)
    graph = _latest(root / nodes.TRANSFORM / "transform_graph")
    start = dataclasses.replace(settings, pretrained_dir=history["started_from"])
    vocab_file = trainer.tokenizer_vocab_file(data, tft.TFTransformOutput(str(graph)))
    classifier = trainer._new_classifier(start, vocab_file, len(data.label_names))
    start = {w.name: w.numpy() for w in classifier.get_layer("bert_encoder").weights}
    reference = {w.name: w.numpy() for w in mlm.load_pretrained_mlm(adapted).encoder.weights}
    assert start.keys() == reference.keys() and len(start) > 10
    assert all(np.array_equal(start[name], reference[name]) for name in start)


def test_without_the_stage_the_trainer_starts_from_its_checkpoint(served):
    base, summary = served
    root = base / "root"
    assert not (root / nodes.PRETRAINER).exists()
    history = json.loads((_latest(root / nodes.TRAINER / "model") / "training_history.json").read_text())
    assert history["settings"]["adapted_encoder"] is False
    assert history["started_from"] == history["settings"]["pretrained_dir"]
