"""Retraining on new data: span folders, the newest span ingested, a rolling window for training."""

import csv
import json

from conftest import QUICK_ARGS, run_local
from pipeline import assets


def _write_span(root, span, rows):
    path = root / f"span-{span}" / "data.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def _args(tmp_path, summary):
    quick = [a for a in QUICK_ARGS]
    i = quick.index("--max-examples")
    del quick[i:i + 2]  # spans are subsets already
    return [*quick, "--data-root", tmp_path / "incoming", "--schema", "schema/rotten_tomatoes/schema.pbtxt",
            "--pipeline-root", tmp_path / "root", "--serving-dir", tmp_path / "serving",
            "--summary-json", summary]


def test_second_run_ingests_only_the_new_span_and_trains_on_the_window(tmp_path):
    with open(assets.ensure_dataset("rotten_tomatoes") / "data.csv", newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    incoming = tmp_path / "incoming"
    _write_span(incoming, 1, rows[:700])

    first = run_local(*_args(tmp_path, tmp_path / "s1.json"))
    assert first.returncode == 0, first.stderr[-5000:]
    s1 = json.loads((tmp_path / "s1.json").read_text())
    assert s1["ingested_span"] == 1 and s1["training_spans"] == [1]
    assert sum(s1["examples_per_split"].values()) == 700
    assert s1["pushed"], s1

    _write_span(incoming, 2, rows[700:1200])
    second = run_local(*_args(tmp_path, tmp_path / "s2.json"), "--spans-window", "2")
    assert second.returncode == 0, second.stderr[-5000:]
    s2 = json.loads((tmp_path / "s2.json").read_text())
    assert s2["ingested_span"] == 2
    assert sum(s2["examples_per_split"].values()) == 500  # only the new span was read
    assert s2["training_spans"] == [1, 2]  # ... and training saw the window of the last two
    assert s2["components"]["Transform"]["state"] == "COMPLETE"
    assert s2["baseline_model"] == s1["model_uri"]
