"""Retraining on new data: span folders, the newest span ingested, a rolling window for training.

The runs are conftest's `served` (span-1 alone) and `accepted` (span-2 added, `--spans-window 2`), shared with
test_bad_inputs.py: each full pipeline run costs about a minute of the suite's budget.
"""

from support.retraining import N


def test_first_run_ingests_its_only_span(served):
    _, summary = served
    assert summary["ingested_span"] == 1 and summary["training_spans"] == [1]
    assert sum(summary["examples_per_split"].values()) == N
    assert summary["pushed"], summary


def test_second_run_ingests_only_the_new_span_and_trains_on_the_window(accepted):
    second = accepted.summary
    assert accepted.proc.returncode == 0, accepted.proc.stderr[-4000:]
    assert second["ingested_span"] == 2
    assert sum(second["examples_per_split"].values()) == N  # only the new span was read
    assert second["training_spans"] == [1, 2]  # ... and training saw the window of the last two
    assert second["components"]["Transform"]["state"] == "COMPLETE"
    assert second["baseline_model"] == accepted.in_service()  # the version folder in service
