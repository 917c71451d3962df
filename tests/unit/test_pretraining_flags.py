"""The masked-LM stage's flags (components/module_files/pretraining.py's settings): the front door's checks of them,
each in one sentence, and the unlabeled data keyed by its content. The stage in a pipeline run:
tests/e2e/test_pretraining.py; in the compiled Kubeflow spec: tests/integration/test_kubeflow.py."""

from pathlib import Path

import pytest

from pipeline.cli import local_run
from pipeline.cli.errors import InputError
from pipeline.run_local import build_parser as local_parser

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
    plan = local_run.plan(args)
    return plan.config, plan.warnings, plan.notes


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
