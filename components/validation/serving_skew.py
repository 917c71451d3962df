"""ServingSkewCheck: the traffic the model in service met (ServingLogsGen's `serving` split) against what it was
trained on (the statistics the gates last accepted, which BaselineLookup hands the run).

- The classes the model answered against the training labels' distribution: TFDV's L-infinity drift comparator on
  the label column, `max_predicted_class_shift` (a prior shift is what a drifted input shows first).
- The serving texts tokenized by the model in service's own transform graph (its `transform_features` signature), so
  their counts are the model's: the distribution of tokens per text against the training data's (TFDV's
  Jensen-Shannon divergence comparator, `max_token_count_drift`), and the shares of [UNK] tokens, of truncated texts,
  of empty texts and the vocabulary's word coverage, against the thresholds of the text checks (text_checks.toml).
The thresholds are the text checks' (components/validation/text_checks.py); nothing here fails the run: the report
says what crossed which threshold and what to do, the run summary's `serving` section carries it, and with
--retrain-if the decision reads `skew_found`. When skew is found, the texts furthest from training (most [UNK],
then longest beyond the training's 95th percentile, then least sure answers) go to `skewed_sample.csv` in the output,
with the model's answers, ready to be labelled.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import csv
import io
import json
import os
from typing import Dict, List, Optional

import numpy as np
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx

from components import features
from components.baselines import lookup
from components.ingestion import serving_logs
from components.validation.drift import drift_only
from components.validation.gates import STATISTICS_FILE
from components.validation.text_checks import DEFAULT_CHECKS
from components.validation.text_stats import SUMMARY_FILE, check_shares, clipped, summarize, token_count_drift

REPORT_FILE = "serving_skew.json"  # in the output: the comparison, for the summary and the report
SAMPLE_FILE = "skewed_sample.csv"
SAMPLE_ROWS = 200
TRAIN = "train"
WHAT_TO_DO = ("label the texts of the sample (the `label` column of {sample}) and add them to the training data as "
              "a new span, then retrain; traffic in another language or script needs --vocab learn or a checkpoint "
              "for it (docs/serving_loop.md)")


def read_serving(examples_uri: str, text_key: str, columns: List[str]) -> Dict[str, list]:
    """The serving split's columns: texts, per label column the answers and probabilities, versions, times."""
    import tensorflow as tf

    path = os.path.join(examples_uri, f"Split-{serving_logs.SPLIT}", serving_logs.DATA_FILE)
    rows = {"text": [], "version": [], "time": [], **{c: [] for c in columns},
            **{serving_logs.probability_key(c): [] for c in columns}}
    for record in tf.data.TFRecordDataset([path], compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        rows["text"].append(feature[text_key].bytes_list.value[0].decode("utf-8", "replace"))
        rows["version"].append(feature[serving_logs.VERSION_KEY].int64_list.value[0])
        rows["time"].append(feature[serving_logs.TIME_KEY].int64_list.value[0])
        for column in columns:
            rows[column].append(feature[serving_logs.predicted_key(column)].bytes_list.value[0].decode())
            rows[serving_logs.probability_key(column)].append(
                feature[serving_logs.probability_key(column)].float_list.value[0])
    return rows


def token_counts(model_dir: str, texts: List[str], text_key: str, labels: Dict[str, List[str]],
                 batch: int = 256) -> Dict[str, np.ndarray]:
    """The texts' TEXT_STAT_KEYS counts by the served model's transform graph. Its transform_features signature
    parses the label columns too: each example carries the class answered (the counts do not read it)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the WordPiece ops the graph uses

    transform = tf.saved_model.load(model_dir).signatures["transform_features"]
    out = {key: [] for key in features.TEXT_STAT_KEYS}
    for start in range(0, len(texts), batch):
        serialized = []
        for i in range(start, min(start + batch, len(texts))):
            feature = {text_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[texts[i].encode()]))}
            for column, values in labels.items():
                feature[column] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[values[i].encode()]))
            serialized.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
        result = transform(examples=tf.constant(serialized))
        for key in out:
            out[key].append(np.reshape(result[key].numpy(), [-1]).astype(np.int64))
    return {k: np.concatenate(v) if v else np.zeros([0], np.int64) for k, v in out.items()}


def class_shift(predicted: List[str], baseline_train, label_key: str, threshold: float):
    """TFDV's L-infinity comparator: the answered classes' shares against the training labels' (an Anomalies proto,
    drift reasons only), and both sets of shares."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    current = tfdv.generate_statistics_from_dataframe(pd.DataFrame({label_key: predicted}))
    schema = schema_pb2.Schema()
    feature = schema.feature.add(name=label_key, type=schema_pb2.BYTES)
    feature.drift_comparator.infinity_norm.threshold = threshold
    found = drift_only(tfdv.validate_statistics(current, schema, previous_statistics=baseline_train))
    return found, _shares(current, label_key), _shares(baseline_train, label_key)


def _shares(stats, name: str) -> Dict[str, float]:
    for feature in stats.datasets[0].features:
        if feature.path.step and feature.path.step[0] == name:
            buckets = feature.string_stats.rank_histogram.buckets
            total = sum(b.sample_count for b in buckets) or 1.0
            return {b.label: round(b.sample_count / total, 4) for b in buckets}
    return {}


def _histogram(stats, name: str) -> List[dict]:
    """TFDV's standard histogram of numeric feature `name`: [{low, high, count}]."""
    for feature in stats.datasets[0].features:
        if feature.path.step and feature.path.step[0] == name:
            for histogram in feature.num_stats.histograms:
                if histogram.type == histogram.STANDARD:
                    return [{"low": b.low_value, "high": b.high_value, "count": b.sample_count}
                            for b in histogram.buckets]
    return []


def side_by_side(training: List[dict], serving_tokens: np.ndarray) -> List[dict]:
    """The training histogram's buckets with the share of training and of serving texts in each (serving counts
    beyond the last bucket go to it)."""
    if not training:
        return []
    total = sum(b["count"] for b in training) or 1.0
    edges = [b["low"] for b in training] + [training[-1]["high"]]
    counts, _ = np.histogram(np.clip(serving_tokens, edges[0], edges[-1]), bins=edges)
    n = max(int(serving_tokens.size), 1)
    return [{"low": round(b["low"], 1), "high": round(b["high"], 1), "training": round(b["count"] / total, 4),
             "serving": round(int(c) / n, 4)} for b, c in zip(training, counts)]


def sample_order(counts: Dict[str, np.ndarray], probabilities: List[float], p95: float) -> np.ndarray:
    """The texts furthest from training first: most [UNK] per word, then furthest beyond the training's 95th
    percentile of tokens (or empty), then least sure answer."""
    words = np.maximum(counts[features.NUM_WORDS_KEY], 1)
    unk = counts[features.NUM_UNK_KEY] / words
    tokens = counts[features.NUM_WORDPIECES_KEY]
    beyond = np.where(tokens == 0, 1.0, np.maximum(tokens - p95, 0) / max(p95, 1.0))
    return np.lexsort((np.asarray(probabilities), -beyond, -unk))


def sample_csv(rows: Dict[str, list], counts: Dict[str, np.ndarray], columns: List[str], text_key: str,
               p95: float, limit: int = SAMPLE_ROWS) -> str:
    """The CSV of the texts furthest from training: the text, an empty `label` column to fill in (one per label
    column), the model's answer and probability, [UNK] and token counts, the version and time."""
    first = serving_logs.probability_key(columns[0])
    order = sample_order(counts, rows[first], p95)[:limit]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([text_key, *columns, *(f"predicted_{c}" for c in columns),
                     *(serving_logs.probability_key(c) for c in columns), "unk_tokens", "tokens", "model_version",
                     "request_time"])
    for i in order:
        writer.writerow([rows["text"][i], *("" for _ in columns), *(rows[c][i] for c in columns),
                         *(round(rows[serving_logs.probability_key(c)][i], 4) for c in columns),
                         int(counts[features.NUM_UNK_KEY][i]), int(counts[features.NUM_WORDPIECES_KEY][i]),
                         rows["version"][i], rows["time"][i]])
    return out.getvalue()


def _crossed(kind: str, description: str) -> dict:
    return {"check": kind, "description": description}


def compare(rows: Dict[str, list], counts: Dict[str, np.ndarray], columns: List[str], text_key: str,
            thresholds: Dict[str, float], data_train, text_train, text_summary: dict) -> dict:
    """The comparison of the serving texts with the training statistics: shares, histograms, what crossed."""
    max_seq_length = int(text_summary.get("max_seq_length") or 128)
    serving = summarize(counts, max_seq_length)
    crossed = [_crossed(r.short_description, r.description) for r in check_shares(serving, thresholds, text_key)]
    classes = {}
    for column in columns:
        if data_train is None:
            break
        found, served, trained = class_shift(rows[column], data_train, column, thresholds["max_predicted_class_shift"])
        classes[column] = {"serving": served, "training": trained}
        for info in found.anomaly_info.values():
            crossed.append(_crossed("PREDICTED_CLASS_SHIFT", (
                f"the classes the model answered ({_pretty(served)}) are not the training labels' ({_pretty(trained)})"
                f" of column {column!r}: L-infinity distance above max_predicted_class_shift "
                f"{thresholds['max_predicted_class_shift']} ({info.description})")))
    histogram = []
    stats = serving_stats(counts, max_seq_length)
    if text_train is not None:
        for info in token_count_drift(stats, text_train, thresholds["max_token_count_drift"]).anomaly_info.values():
            for reason in info.reason:
                crossed.append(_crossed("TOKEN_COUNT_DRIFT", (
                    "the distribution of tokens per text in service is not the training data's ("
                    f"{reason.description.rstrip('.')}; max_token_count_drift is "
                    f"{thresholds['max_token_count_drift']}).")))
        histogram = side_by_side(_histogram(text_train, features.NUM_WORDPIECES_KEY),
                                 counts[features.NUM_WORDPIECES_KEY])
    return {"serving_text": serving, "training_text": text_summary, "classes": classes,
            "token_histogram": histogram, "crossed": crossed, "skew_found": bool(crossed)}, stats


def serving_stats(counts: Dict[str, np.ndarray], max_seq_length: int):
    """TFDV statistics of the serving texts' counts, clipped as TextStatisticsGen clips the training data's."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_dataframe(pd.DataFrame(clipped(counts, max_seq_length)))


def _pretty(shares: Dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in sorted(shares.items()))


def verdict(report: dict) -> str:
    """The comparison in one sentence."""
    if not report.get("new_traffic"):
        return "No new traffic since the last run: nothing to compare."
    if not report.get("compared"):
        return (f"{report['examples']} texts read; {report.get('why_not_compared', 'no baseline')}: nothing to "
                "compare them with.")
    if not report["skew_found"]:
        return (f"The {report['examples']} texts the model met in service look like its training data: no check "
                "crossed its threshold.")
    names = ", ".join(sorted({c["check"] for c in report["crossed"]}))
    return (f"The {report['examples']} texts the model met in service differ from its training data ({names}): "
            f"{WHAT_TO_DO.format(sample=report.get('sample') or 'the sample')}.")


def _train_stats(artifact, split: str = TRAIN):
    import tensorflow_data_validation as tfdv
    from tfx.types import standard_artifact_utils

    if not lookup.found(artifact) or split not in standard_artifact_utils.decode_split_names(artifact.split_names):
        return None
    return tfdv.load_stats_binary(os.path.join(artifact.uri, f"Split-{split}", STATISTICS_FILE))


def _text_summary(artifact) -> dict:
    from components.runtime import storage

    if not lookup.found(artifact):
        return {}
    text = storage.read_text(os.path.join(artifact.uri, SUMMARY_FILE))
    return (json.loads(text) if text else {}).get(TRAIN) or {}


def check(examples, model, data_statistics, text_statistics, output_uri: str, text_key: str, label_key: str,
          classes_record, thresholds: Dict[str, float]) -> dict:
    """The whole check; writes serving_skew.json (and the sample) under `output_uri`; returns the report."""
    from components.runtime import storage

    read = serving_logs.read_summary(examples.uri)
    columns = [c for c, _, _ in serving_logs.answer_columns(label_key, classes_record)]
    report = {key: read.get(key) for key in ("prefix", "requests", "examples", "first_time", "last_time",
                                             "versions", "new_traffic", "skipped")}
    report.update(files=len(read.get("files", [])), skew_found=False, crossed=[], compared=False)
    model_dir = os.path.join(model.uri, lookup.SERVING) if lookup.found(model) else None
    if read.get("examples") and model_dir is None:
        report["why_not_compared"] = "no model in service"
    elif read.get("examples"):
        rows = read_serving(examples.uri, text_key, columns)
        counts = token_counts(model_dir, rows["text"], text_key, {c: rows[c] for c in columns})
        text_summary = _text_summary(text_statistics)
        compared, stats = compare(rows, counts, columns, text_key, thresholds, _train_stats(data_statistics),
                                  _train_stats(text_statistics), text_summary)
        report.update(compared, compared=True)
        storage.write_file(os.path.join(output_uri, f"Split-{serving_logs.SPLIT}", STATISTICS_FILE),
                           stats.SerializeToString())
        if report["skew_found"]:
            report["sample"] = os.path.join(output_uri, SAMPLE_FILE)
            storage.write_file(report["sample"], sample_csv(rows, counts, columns, text_key,
                                                            float(text_summary.get("tokens_p95") or 0)))
    report["verdict"] = verdict(report)
    storage.write_file(os.path.join(output_uri, REPORT_FILE), json.dumps(report, indent=1))
    return report


def read_report(uri: str) -> Optional[dict]:
    from components.runtime import storage

    text = storage.read_text(os.path.join(uri, REPORT_FILE))
    return json.loads(text) if text else None


@tfx.dsl.components.component
def ServingSkewCheck(
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        skew: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        text_key: tfx.dsl.components.Parameter[str],
        label_key: tfx.dsl.components.Parameter[str],
        label_names: tfx.dsl.components.Parameter[str],
        checks: tfx.dsl.components.Parameter[str],
        baseline_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
        data_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
        text_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None):
    """`examples`: ServingLogsGen's output. The baselines: BaselineLookup's. `checks`: the text checks' thresholds
    (JSON). `skew`: the statistics of the serving texts' token counts (as TextStatisticsGen's), with
    serving_skew.json, the comparison; never fails on skew."""
    from absl import logging

    thresholds = {**DEFAULT_CHECKS, **json.loads(checks)}
    report = check(examples, baseline_model, data_statistics, text_statistics, skew.uri, text_key, label_key,
                   json.loads(label_names), thresholds)
    skew.split_names = json.dumps([serving_logs.SPLIT] if report["compared"] else [])
    skew.set_int_custom_property("skew_found", int(report["skew_found"]))
    logging.info("ServingSkewCheck: %s", report["verdict"])

