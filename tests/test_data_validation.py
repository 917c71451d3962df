"""Anomalies found by ExampleValidator stop the run before Transform: nothing is trained or pushed."""

import csv
import json

from conftest import QUICK_ARGS, run_local


def test_label_outside_the_schema_domain_stops_the_run(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(60):
            writer.writerow([f"review number {i} was fine", ["fresh", "rotten", "meh"][i % 3]])
    quick = list(QUICK_ARGS)
    del quick[quick.index("--max-examples"):quick.index("--max-examples") + 2]
    proc = run_local(*quick, "--data-root", data, "--schema", "schema/rotten_tomatoes/schema.pbtxt",
                     "--pipeline-root", tmp_path / "root", "--serving-dir", tmp_path / "serving",
                     "--summary-json", tmp_path / "summary.json")
    assert proc.returncode == 2, proc.stderr[-4000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "'label'" in errors[0] and "meh" in errors[0], proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert any(p["feature"] == "label" and "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in p["kind"]
               for p in summary["anomalies"]), summary["anomalies"]
    for node in ("Transform", "Trainer", "Evaluator", "Pusher"):
        assert node not in summary["components"], node
    assert summary["pushed"] is False
    assert not (tmp_path / "serving").exists() or not any((tmp_path / "serving").rglob("saved_model.pb"))
