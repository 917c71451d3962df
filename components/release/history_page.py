"""The run report's "History" section: the pipeline root's run history (components/release/run_history.py) as a
table of the last runs and plots over runs: accuracy, drift, and the traffic read with the skew found.

Plots are drawn as the report page's others are (components/release/html_parts.py): matplotlib, PNG, embedded. A run
without a figure (stopped before the Evaluator, no baseline, no request logs read) is a gap in its line, not a zero.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from components.release.html_parts import figure as _figure
from components.release.html_parts import paragraph as _p
from components.release.html_parts import table as _table

TABLE_RUNS = 20  # the table's newest runs; the plots show them all


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _eval_series(records: Sequence[dict]) -> Dict[str, List[float]]:
    """Label -> per-run value of each accuracy the history holds: eval (per task with several label columns) and
    test."""
    series: Dict[str, List[float]] = {}
    keys = sorted({k for r in records for k in (r.get("eval_metrics") or {})
                   if k.split("/")[-1] == "sparse_categorical_accuracy"})
    for key in keys:
        task = f" ({key.split('/')[0]})" if "/" in key else ""
        series[f"eval accuracy{task}"] = [_number((r.get("eval_metrics") or {}).get(key)) for r in records]
    series["test accuracy"] = [_number((r.get("test") or {}).get("accuracy")) for r in records]
    return {name: values for name, values in series.items() if not all(math.isnan(v) for v in values)}


def _label_drift(record: dict) -> float:
    distances = (record.get("drift") or {}).get("label_l_infinity") or {}
    return max(distances.values()) if distances else float("nan")


def _runs_axis(ax, count: int, ylabel: str) -> None:
    ax.set_xlabel("run (oldest first)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(1, count + 1))
    ax.legend(fontsize=8)


def _accuracy_plot(records: Sequence[dict]) -> Optional[str]:
    series = _eval_series(records)
    if not series:
        return None
    runs = list(range(1, len(records) + 1))

    def draw(ax):
        for name, values in series.items():
            ax.plot(runs, values, marker="o", label=name)
        pushed = [i for i, r in zip(runs, records) if r.get("pushed")]
        if pushed:
            ax.scatter(pushed, [0.0] * len(pushed), marker="^", color="#2e7d32", label="pushed", clip_on=False)
        ax.set_ylim(0, 1.02)
        _runs_axis(ax, len(records), "accuracy")
    return _figure(draw, "Accuracy over runs")


def _drift_plot(records: Sequence[dict]) -> str:
    runs = list(range(1, len(records) + 1))
    label = [_label_drift(r) for r in records]
    truncated = [_number((r.get("text") or {}).get("truncated_share")) for r in records]
    unk = [_number((r.get("text") or {}).get("unk_share")) for r in records]
    crossed = [i for i, r in zip(runs, records) if (r.get("drift") or {}).get("crossed")]

    def draw(ax):
        ax.plot(runs, label, marker="o", label="label shares, L-infinity vs last accepted")
        ax.plot(runs, truncated, marker="s", label="train texts truncated (share)")
        ax.plot(runs, unk, marker="d", label="[UNK] tokens (share)")
        if crossed:
            ax.scatter(crossed, [max((v for v in label if not math.isnan(v)), default=0.0)] * len(crossed),
                       marker="x", s=80, color="#c0392b", label="a drift threshold crossed", zorder=3)
        ax.set_ylim(bottom=0)
        _runs_axis(ax, len(records), "distance / share")
    return _figure(draw, "Drift over runs")


def _traffic_plot(records: Sequence[dict]) -> Optional[str]:
    serving = [r.get("serving") or {} for r in records]
    if not any(s for s in serving):
        return None
    runs = list(range(1, len(records) + 1))
    requests = [s.get("requests", 0) or 0 for s in serving]
    colours = ["#c0392b" if s.get("skew_found") else "#3b7dd8" for s in serving]

    def draw(ax):
        ax.bar(runs, requests, color=colours)
        ax.bar([], [], color="#c0392b", label="skew found")
        ax.bar([], [], color="#3b7dd8", label="no skew")
        _runs_axis(ax, len(records), "requests read")
    return _figure(draw, "Traffic and skew over runs")


def _row(record: dict) -> list:
    eval_metrics = record.get("eval_metrics") or {}
    versions = record.get("versions") or {}
    spans = record.get("spans") or {}
    serving = record.get("serving") or {}
    drift = _label_drift(record)
    return [
        (record.get("date") or "")[:16].replace("T", " "),
        ",".join(map(str, spans.get("training") or [])) or "–",
        "yes" if record.get("trained") else "no",
        eval_metrics.get("sparse_categorical_accuracy", "–"),
        (record.get("test") or {}).get("accuracy", "–"),
        "yes" if record.get("blessed") else "no",
        versions.get("pushed") or "no",
        "–" if math.isnan(drift) else drift,
        serving.get("requests", "–") if serving else "–",
        ("yes" if serving.get("skew_found") else "no") if serving else "–",
        (record.get("gates") or {}).get("stopped") or "",
    ]


def history_section(records: Sequence[dict]) -> str:
    """The section's HTML for the history `records`, oldest first (this run last)."""
    if not records:
        return _p("No run history: the history under the pipeline root could not be read or written.")
    parts = [_p(f"{len(records)} run(s) of this pipeline root, oldest first; the last one is this run.")]
    parts.append(_table(["date (UTC)", "training spans", "trained", "eval accuracy", "test accuracy", "blessed",
                         "pushed version", "label drift", "requests", "skew", "stopped"],
                        [_row(r) for r in list(records)[-TABLE_RUNS:]]))
    if len(records) < 2:
        parts.append(_p("The plots over runs start with the second run."))
        return "".join(parts)
    for plot in (_accuracy_plot(records), _drift_plot(records)):
        if plot:
            parts.append(plot)
    traffic = _traffic_plot(records)
    parts.append(traffic or _p("No run read request logs (--serving-logs): no traffic or skew to plot."))
    return "".join(parts)
