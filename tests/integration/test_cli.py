"""The local runner's command line: help, and input errors caught at the edge with one clear line (each a real
pipeline/run_local.py that stops before the pipeline starts). A step that fails mid-run: tests/e2e/test_failed_step.py.
"""

import json

import pytest

from support import REPO, run_local, write_csv


def _assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_help_explains_every_flag():
    proc = run_local("--help")
    assert proc.returncode == 0
    for flag in ("--dataset", "--data-root", "--text-column", "--label-column", "--model-size", "--pretrained",
                 "--max-seq-length", "--epochs", "--train-steps", "--batch-size", "--max-examples",
                 "--pipeline-root", "--serving-dir", "--beam-direct-mode", "--beam-workers", "--summary-json"):
        assert flag in proc.stdout, flag


def test_missing_data_root(tmp_path):
    _assert_one_line_error(run_local("--data-root", tmp_path / "nope"), "does not exist")


def test_missing_text_column_names_file_and_columns(tmp_path):
    write_csv(tmp_path / "data" / "reviews.csv", [["good", "pos"], ["bad", "neg"]], header=["review", "label"])
    proc = run_local("--data-root", tmp_path / "data", "--pipeline-root", tmp_path / "root")
    _assert_one_line_error(proc, "reviews.csv", "'text'", "review, label", "--text-column")


def test_single_label_value_is_refused(tmp_path):
    write_csv(tmp_path / "data" / "d.csv", [["good", "pos"], ["great", "pos"]])
    _assert_one_line_error(run_local("--data-root", tmp_path / "data"), "at least 2")


def test_incomplete_split_folders(tmp_path):
    write_csv(tmp_path / "data" / "train" / "d.csv", [["good", "pos"], ["bad", "neg"]])
    _assert_one_line_error(run_local("--data-root", tmp_path / "data"), "eval", "test")


def test_not_a_checkpoint(tmp_path):
    write_csv(tmp_path / "data" / "d.csv", [["good", "pos"], ["bad", "neg"]])
    proc = run_local("--data-root", tmp_path / "data", "--pretrained", tmp_path)
    _assert_one_line_error(proc, "not a BERT checkpoint")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_non_positive_numbers_are_rejected_by_argparse(value):
    proc = run_local("--epochs", value)
    assert proc.returncode == 2 and "not a positive integer" in proc.stderr


@pytest.mark.parametrize("content, fragment", [
    ("max_unk_share = 2.0\n", "max_unk_share must be a number between 0 and 1"),
    ("max_unknown = 0.1\n", "unknown check 'max_unknown'"),
    ("max_unk_share = \n", "not valid TOML"),
])
def test_invalid_text_checks_file(tmp_path, content, fragment):
    write_csv(tmp_path / "data" / "d.csv", [["good", "fresh"], ["bad", "rotten"]])
    schema = tmp_path / "schema" / "schema.pbtxt"
    schema.parent.mkdir()
    schema.write_text((REPO / "schema" / "rotten_tomatoes" / "schema.pbtxt").read_text())
    (schema.parent / "text_checks.toml").write_text(content)
    (tmp_path / "root").mkdir()  # a pipeline root from earlier runs: the report goes there too
    proc = run_local("--data-root", tmp_path / "data", "--schema", schema, "--pipeline-root", tmp_path / "root",
                     "--summary-json", tmp_path / "s.json")
    _assert_one_line_error(proc, "text_checks.toml", fragment)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["anomalies"][0]["kind"] == "INVALID_TEXT_CHECKS"
    assert json.loads((tmp_path / "root" / "anomalies.json").read_text())["error"] == summary["error"]


@pytest.mark.parametrize("config, fragment", [
    (None, "does not exist"),
    ('model_config_list { config { name: "bert_classifier" base_path: "/srv/elsewhere" } }',
     "serves 'bert_classifier' from /srv/elsewhere, not from"),
    ("model_config_list { config { name: ", "is not a text ModelServerConfig"),
])
def test_a_model_config_file_that_cannot_be_followed_is_refused(tmp_path, config, fragment):
    write_csv(tmp_path / "data" / "d.csv", [["good", "pos"], ["bad", "neg"]] * 10)
    if config is not None:
        (tmp_path / "models.config").write_text(config)
    proc = run_local("--data-root", tmp_path / "data", "--pipeline-root", tmp_path / "root", "--serving-dir",
                     tmp_path / "serving", "--model-config-file", tmp_path / "models.config")
    _assert_one_line_error(proc, "--model-config-file", fragment)
