"""`--unlabeled-data` as a request-log prefix (components/module_files/unlabeled.py): the texts the server logged,
of every kind of request; the files a step reads are the files the front door digested, whatever the server logs
meanwhile; and the front door's checks of --distill-unlabeled. The texts through a real transform graph into the
Distiller's transfer set: tests/integration/test_unlabeled_transfer.py."""

import os
import time
from pathlib import Path

import pytest

from components.module_files import unlabeled
from components.tf_serving import request_log
from pipeline.cli import local_run
from pipeline.cli.errors import InputError
from pipeline.run_local import build_parser as local_parser
from support.logged_requests import TEXT, classify_record, log_file, predict_record


@pytest.fixture
def logged(tmp_path) -> str:
    prefix = str(tmp_path / "logs" / "requests")
    log_file(prefix, 1, predict_record(["a wonderful film", "  "]), classify_record(["moving story", "bland"]))
    log_file(prefix, 2, predict_record(["the plot was tedious"]))
    return prefix


def test_a_request_log_prefix_gives_the_texts_of_every_request_in_order(logged):
    count, digest, until = unlabeled.check(logged, TEXT)
    assert count == 4 and until == os.path.basename(request_log.log_files(logged)[-1])
    assert unlabeled.texts(logged, TEXT, digest, until) == [
        "a wonderful film", "moving story", "bland", "the plot was tedious"]  # the blank text left out
    # The folder the server logs into, named as a folder (its prefix ending in "/"): the same files.
    folder = str(Path(logged).parent)
    log_file(folder + "/", 3, predict_record(["in the folder"]))
    assert unlabeled.texts(folder, TEXT) == ["in the folder"]


def test_a_step_reads_the_files_the_front_door_digested_while_the_server_logs_more(logged):
    count, digest, until = unlabeled.check(logged, TEXT)
    log_file(logged, 5, predict_record(["logged after the run was planned"]))
    assert unlabeled.texts(logged, TEXT, digest, until)[-1] == "the plot was tedious"  # not the new file's text
    assert unlabeled.check(logged, TEXT)[1:] != (digest, until)  # the next run's key follows the new file
    # A file the run was planned with, gone (pruned by the server's retention): the step stops, naming the flag.
    os.remove(request_log.log_files(logged)[0])
    with pytest.raises(unlabeled.UnlabeledDataError, match="changed after the run was planned"):
        unlabeled.texts(logged, TEXT, digest, until)


def test_a_prefix_with_nothing_logged_or_a_file_that_is_no_log_is_refused_in_one_line(tmp_path):
    with pytest.raises(unlabeled.UnlabeledDataError, match="no such folder, nor request-log files"):
        unlabeled.check(str(tmp_path / "logs" / "requests"), TEXT)
    (tmp_path / "empty").mkdir()
    with pytest.raises(unlabeled.UnlabeledDataError, match="nor request-log files"):
        unlabeled.check(str(tmp_path / "empty"), TEXT)
    broken = Path(request_log.file_name(str(tmp_path / "bad"), time.time(), "w", 1))
    broken.write_bytes(b"not a TFRecord file at all")
    with pytest.raises(unlabeled.UnlabeledDataError, match="not a readable request-log file"):
        unlabeled.check(str(tmp_path / "bad"), TEXT)


# ------------------------------------------------------------------------------------------------------------
# The front door

def _local(tmp_path: Path, *argv):
    folder = tmp_path / "reviews"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text(f"{TEXT},label\n" + "good film,pos\nbad film,neg\n" * 3)
    args = local_parser().parse_args(["--data-root", str(folder), "--pipeline-root", str(tmp_path / "root"),
                                      "--text-column", TEXT, "--max-seq-length", "32", *map(str, argv)])
    plan = local_run.plan(args)
    return plan.config, plan.notes


def test_the_logged_texts_reach_the_masked_lm_stage_and_the_distiller_keyed_by_their_files(tmp_path, logged):
    config, notes = _local(tmp_path, "--pretrain-epochs", "1", "--student-layers", "3", "--distill-unlabeled",
                           "--unlabeled-data", logged)
    until = os.path.basename(request_log.log_files(logged)[-1])
    for settings in (config.pretrainer, config.distiller):
        assert (settings.unlabeled_data, settings.unlabeled_until) == (logged, until)
        assert settings.unlabeled_digest == unlabeled.check(logged, TEXT)[1]
    assert config.distiller.distill_unlabeled
    assert any(f"unlabeled data: 4 texts from the request log up to {until}" in note for note in notes)
    # The Distiller alone reads them: the masked-LM stage stays off.
    alone, _ = _local(tmp_path / "alone", "--student-layers", "3", "--distill-unlabeled", "--unlabeled-data", logged)
    assert not alone.pretrainer.enabled and alone.distiller.unlabeled_until == until
    assert not _local(tmp_path / "without", "--student-layers", "3")[0].distiller.distill_unlabeled


@pytest.mark.parametrize("argv, fragment", [
    (["--student-layers", "3", "--distill-unlabeled"], "pass --unlabeled-data with a folder of texts or a request-log"),
    (["--distill-unlabeled", "--unlabeled-data", "{logs}"], "pass --student-layers N (N > 0) too"),
    (["--unlabeled-data", "{logs}"], "pass --pretrain-epochs N (N > 0), or --distill-unlabeled with --student-layers"),
])
def test_the_distillers_unlabeled_flags_are_checked_in_one_sentence(tmp_path, logged, argv, fragment):
    with pytest.raises(InputError) as error:
        _local(tmp_path, *[a.format(logs=logged) for a in argv])
    assert fragment in str(error.value) and "\n" not in str(error.value)
