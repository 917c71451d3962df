"""pipeline/train_job.py (the Trainer as a TFJob replica) refuses a bad TF_CONFIG in one line, before reading any
input. Its real multi-worker runs, and its refusal of missing inputs, are tests/e2e/test_distributed.py's."""

import pytest


@pytest.mark.parametrize("tf_config, fragment", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}',
     "parameter-server training is not supported"),
    ('{"cluster": {"worker": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 3}}', "is not in its cluster"),
])
def test_train_job_refuses_a_bad_tf_config_in_one_line(tmp_path, monkeypatch, capsys, tf_config, fragment):
    from pipeline import train_job

    monkeypatch.setenv("TF_CONFIG", tf_config)
    assert train_job.main(["--examples", str(tmp_path), "--transform-graph", str(tmp_path), "--model-dir",
                           str(tmp_path / "m"), "--config", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
