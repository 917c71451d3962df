"""The run report's page: one self-contained `report.html` in the pipeline root, plots embedded, readable without
network.

Sections: the run (and, for a failed or refused run, the reason first), data (examples and labels per split against
the drift checks' baseline, token lengths with the `max_seq_length` cut), validation (every anomaly and warning),
training (loss and accuracy per epoch, the learning-rate schedule, the epoch kept), evaluation (the metrics against
their thresholds, the blessing in words, the test split's confusion matrix, per-class scores and most confident
mistakes), in service (with --serving-logs: the traffic against the training data, docs/serving_loop.md), timings
(a bar per component, the cached ones marked) and history (the pipeline root's runs, this one last, with plots over
runs: components/release/history_page.py). A section whose step did not run says so.
Plots are matplotlib's Agg backend, PNG, base64-embedded.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from components.features import TRAINING_HISTORY_FILE
from components.release.history_page import history_section
from components.release.html_parts import figure as _figure
from components.release.html_parts import paragraph as _p
from components.release.html_parts import table as _table
from components.release.model_metrics import classes_averaged
from components.release.run_summary import RunSummary
from components.settings.evaluator import EvaluatorSettings
from components.tasks import label_columns

REPORT_FILE = "report.html"
# The page's h2 headings, in order.
SECTIONS = ("Run", "Data", "Validation", "Training", "Evaluation", "In service", "Timings", "History")


@dataclass(frozen=True)
class ReportContext:
    """What the report needs besides the summary: names and settings, and where the data artifacts are."""

    pipeline_name: str
    label_key: str
    max_seq_length: int
    evaluator: EvaluatorSettings
    statistics: Optional[str] = None  # StatisticsGen's output
    baseline_statistics: Optional[str] = None  # the statistics the drift checks compared with
    transformed: Optional[str] = None  # Transform's transformed examples
    baseline_text_statistics: Optional[str] = None  # the text statistics the length-drift check compared with


def label_counts(statistics_uri: str, label_key: str) -> Dict[str, Dict[str, float]]:
    """Split -> label -> examples, from a StatisticsGen artifact."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    result = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(statistics_uri, "Split-*", "FeatureStats.pb"))):
        split = os.path.basename(os.path.dirname(path)).removeprefix("Split-")
        stats = tfdv.load_stats_binary(path)
        for feature in stats.datasets[0].features:
            if feature.path.step and feature.path.step[-1] == label_key:
                buckets = feature.string_stats.rank_histogram.buckets or feature.string_stats.top_values
                result[split] = {getattr(b, "label", getattr(b, "value", "")): b.sample_count if hasattr(
                    b, "sample_count") else b.frequency for b in buckets}
    return result


def token_lengths(transformed_uri: str, split: str = "train") -> List[int]:
    """WordPiece tokens per text before truncation, from Transform's output (features.NUM_WORDPIECES_KEY)."""
    import tensorflow as tf

    from components import features

    files = sorted(tf.io.gfile.glob(os.path.join(transformed_uri, f"Split-{split}", "*")))
    spec = {features.NUM_WORDPIECES_KEY: tf.io.FixedLenFeature([], tf.int64)}
    lengths: List[int] = []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        lengths += tf.io.parse_example(batch, spec)[features.NUM_WORDPIECES_KEY].numpy().tolist()
    return lengths


def length_histogram(text_statistics_uri: str, split: str = "train"):
    """(bucket edges, examples per bucket) of WordPiece tokens per text, from TextStatisticsGen's TFDV statistics
    (the standard histogram of features.NUM_WORDPIECES_KEY); None when absent."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    from components import features

    paths = tf.io.gfile.glob(os.path.join(text_statistics_uri, f"Split-{split}", "FeatureStats.pb"))
    if not paths:
        return None
    for feature in tfdv.load_stats_binary(paths[0]).datasets[0].features:
        if feature.path.step and feature.path.step[-1] == features.NUM_WORDPIECES_KEY:
            for histogram in feature.num_stats.histograms:
                if histogram.type == histogram.STANDARD and histogram.buckets:
                    edges = [histogram.buckets[0].low_value] + [b.high_value for b in histogram.buckets]
                    return edges, [b.sample_count for b in histogram.buckets]
    return None


def _bars(ax, groups: Dict[str, Dict[str, float]], ylabel: str, xlabel: str) -> None:
    keys = sorted({k for g in groups.values() for k in g})
    width = 0.8 / max(len(groups), 1)
    for i, (name, values) in enumerate(groups.items()):
        ax.bar([x + i * width for x in range(len(keys))], [values.get(k, 0) for k in keys], width, label=name)
    ax.set_xticks([x + width * (len(groups) - 1) / 2 for x in range(len(keys))], keys, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.legend()


def share(counts: Dict[str, float]) -> Dict[str, float]:
    return {k: v / max(sum(counts.values()), 1) for k, v in counts.items()}


def data_section(context: ReportContext, summary: RunSummary) -> str:
    parts = []
    counts = summary.examples_per_split
    if not counts:
        return _p("No statistics: the run stopped before StatisticsGen.")
    parts.append(_figure(lambda ax: (ax.bar(list(counts), list(counts.values())), ax.set_ylabel("examples"),
                                     ax.set_xlabel("split")), "Examples per split"))
    first_labels = {}
    columns = label_columns(context.label_key)
    for column in columns:  # one figure per label column
        named = f" ({column})" if len(columns) > 1 else ""
        labels = label_counts(context.statistics, column) if context.statistics else {}
        first_labels = first_labels or labels
        if labels:
            parts.append(_figure(lambda ax, labels=labels, column=column: _bars(ax, labels, "examples",
                                                                                f"label ({column})"),
                                 f"Label distribution per split{named}"))
        if context.baseline_statistics and labels.get("train"):
            before = label_counts(context.baseline_statistics, column).get("train", {})
            parts.append(_figure(lambda ax, labels=labels, before=before: _bars(
                ax, {"this run": share(labels["train"]), "baseline (last accepted)": share(before)},
                "share of examples", "label"), f"Train labels{named} against the drift checks' baseline"))
    if not (context.baseline_statistics and first_labels.get("train")):
        parts.append(_p("No baseline: this is the pipeline's first accepted data, so the drift checks had nothing to "
                        "compare with."))
    if context.transformed:
        lengths = token_lengths(context.transformed)
        cut = context.max_seq_length - 2  # [CLS] and [SEP] take two positions

        before = length_histogram(context.baseline_text_statistics) if context.baseline_text_statistics else None

        def histogram(ax):
            if before:  # shares, on the baseline's buckets, so the two runs compare whatever their sizes
                import numpy as np

                edges, counts = before
                now, _ = np.histogram(lengths, bins=edges)
                ax.stairs(now / max(now.sum(), 1), edges, fill=True, color="#3b7dd8", alpha=0.6, label="this run")
                ax.stairs(np.array(counts) / max(sum(counts), 1), edges, color="#333", label="baseline (last accepted)")
                ax.set_ylabel("share of texts")
            else:
                ax.hist(lengths, bins=min(60, max(10, max(lengths, default=1))), color="#3b7dd8")
                ax.set_ylabel("texts")
            ax.axvline(cut, color="#c0392b", linestyle="--", label=f"cut: {cut} tokens (max_seq_length "
                                                                   f"{context.max_seq_length})")
            ax.set_xlabel("WordPiece tokens per text (train split)")
            ax.legend()
        parts.append(_figure(histogram, "Token lengths" + (" against the baseline" if before else "")))
    text = (summary.text_statistics or {}).get("train")
    if text and text.get("examples"):
        parts.append(_p(f"Train split: {text['truncated']} of {text['examples']} texts truncated "
                        f"({text['truncated_share']:.1%}); [UNK] {text['unk_share']:.2%} of tokens; {text['empty']} "
                        "empty."))
    return "".join(parts)


def validation_section(summary: RunSummary) -> str:
    anomalies, warnings = summary.anomalies, summary.warnings
    if not anomalies and not warnings:
        return _p("No anomaly and no warning: the data passed every check.")
    parts = []
    if anomalies:
        parts.append(_table(["found by", "split", "feature", "kind", "what"],
                            [[a.get("found_by", ""), a["split"], a["feature"], a["kind"], a["description"]]
                             for a in anomalies]))
    else:
        parts.append(_p("No anomaly."))
    parts += [_p(f"Warning: {w}") for w in warnings]
    return "".join(parts)


def training_section(summary: RunSummary) -> str:
    import tensorflow as tf

    model_uri = summary.model_uri
    path = os.path.join(model_uri, TRAINING_HISTORY_FILE) if model_uri else ""
    if not path or not tf.io.gfile.exists(path):
        return _p("No training history: the run stopped before the Trainer.")
    record = json.loads(tf.io.gfile.GFile(path).read())
    history = record["history"]
    epochs = list(range(1, len(history.get("loss", [])) + 1))

    def curves(ax, metric):
        for key, name in ((metric, "train"), (f"val_{metric}", "eval")):
            if history.get(key):
                ax.plot(epochs, history[key], marker="o", label=name)
        ax.axvline(record["kept_epoch"], color="#888", linestyle=":", label=f"kept: epoch {record['kept_epoch']}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_xticks(epochs)
        ax.legend()

    steps, rates = zip(*record["learning_rate"]) if record["learning_rate"] else ((), ())
    kept = (f"Early stopping on eval accuracy kept epoch {record['kept_epoch']} of {len(epochs)}."
            if record["early_stopping"] else f"All {len(epochs)} epoch(s) kept (no early stopping).")
    return "".join([
        _figure(lambda ax: curves(ax, "loss"), "Loss per epoch"),
        _figure(lambda ax: curves(ax, "accuracy"), "Accuracy per epoch"),
        _figure(lambda ax: (ax.plot(steps, rates), ax.set_xlabel("training step"), ax.set_ylabel("learning rate")),
                "Learning-rate schedule"),
        _p(kept)])


def evaluation_section(context: ReportContext, summary: RunSummary) -> str:
    """The gates, the blessing and the test split's figures; one table of gates, and one block of test figures, per
    task with several label columns."""
    parts = []
    metrics = summary.eval_metrics
    if not metrics:
        parts.append(_p("No evaluation: the run stopped before the Evaluator."))
    else:
        gates = context.evaluator
        baseline = summary.baseline_model
        served = summary.baseline_eval_metrics or {}
        prefixes = sorted({k.split("/")[0] + "/" for k in metrics if "/" in k}) or [""]
        rows = [[f"{prefix}{name}", metrics.get(prefix + key), served.get(prefix + key, "–"), f">= {low}",
                 f"drop <= {drop}" if baseline else "no model in service"]
                for prefix in prefixes for name, key, low, drop in (
                    ("accuracy (eval)", "sparse_categorical_accuracy", gates.min_accuracy, gates.max_accuracy_drop),
                    ("macro F1 (eval)", "macro_f1_score", gates.min_macro_f1, gates.max_macro_f1_drop))]
        parts.append(_table(["metric", "candidate", "model in service", "absolute gate",
                             "allowed drop against the model in service"], rows))
        for prefix in prefixes:  # macro F1 is the mean F1 of the classes with an eval example (macro_f1.py)
            over = classes_averaged(metrics, prefix.rstrip("/"))
            if over:
                parts.append(_p(f"{prefix}macro F1 (eval) averages {over}."))
        parts.append(_p(f"Compared with the model in service: {baseline}." if baseline else
                        "No model in service yet: the candidate was judged on the absolute gates alone."))
        if summary.blessed:
            parts.append(_p("Blessed: every threshold passed" + (" for every task." if prefixes != [""] else ".")))
        else:
            parts.append(_p("Not blessed: " + ("; ".join(summary.not_blessed_because or []) or "see above")
                            + "."))
    test = summary.test_metrics or {}
    for task, scores in (test.get("tasks") or {"": test}).items():
        if scores.get("confusion"):
            parts.append(test_figures(scores, f" ({task})" if task else ""))
    return "".join(parts)


def test_figures(test: dict, task: str = "") -> str:
    """One task's test-split figures: accuracy and macro F1, the confusion matrix, per-class scores and the most
    confident mistakes (`task`: " (rating)" among several)."""
    parts = []
    classes, matrix = test["classes"], test["confusion"]

    def confusion(ax, normalised):
        import numpy as np

        values = np.array(matrix, dtype=float)
        if normalised:
            values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
        ax.imshow(values, cmap="Blues")
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{values[i, j]:.2f}" if normalised else int(values[i, j]), ha="center",
                        va="center", fontsize=8)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")

    size = min(3 + 0.35 * len(classes), 10)
    averaged = test.get("macro_f1_classes")
    over = f" (the mean of the {len(averaged)} classes with a test example)" if averaged else ""
    parts.append(_p(f"Test split{task} ({test['examples']} examples): accuracy {test['accuracy']}, macro F1 "
                    f"{test['macro_f1']}{over}."))
    parts.append(_figure(lambda ax: confusion(ax, False), f"Confusion matrix{task}, test (counts)", size, size))
    parts.append(_figure(lambda ax: confusion(ax, True), f"Confusion matrix{task}, test (row shares)", size, size))
    parts.append(_table(["class", "precision", "recall", "F1", "examples"],
                        [[c, v["precision"], v["recall"], v["f1"], v["support"]]
                         for c, v in test["per_class"].items()]))
    parts.append(f"<h3>Most confident mistakes{html.escape(task)} (test split)</h3>" + _table(
        ["text", "true", "predicted", "probability"],
        [[m["text"], m["label"], m["predicted"], m["probability"]] for m in test["confident_mistakes"]]))
    return "".join(parts)


def timings_section(summary: RunSummary) -> str:
    components = summary.components
    if not components:
        return _p(summary.timings_note or "No step ran.")
    names = list(components)
    seconds = [components[n].get("seconds") or 0 for n in names]
    colours = ["#bbb" if components[n].get("state") == "CACHED" else "#3b7dd8" for n in names]

    def bars(ax):
        ax.barh(names, seconds, color=colours)
        ax.invert_yaxis()
        ax.set_xlabel("seconds (grey: taken from the cache)")
    cached = [n for n in names if components[n].get("state") == "CACHED"]
    return (_figure(bars, "Seconds per component", 7, 0.8 + 0.3 * len(names)) +
            _p("From the cache: " + (", ".join(cached) if cached else "none") + "."))


def in_service_section(summary: RunSummary) -> str:
    """With --serving-logs: the verdict, what crossed which threshold, the classes answered against the trained
    ones, and the tokens per text of training and serving side by side."""
    serving = summary.serving
    if not serving:
        return _p("No request logs were read (run with --serving-logs PREFIX: docs/serving_loop.md).")
    parts = [_p(serving.get("verdict") or "")]
    read = [["requests read", serving.get("requests")], ["texts", serving.get("examples")],
            ["log files", serving.get("files")], ["versions (texts)", json.dumps(serving.get("versions") or {})]]
    parts.append(_table(["", ""], read))
    if serving.get("crossed"):
        parts.append(_table(["check", "what crossed"], [[c["check"], c["description"]] for c in serving["crossed"]]))
    if serving.get("sample"):
        parts.append(_p(f"The texts furthest from training, with the model's answers, to label: {serving['sample']}"))
    for column, shares in (serving.get("classes") or {}).items():
        parts.append(_figure(lambda ax, s=shares, c=column: _bars(
            ax, {"training labels": s["training"], "answered in service": s["serving"]}, "share", c),
                             f"Classes: trained on against answered in service ({column})"))
    histogram = serving.get("token_histogram") or []
    if histogram:
        def side_by_side(ax):
            x = list(range(len(histogram)))
            ax.bar([i - 0.2 for i in x], [b["training"] for b in histogram], 0.4, label="training")
            ax.bar([i + 0.2 for i in x], [b["serving"] for b in histogram], 0.4, label="in service")
            ax.set_xticks(x, [f"{b['low']:.0f}-{b['high']:.0f}" for b in histogram], rotation=30, ha="right")
            ax.set_xlabel("WordPiece tokens per text")
            ax.set_ylabel("share of texts")
            ax.legend()

        parts.append(_figure(side_by_side, "Tokens per text: training against in service"))
    return "".join(parts)


def run_section(summary: RunSummary) -> str:
    wall = "see the Kubeflow run" if summary.wall_seconds is None else f"{summary.wall_seconds} s"
    rows = [["dataset", summary.dataset], ["model", summary.model], ["wall time", wall],
            ["blessed", summary.blessed], ["pushed", summary.pushed_dir or "no"]]
    return _table(["", ""], rows)


_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem;color:#1d1d1f}
img{max-width:100%;display:block;margin:.5rem 0}table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
.error{background:#fdecea;color:#8a1c12;padding:.75rem;border-radius:4px;white-space:pre-line}"""


def render(context: ReportContext, summary: RunSummary, history: Sequence[dict] = ()) -> str:
    """The page; `history`: the run history's records, this run last (components/release/run_history.py)."""
    bodies = {
        "Run": run_section(summary),
        "Data": data_section(context, summary),
        "Validation": validation_section(summary),
        "Training": training_section(summary),
        "Evaluation": evaluation_section(context, summary),
        "In service": in_service_section(summary),
        "Timings": timings_section(summary),
        "History": history_section(history),
    }
    error = summary.error
    top = f'<p class="error">This run stopped: {html.escape(error)}</p>' if error else ""
    sections = "".join(f'<h2 id="{name.lower().replace(" ", "-")}">{name}</h2>{bodies[name]}' for name in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>Run report: {html.escape(context.pipeline_name)}'
            f'</title><style>{_STYLE}</style></head><body><h1>Run report: {html.escape(context.pipeline_name)}</h1>'
            f'{top}{sections}</body></html>')
