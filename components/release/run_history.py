"""The run history: one record per run under `<pipeline_root>/history/`, so that a person sees how the model evolved
across retrainings (the run report's "History" section, components/release/history_page.py, plots it).

Each run writes its own small JSON file, whole, through the storage layer (components/runtime/storage.py): renamed
into place on a local disk, uploaded in one piece to an object store. Nothing is appended to a shared file: two runs
ending at once, or a run killed while it writes, can never tear or drop another run's record, and an object store
(which cannot append) needs nothing more. The history is the folder's records read in name order; a name starts with
the run's UTC time, so that order is the runs' order.

Who writes: the local runner after every run that started the pipeline, finished or stopped (pipeline/local/
reports.py), and on Kubeflow the RunReport step (components/release/run_report.py, never taken from KFP's cache).
A run the front door refused before any step ran is not a run of the pipeline and leaves no record.

A record's keys (RECORD_VERSION 1): `run_id`, `date` (UTC, ISO 8601), `dataset`, `model`, `wall_seconds`; `spans`
(`ingested`, `training`: None without span folders); `versions` (`pushed`: the version folder this run published,
`in_service`: the one it was compared with, `model_uri`: the Model artifact judged); `trained` (a model of its own:
False when it ended before training, or when its model came from the cache, the same artifact as an earlier
record's); `gates` (`stopped`: why the run stopped, `anomalies`: "feature: kind" of each, `warnings`: how many,
`not_blessed_because`); `eval_metrics` (the Evaluator's), `test` (accuracy, macro F1 and examples, per task with
several label columns); `blessed`, `pushed`; `drift` (`label_l_infinity`: per label column, the L-infinity distance
between the train split's label shares and the last accepted data's, the statistic TFDV's label comparator
thresholds; `crossed`: the drift anomalies, "feature: kind"); `text` (the train split's truncated and [UNK] shares);
`serving` (the figures of the run summary's `serving` section when the run read request logs, SERVING_KEYS: requests
and texts read, their time range and versions, `skew_found` and what `crossed`; else None).
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
from typing import Dict, List, Optional, Sequence

from components.release.run_summary import RunSummary
from components.runtime import storage

HISTORY_FOLDER = "history"  # under the pipeline root
RECORD_VERSION = 1
_SUFFIX = ".json"


def history_folder(pipeline_root: str) -> str:
    return storage.join(pipeline_root, HISTORY_FOLDER)


def _problem(anomaly: dict) -> str:
    return f"{anomaly.get('feature', '')}: {anomaly.get('kind', '')}"


def _is_drift(anomaly: dict) -> bool:
    # TFDV's drift and skew comparators' anomaly types are all COMPARATOR_* (components/validation/drift.py).
    return any(kind.startswith("COMPARATOR_") for kind in anomaly.get("kind", "").split(","))


def _test_figures(test: Optional[dict]) -> Optional[dict]:
    if not test:
        return None
    figures = {key: test[key] for key in ("accuracy", "macro_f1", "examples") if key in test}
    if test.get("tasks"):
        figures["tasks"] = {task: {key: scores.get(key) for key in ("accuracy", "macro_f1", "examples")}
                            for task, scores in test["tasks"].items()}
    return figures


# The run summary's `serving` section (a run with --serving-logs) as the history keeps it: its figures, not its
# histograms or shares, which the run's own report shows.
SERVING_KEYS = ("prefix", "requests", "examples", "first_time", "last_time", "versions", "skew_found", "crossed",
                "sample")


def _serving_figures(serving: Optional[dict]) -> Optional[dict]:
    return {key: serving[key] for key in SERVING_KEYS if key in serving} if serving else None


def new_record(summary: RunSummary, earlier: Sequence[dict] = (), label_drift: Optional[Dict[str, float]] = None,
               now: Optional[datetime.datetime] = None) -> dict:
    """The record of the run `summary` describes. `earlier`: the history's records so far (a model they already
    name came from the cache: the run did not train); `label_drift`: `label_distance`'s figures (None: no baseline)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    model_uri = summary.model_uri
    train_text = (summary.text_statistics or {}).get("train") or {}
    return {
        "record_version": RECORD_VERSION,
        "run_id": f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}",
        "date": now.isoformat(timespec="seconds"),
        "dataset": summary.dataset,
        "model": summary.model,
        "wall_seconds": summary.wall_seconds,
        "spans": {"ingested": summary.ingested_span, "training": summary.training_spans},
        "versions": {"pushed": os.path.basename(summary.pushed_dir) if summary.pushed_dir else None,
                     "in_service": (os.path.basename(summary.baseline_model.rstrip("/"))
                                    if summary.baseline_model else None),
                     "model_uri": model_uri},
        "trained": bool(model_uri) and all(r.get("versions", {}).get("model_uri") != model_uri for r in earlier),
        "gates": {"stopped": summary.error, "anomalies": [_problem(a) for a in summary.anomalies],
                  "warnings": len(summary.warnings), "not_blessed_because": summary.not_blessed_because},
        "eval_metrics": summary.eval_metrics,
        "test": _test_figures(summary.test_metrics),
        "blessed": summary.blessed,
        "pushed": summary.pushed,
        "drift": {"label_l_infinity": label_drift,
                  "crossed": [_problem(a) for a in summary.anomalies if _is_drift(a)]},
        "text": {key: train_text.get(key) for key in ("examples", "truncated_share", "unk_share")} if train_text
        else None,
        "serving": _serving_figures(getattr(summary, "serving", None)),
    }


def append(pipeline_root: str, record: dict) -> str:
    """Writes `record` as its own file in the history, whole; returns its path."""
    path = storage.join(history_folder(pipeline_root), record["run_id"] + _SUFFIX)
    storage.write_file(path, json.dumps(record, indent=1, sort_keys=True))
    return path


def read(pipeline_root: str) -> List[dict]:
    """The history's records, oldest first ([] before the first record). Hidden files (a local write's staging file)
    are not records."""
    folder = history_folder(pipeline_root)
    records = []
    for name in storage.file_names(folder):
        if name.endswith(_SUFFIX) and not name.startswith("."):
            records.append(json.loads(storage.read_text(storage.join(folder, name))))
    return records


def record_run(pipeline_root: str, summary: RunSummary, label_drift: Optional[Dict[str, float]] = None) -> List[dict]:
    """Appends this run's record to the history of `pipeline_root`; returns the whole history, this run last."""
    earlier = read(pipeline_root)
    record = new_record(summary, earlier, label_drift)
    append(pipeline_root, record)
    return [*earlier, record]


def label_distance(statistics: Optional[str], baseline_statistics: Optional[str],
                   label_key: str) -> Optional[Dict[str, float]]:
    """Per label column, the L-infinity distance between the train split's label shares in StatisticsGen's output
    `statistics` and in the last accepted `baseline_statistics` (the largest change of one class's share); None
    without either."""
    if not statistics or not baseline_statistics:
        return None
    from components.release.report_page import label_counts, share
    from components.tasks import label_columns

    distances = {}
    for column in label_columns(label_key):
        now = share(label_counts(statistics, column).get("train", {}))
        before = share(label_counts(baseline_statistics, column).get("train", {}))
        if now and before:
            distances[column] = round(max(abs(now.get(c, 0.0) - before.get(c, 0.0)) for c in {*now, *before}), 4)
    return distances or None
