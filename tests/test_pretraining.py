"""The masked-LM stage (components/modules/pretraining.py): it runs in the quick end-to-end run (tests/conftest.py's
QUICK_ARGS turn it on), adapts the encoder, and the fine-tuning Trainer starts from exactly its weights; without the
stage the Trainer starts from its checkpoint; the front door's checks of its flags; the Kubeflow spec with the stage."""

import dataclasses
import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest

from pipeline.cli import options
from pipeline.dag import pipeline as nodes
from pipeline.cli.inputs import InputError
from pipeline.run_local import build_parser as local_parser


def _latest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: int(p.name))


def _pretrainer_model(first_run) -> Path:
    return _latest(Path(first_run[0]["pipeline_root"]) / nodes.PRETRAINER / "model")


def test_the_stage_adapts_the_encoder_and_reports_it(first_run):
    from components.modules.pretraining import HISTORY_FILE

    model = _pretrainer_model(first_run)
    assert sorted(p.name for p in (model / "Format-Serving").iterdir()) == [
        "config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    record = json.loads((model / HISTORY_FILE).read_text())
    assert "initialised" in record["head"] or "new encoder" in record["head"]
    # Trained: the eval split's masked-LM loss fell (the eval texts are measured on, never trained on).
    assert record["history"]["val_loss"][-1] < record["before"]["loss"] - 0.5, record
    _, summary, proc = first_run
    assert f"{nodes.PRETRAINER} done" in proc.stdout and "eval masked-LM accuracy" in proc.stdout


def test_the_trainer_starts_from_exactly_the_adapted_weights(first_run):
    import tensorflow_transform as tft

    from components.model import mlm
    from components.modules import trainer
    from components.settings.trainer import TrainerSettings

    root = Path(first_run[0]["pipeline_root"])
    history = json.loads((_latest(root / nodes.TRAINER / "model") / "training_history.json").read_text())
    settings = TrainerSettings.from_custom_config(history["settings"])
    adapted = _pretrainer_model(first_run) / "Format-Serving"
    assert settings.adapted_encoder and history["started_from"] == str(adapted)
    assert settings.pretrained_dir is None  # the run's own checkpoint setting: none, an encoder from scratch
    graph = _latest(root / nodes.TRANSFORM / "transform_graph")
    start = dataclasses.replace(settings, pretrained_dir=history["started_from"])
    classifier = trainer._new_classifier(start, tft.TFTransformOutput(str(graph)), len(settings.label_names))
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


# ------------------------------------------------------------------------------------------------------------
# The front door


def _data(tmp_path: Path) -> Path:
    folder = tmp_path / "reviews"
    folder.mkdir(parents=True)
    (folder / "data.csv").write_text("text,label\n" + "good film,pos\nbad film,neg\n" * 3)
    return folder


def _local(tmp_path, *argv):
    args = local_parser().parse_args(["--data-root", str(_data(tmp_path)), "--pretrained", "none",
                                      "--pipeline-root", str(tmp_path / "root"), *map(str, argv)])
    return options.local_config(args)


def test_unlabeled_data_is_read_and_keyed_by_its_content(tmp_path):
    folder = tmp_path / "unlabeled"
    folder.mkdir()
    (folder / "a.txt").write_text("first text\n\nsecond text\n")
    (folder / "b.csv").write_text("id,text\n1,third text\n2,\n")
    (folder / "ignored.json").write_text("{}")
    config, _, notes = _local(tmp_path, "--pretrain-epochs", "2", "--unlabeled-data", folder)
    assert config.pretrainer.enabled and config.pretrainer.unlabeled_data == str(folder)
    assert config.trainer.adapted_encoder and config.pretrainer.pretrained_dir is None
    assert any("unlabeled data: 3 texts" in note for note in notes)
    digest = config.pretrainer.unlabeled_digest
    (folder / "a.txt").write_text("first text\nsecond text\na new one\n")
    assert _local(tmp_path / "again", "--pretrain-epochs", "2", "--unlabeled-data", folder)[0] \
        .pretrainer.unlabeled_digest != digest
    from components.settings.pretraining import PretrainerSettings

    settings = PretrainerSettings.from_custom_config(config.pretrainer.to_custom_config())
    assert settings == config.pretrainer


@pytest.mark.parametrize("setup, argv, fragment", [
    (None, ["--pretrain-epochs", "1", "--unlabeled-data", "{tmp}/nowhere"], "no such folder"),
    ("empty", ["--pretrain-epochs", "1", "--unlabeled-data", "{tmp}/u"], "has no .csv or .txt file"),
    ("csv", ["--pretrain-epochs", "1", "--unlabeled-data", "{tmp}/u"], "has no column 'text'"),
    ("txt", ["--unlabeled-data", "{tmp}/u"], "pass --pretrain-epochs N"),
    (None, ["--pretrain-epochs", "1", "--warm-start"], "--warm-start and --pretrain-epochs exclude each other"),
    (None, ["--pretrain-epochs", "-1"], "must be 0 (off) or positive"),
    (None, ["--pretrain-epochs", "1", "--masking-rate", "0"], "'masking_rate' must be above 0"),
])
def test_the_stage_flags_are_checked_in_one_sentence(tmp_path, setup, argv, fragment):
    folder = tmp_path / "u"
    if setup:
        folder.mkdir()
        if setup == "csv":
            (folder / "x.csv").write_text("review\nsome text\n")
        if setup == "txt":
            (folder / "x.txt").write_text("some text\n")
    with pytest.raises(InputError) as error:
        _local(tmp_path, *[a.format(tmp=tmp_path) for a in argv])
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_the_kubeflow_spec_runs_the_stage_before_the_trainer(tmp_path):
    from pipeline.kubeflow import cli as kfp_cli

    output = tmp_path / "spec.json"
    assert kfp_cli.main(["compile", "--output", str(output), "--pipeline-root", "gs://b/root", "--pretrain-epochs",
                         "2", "--whole-word-masking", "--unlabeled-data", "gs://b/unlabeled"]) == 0
    spec = json.loads(output.read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert nodes.PRETRAINER in tasks[nodes.TRAINER]["dependentTasks"]
    base_model = tasks[nodes.TRAINER]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]
    assert base_model == {"producerTask": nodes.PRETRAINER, "outputArtifactKey": "model"}
    config = json.loads(tasks[nodes.PRETRAINER]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert config["pretrain_epochs"] == 2 and config["whole_word_masking"] is True
    assert config["unlabeled_data"] == "gs://b/unlabeled"
    executor = spec["deploymentSpec"]["executors"][spec["components"][tasks[nodes.PRETRAINER]["componentRef"]["name"]]
                                                   ["executorLabel"]]["container"]
    assert "components.modules.pretraining.run_fn" in json.dumps(executor) or "run_fn" in json.dumps(tasks[nodes.PRETRAINER])
