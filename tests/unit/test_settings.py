"""The settings contract (components/settings/base.py) and the front door (pipeline/cli/), on small in-memory
inputs.

Each setting is defined once, in its component's dataclass; these tests prove that every one of them reaches both
runners with the same default, travels as a strict custom_config, and that the checks across settings refuse a bad
command line with one sentence before anything runs. (The compiled spec's runtime parameter and `--param` are
checked for every Trainer setting in test_kubeflow.py.)
"""

import argparse
import csv
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from components.settings import base as settings_lib
from components.settings.data import DataSettings, component_config, read_config
from components.settings.distillation import DistillerSettings
from components.settings.encoder import EncoderTrainingSettings, shared_fields
from components.settings.evaluator import EvaluatorSettings
from components.settings.pretraining import PretrainerSettings
from components.settings.serving_loop import ServingLoopSettings
from components.settings.trainer import FINETUNE_LEARNING_RATE, SCRATCH_LEARNING_RATE, TrainerSettings, hyperparameters
from components.settings.transform import TransformSettings
from components.settings.unlabeled import UnlabeledTextSettings
from pipeline.cli import local_run
from pipeline.cli.errors import InputError
from pipeline.cli.flags import IMAGE_CHECKPOINT
from pipeline.data import assets
from pipeline.kubeflow import cli as kfp_cli
from pipeline.kubeflow import compile_config
from pipeline.run_local import build_parser as local_parser

SETTINGS = (DataSettings, TransformSettings, TrainerSettings, EvaluatorSettings, PretrainerSettings, DistillerSettings,
            ServingLoopSettings)
# default None: chosen from --pretrained (the vocabulary), from --dataset (the label columns)
CHOSEN_BY_THE_FRONT_DOOR = {"vocab_mode", "learned_vocab_size", "label_key"}


def _compile_parser() -> argparse.ArgumentParser:
    parser = kfp_cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices["compile"]


def _action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def _a_value(cls, field):
    """A valid value of a setting other than its default (to see it pass through a parser)."""
    default = field.metadata["default_by"](cls()) if field.metadata["default_by"] else field.default
    if field.metadata["choices"]:
        return next(c for c in field.metadata["choices"] if c != default)
    kind = type(default)
    if kind is bool:
        return not default
    if kind is int:
        return default + 1
    if kind is float:
        return round(default / 2, 6) or 0.5
    return default + "x"


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_setting_is_a_flag_or_derived_and_documented(cls):
    for field in dataclasses.fields(cls):
        meta = field.metadata
        assert bool(meta["flag"]) != bool(meta["derived"]), f"{cls.__name__}.{field.name}: a flag or derived"
        if meta["flag"]:
            assert meta["help"], f"{cls.__name__}.{field.name} has no help text"


@pytest.mark.parametrize("parser_of", [local_parser, _compile_parser], ids=["run_local", "run_kubeflow compile"])
@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_flag_is_offered_with_the_dataclass_default(cls, parser_of):
    parser = parser_of()
    for field in settings_lib.flag_fields(cls):
        action = _action(parser, field.metadata["flag"])
        assert action.dest == field.name
        expected = None if field.name in CHOSEN_BY_THE_FRONT_DOOR else field.default
        if field.metadata["auto"]:
            expected = settings_lib.AUTO  # chosen from the data (--max-seq-length auto)
            assert parser.parse_args(["--output", "x.json"] if parser_of is _compile_parser else []
                                     ).max_seq_length == settings_lib.AUTO
        assert action.default == expected, (field.name, action.default)
        assert field.metadata["help"].split(" (")[0] in action.help
        value = _a_value(cls, field)
        required = ["--output", "x.json"] if parser_of is _compile_parser else []
        argv = required + ([field.metadata["flag"]] if value is True else
                           [field.metadata["flag"], str(value)])
        if value is False:  # a flag that is on by default would need a --no- form; none exists yet
            pytest.fail(f"{field.name} defaults to True but is a store_true flag")
        assert getattr(parser.parse_args(argv), field.name) == value, field.name


def test_hyperparameters_are_the_trainer_settings_with_a_flag():
    names = {f.name for f in hyperparameters()}
    assert names == {"model_size", "pooling", "epochs", "batch_size", "learning_rate", "weight_decay", "warmup_ratio",
                     "layer_decay", "dropout", "early_stopping_patience", "seed", "distribution", "precision",
                     "warm_start", "task_weights", "class_weights"}


def test_custom_config_round_trip_is_strict():
    trainer, data = TrainerSettings(pretrained_dir="/ckpt", epochs=5), DataSettings(vocab_file="/v.txt")
    config = component_config(trainer, data, "abc123")
    assert json.loads(json.dumps(config)) == config and config["code_version"] == "abc123"
    assert set(config) == {f.name for cls in (TrainerSettings, DataSettings) for f in dataclasses.fields(cls)} | {
        "code_version"}
    assert read_config(TrainerSettings, config) == (trainer, data)

    partial = {k: v for k, v in config.items() if k not in ("pretrained_dir", "seed")}
    with pytest.raises(settings_lib.SettingsError) as error:
        read_config(TrainerSettings, partial)
    assert "Trainer custom_config has missing key(s) pretrained_dir, seed" in str(error.value)
    with pytest.raises(settings_lib.SettingsError, match="holds the data settings too: .* missing key\\(s\\) text_key"):
        read_config(TrainerSettings, {k: v for k, v in config.items() if k != "text_key"})
    with pytest.raises(settings_lib.SettingsError, match="unknown key\\(s\\) epoch_count"):
        read_config(TrainerSettings, {**config, "epoch_count": 3})
    with pytest.raises(settings_lib.SettingsError, match="Trainer setting 'epochs' must be int, not '5'"):
        read_config(TrainerSettings, {**config, "epochs": "5"})
    with pytest.raises(settings_lib.SettingsError, match="Trainer setting 'pooling' must be one of cls, mean"):
        read_config(TrainerSettings, {**config, "pooling": "max"})
    with pytest.raises(settings_lib.SettingsError, match="must be a JSON object"):
        read_config(TrainerSettings, None)
    # An integer where a float is expected is a float (JSON has one number type).
    assert read_config(TrainerSettings, {**config, "learning_rate": 1})[0].learning_rate == 1.0
    with pytest.raises(settings_lib.SettingsError, match="Transform custom_config has missing key"):
        read_config(TransformSettings, {"text_key": "text"})


def test_each_setting_is_declared_by_one_class_and_the_data_once():
    """The columns, classes and vocabulary are the data's settings alone: no component's class declares one again
    (Transform and the Trainers read them from the same object of their custom_config), so a PipelineConfig has one
    DataSettings and nothing to cross-check."""
    from pipeline.dag.config import PipelineConfig

    owners = {}
    for cls in SETTINGS + (EncoderTrainingSettings, UnlabeledTextSettings):
        for field in settings_lib.declared_fields(cls):
            owners.setdefault(field.name, []).append(cls.__name__)
    assert {name: classes for name, classes in owners.items() if len(classes) > 1} == {}
    data_fields = {f.name for f in dataclasses.fields(DataSettings)}
    assert {"text_key", "label_key", "label_names", "task_label_names", "vocab_file", "lower_case"} <= data_fields
    for cls in (TransformSettings, TrainerSettings, PretrainerSettings):
        assert not data_fields & {f.name for f in dataclasses.fields(cls)}, cls.__name__
    assert not hasattr(PipelineConfig, "__post_init__")
    assert [f.name for f in dataclasses.fields(PipelineConfig) if f.type in ("DataSettings", DataSettings)] == ["data"]


def test_the_learning_rate_default_follows_the_checkpoint_by_its_named_rule():
    """One rule, beside the field (trainer.default_learning_rate): no front door chooses it again."""
    assert TrainerSettings(pretrained_dir="/ckpt").learning_rate == FINETUNE_LEARNING_RATE
    assert TrainerSettings().learning_rate == SCRATCH_LEARNING_RATE
    assert TrainerSettings(pretrained_dir="/ckpt", learning_rate=0.3).learning_rate == 0.3
    config = TrainerSettings(pretrained_dir="/ckpt").to_custom_config()
    assert config["learning_rate"] == FINETUNE_LEARNING_RATE  # the custom_config holds the value, never null
    with pytest.raises(settings_lib.SettingsError, match="Trainer setting 'learning_rate' must not be null"):
        TrainerSettings.from_custom_config({**config, "learning_rate": None})


def test_the_shared_training_settings_are_declared_once_and_copied_whole():
    """TrainerSettings and PretrainerSettings extend EncoderTrainingSettings: neither re-declares a shared field, one
    flag sets both, and the Pretrainer copies every shared field from the Trainer."""
    shared = set(shared_fields())
    assert {"batch_size", "precision", "seed", "pretrained_dir"} <= shared
    for cls in (TrainerSettings, PretrainerSettings):
        assert issubclass(cls, EncoderTrainingSettings)
        assert not shared & {f.name for f in settings_lib.declared_fields(cls)}, cls.__name__
    trainer = TrainerSettings(pretrained_dir="/ckpt", batch_size=7, seed=3,
                              precision="mixed_bfloat16", weight_decay=0.2, warmup_ratio=0.3)
    pretrainer = PretrainerSettings.derived_from(trainer, pretrain_epochs=1)
    assert {name: getattr(pretrainer, name) for name in shared} == {name: getattr(trainer, name) for name in shared}
    parser = local_parser()
    assert sum("--batch-size" in a.option_strings for a in parser._actions) == 1
    assert {a.dest for a in parser._actions} >= {"pretrain_epochs", "masking_rate", "batch_size"}


def test_value_checks_apply_to_constructed_settings_too():
    with pytest.raises(settings_lib.SettingsError, match="'epochs' must be positive"):
        TrainerSettings(epochs=0)
    with pytest.raises(settings_lib.SettingsError, match="'dropout' must be between 0 and 1"):
        TrainerSettings(dropout=1.5)
    with pytest.raises(settings_lib.SettingsError, match="'min_accuracy' must be between 0 and 1"):
        EvaluatorSettings(min_accuracy=80.0)


def test_run_fn_refuses_a_partial_trainer_config_before_anything_else():
    """What a Kubeflow user who edits trainer_config in the UI and leaves out a key gets: an error naming it, not a
    model trained from scratch."""
    from components.module_files import trainer

    config = component_config(TrainerSettings(pretrained_dir="/ckpt"), DataSettings(vocab_file="/v.txt"))
    del config["pretrained_dir"]
    with pytest.raises(settings_lib.SettingsError, match="missing key\\(s\\) pretrained_dir"):
        trainer.run_fn(SimpleNamespace(custom_config=config))


# ----------------------------------------------------------------------------------------------------------------
# The front door: command line -> PipelineConfig

def _checkpoint(tmp_path: Path, positions: int = 64, lower_case=None) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": positions}))
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n")
    (folder / "model.safetensors").write_bytes(b"not read before the run")
    if lower_case is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lower_case}))
    return folder


def _data(tmp_path: Path, rows=(("good film", "pos"), ("bad film", "neg")) * 3) -> Path:
    folder = tmp_path / "reviews"
    folder.mkdir(parents=True)
    with open(folder / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return folder


def _local(*argv):
    plan = local_run.plan(local_parser().parse_args([str(a) for a in argv]))
    config, warnings = plan.config, list(plan.warnings)
    return config, warnings


def test_local_config_from_a_checkpoint(tmp_path):
    ckpt = _checkpoint(tmp_path, lower_case=False)
    config, warnings = _local("--data-root", _data(tmp_path), "--pretrained", ckpt, "--pipeline-root",
                              tmp_path / "root", "--epochs", "4", "--max-seq-length", "64")
    assert warnings == []
    assert config.data.vocab_mode == "checkpoint" and config.data.lower_case is False  # tokenizer_config
    assert config.data.vocab_file == str(ckpt / "vocab.txt")
    assert config.trainer.pretrained_dir == str(ckpt) and config.trainer.epochs == 4
    assert config.trainer.learning_rate == FINETUNE_LEARNING_RATE  # fine-tuning
    assert config.label_names == ("neg", "pos")
    assert config.pipeline_root == str(tmp_path / "root") and config.dataset == "custom"
    assert config.input_splits == () and not config.use_spans


def test_local_config_from_scratch_learns_a_vocabulary_with_a_larger_learning_rate(tmp_path):
    config, _ = _local("--data-root", _data(tmp_path), "--pretrained", "none", "--vocab-size", "500")
    assert config.data.vocab_mode == "learn" and config.data.vocab_file == ""
    assert config.transform.learned_vocab_size == 500 and config.data.lower_case is True
    assert config.trainer.pretrained_dir is None and config.trainer.learning_rate == SCRATCH_LEARNING_RATE
    config, _ = _local("--data-root", _data(tmp_path / "b"), "--pretrained", "none", "--learning-rate", "0.01")
    assert config.trainer.learning_rate == 0.01


@pytest.mark.parametrize("argv, fragments", [
    (["--max-seq-length", "128"], ["--max-seq-length 128", "max_position_embeddings", "config.json", "64"]),
    (["--vocab", "learn"], ["--vocab learn cannot be used with --pretrained"]),
    (["--vocab-size", "500"], ["--vocab-size applies only to a learned vocabulary"]),
])
def test_cross_setting_checks_fail_with_one_sentence_before_reading_data(tmp_path, argv, fragments):
    ckpt = _checkpoint(tmp_path, positions=64)
    with pytest.raises(InputError) as error:  # the data root does not even exist: the checks come first
        _local("--data-root", tmp_path / "nowhere", "--pretrained", ckpt, *argv)
    for fragment in fragments:
        assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_scratch_encoder_positions_bound_the_sequence_length(tmp_path):
    with pytest.raises(InputError, match="--max-seq-length 600 is more than the --model-size tiny encoder's"):
        _local("--data-root", tmp_path, "--pretrained", "none", "--model-size", "tiny", "--max-seq-length", "600")


def test_not_a_checkpoint_folder(tmp_path):
    with pytest.raises(InputError, match="is not a BERT checkpoint folder"):
        _local("--data-root", _data(tmp_path), "--pretrained", tmp_path / "empty")


def test_kubeflow_config_reads_the_packaged_checkpoint_for_its_image_path():
    assets.ensure_checkpoint()
    args = _compile_parser().parse_args(["--output", "x.json", "--pipeline-root", "gs://b/r"])
    config = compile_config.kubeflow_config(args)
    assert config.trainer.pretrained_dir == IMAGE_CHECKPOINT
    assert config.data.vocab_file == f"{IMAGE_CHECKPOINT}/vocab.txt"
    assert config.data.lower_case is True  # all-MiniLM-L6-v2's tokenizer_config says do_lower_case
    assert config.serving_dir == "gs://b/r/serving" and config.orchestrator == "kubeflow"
    assert set(config.label_names) == {"fresh", "rotten"}  # from schema/rotten_tomatoes/schema.pbtxt
    for argv, fragment in [(["--max-seq-length", "1024"], "max_position_embeddings"),
                           (["--spans-window", "2"], "span-range resolver"),
                           (["--pretrained", "relative/ckpt"], "must be a URI")]:
        with pytest.raises(InputError, match=fragment):
            compile_config.kubeflow_config(_compile_parser().parse_args(
                ["--output", "x.json", "--pipeline-root", "gs://b/r", *argv]))


def test_a_pairs_length_is_both_texts_and_three_special_tokens():
    """--max-seq-length auto and the time plan count a pair as the model reads it: [CLS] a [SEP] b [SEP]."""
    from pipeline.planning import sequence_length

    vocab = str(assets.ensure_checkpoint() / "vocab.txt")
    pairs = [(" ".join(["good"] * n), " ".join(["bad"] * (2 * n))) for n in range(1, 41)]
    counts = sequence_length.token_counts(pairs, vocab, True)
    assert counts == [3 * n + 3 for n in range(1, 41)]
    assert sequence_length.covering(sorted(counts), 512) == 128  # 98% of 40 pairs: the 40th (123) fits in 128
    # estimated from the words: ceil(1.3 * words) of each text, and the three special tokens
    assert sequence_length.token_counts(pairs[:2], "", True) == [2 + 3 + 3, 3 + 6 + 3]


def test_data_settings_name_one_text_column_or_a_pair():
    pair = DataSettings("question, passage", "label", vocab_mode="learn")
    assert (pair.text_columns, pair.pairs) == (("question", "passage"), True)
    assert DataSettings("text", "label", vocab_mode="learn").text_columns == ("text",)
    with pytest.raises(settings_lib.SettingsError, match="data setting 'text_key': --text-column 'a,b,c' names 3 "):
        DataSettings("a,b,c", "label", vocab_mode="learn")
    with pytest.raises(settings_lib.SettingsError, match="column 'label' is named by both --text-column and --label"):
        DataSettings("text,label", "label", vocab_mode="learn")


def test_a_local_plan_of_pairs_carries_both_columns_and_refuses_unlabeled_texts(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    with open(folder / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "passage", "label"])
        writer.writerows([("open today?", "yes, until six", "yes"), ("open today?", "the cake is sweet", "no")] * 3)
    config, _ = _local("--data-root", folder, "--text-column", "question,passage", "--pretrained", "none")
    assert config.data.text_columns == ("question", "passage")
    with pytest.raises(InputError, match="--unlabeled-data takes texts of one column, but --text-column "
                                         "'question,passage' names a pair"):
        _local("--data-root", folder, "--text-column", "question,passage", "--pretrained", "none",
               "--pretrain-epochs", "1", "--unlabeled-data", folder)


def test_auto_sequence_length_covers_the_training_texts(tmp_path):
    """--max-seq-length auto: the shortest multiple of 32 that holds 98% of the texts whole, capped by the encoder."""
    from pipeline.planning import sequence_length

    def choose(texts, vocab_file, lower_case, cap):  # (length, texts cut, texts seen) without a time budget
        counts = sequence_length.sample_counts(texts, vocab_file, lower_case)
        length = sequence_length.covering(counts, cap)
        return length, sequence_length.cut_by(counts, length), len(counts)

    vocab = str(assets.ensure_checkpoint() / "vocab.txt")
    texts = [" ".join(["good"] * n) for n in range(1, 101)]  # 1..100 words, one WordPiece token each
    length, cut, seen = choose(texts, vocab, True, cap=512)
    assert (length, cut, seen) == (128, 0, 100)  # 98 words + [CLS] + [SEP] = 100 tokens -> 128
    length, cut, seen = choose(texts, vocab, True, cap=64)
    assert (length, cut) == (64, 38)  # texts of 63..100 words do not fit in 64 tokens
    assert choose(["a b c"] * 10, vocab, True, cap=512)[0] == 32  # never below 32
    # Without a vocabulary (one to be learned): estimated from the words.
    estimated, _, _ = choose(texts, "", True, cap=512)
    assert estimated == 160  # ceil(98 * 1.3) + 2 = 130 -> 160
    args = local_parser().parse_args(["--data-root", str(_data(tmp_path)), "--pretrained", "none",
                                      "--vocab", "checkpoint"])
    plan = local_run.plan(args)
    config, notes = plan.config, plan.notes
    assert config.transform.max_seq_length == 32 and "--max-seq-length auto: 32 tokens" in notes[0]


def test_infra_validator_needs_a_docker_daemon_and_wires_the_pinned_serving_image(tmp_path, monkeypatch):
    """--infra-validator: refused in one line without a Docker daemon (none here); with one, TFX's InfraValidator runs
    the pinned tensorflow/serving image after the ServingCheck, before the Evaluator, and the Pusher takes its
    blessing."""
    from pipeline.dag import nodes
    from pipeline.dag.pipeline import create_pipeline

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    args = ["--data-root", _data(tmp_path), "--pretrained", _checkpoint(tmp_path, lower_case=True),
            "--pipeline-root", tmp_path / "root", "--max-seq-length", "64"]
    with pytest.raises(InputError, match="--infra-validator needs a Docker daemon"):
        _local(*args, "--infra-validator")
    config, _ = _local(*args)
    assert config.infra_validator is False
    built = {c.id: c for c in create_pipeline(dataclasses.replace(config, infra_validator=True)).components}
    validator = built[nodes.INFRA_VALIDATOR]
    spec = json.loads(validator.exec_properties["serving_spec"])  # TFX keeps proto properties as JSON
    assert spec["tensorflow_serving"] == {"image_name": "tensorflow/serving", "tags": ["2.16.1"]}
    assert "local_docker" in spec and spec["model_name"] == "bert_classifier"
    request = json.loads(validator.exec_properties["request_spec"])
    assert request["tensorflow_serving"] == {"signature_names": ["classification", "serving_examples"]}
    assert request["split_name"] == "eval"
    assert nodes.SERVING_CHECK in {n.id for n in validator.upstream_nodes} and nodes.INFRA_VALIDATOR in {
        n.id for n in built[nodes.EVALUATOR].upstream_nodes}
    assert built[nodes.PUSHER].inputs["infra_blessing"].producer_component_id == nodes.INFRA_VALIDATOR
    assert nodes.INFRA_VALIDATOR not in {c.id for c in create_pipeline(config).components}


def test_the_auto_length_note_says_what_it_counted():
    """The training split's texts only where the data has a train/ folder; else every row, said so; a sample, named."""
    from pipeline.planning.sequence_length import counted_texts

    assert counted_texts(2225, 2225, train_folder=False) == "the 2225 texts"
    assert counted_texts(5000, 12808, train_folder=False) == "a sample of 5000 of the 12808 texts"
    assert counted_texts(1800, 1800, train_folder=True) == "the 1800 training texts"
