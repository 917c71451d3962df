"""TextStatisticsGen: statistics of the tokenized text, checked against thresholds kept in schema/.

TFDV describes the raw columns; it cannot tell whether the vocabulary represents the texts. Transform emits, next
to the BERT inputs, per-example counts of the tokenized text before truncation (`features.TEXT_STAT_KEYS`: words,
WordPiece tokens, [UNK] tokens). For every split this component
- computes TFDV statistics of those counts, clipped at twice the sequence length (an ExampleStatistics artifact:
  `tfdv.visualize_statistics` shows the sequence-length distribution) and a `text_statistics.json` of the exact
  shares and percentiles the checks use;
- checks the shares against the thresholds of `text_checks.toml` beside the curated schema
  (components/validation/text_checks.py): texts with no token at all (empty after normalization, e.g. whitespace only),
  texts truncated at max_seq_length, [UNK] among the tokens, words the vocabulary covers. A new span in another
  language, or in a script the vocabulary lacks, fails the [UNK] and coverage checks;
- compares the train split's token-count distribution with the last accepted data's (TFDV's Jensen-Shannon
  divergence drift comparator; none on the first run).
Problems are written as an ExampleAnomalies artifact, like ExampleValidator's; the TextValidationGate stops the
run before the Trainer when there is any. Never fails itself.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import json
import os
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx import v1 as tfx
from tfx.types import standard_artifact_utils

from components import features
from components.baselines import lookup
from components.settings.data import text_columns
from components.validation.drift import drift_only
from components.validation.gates import STATISTICS_FILE, write_anomalies
from components.validation.text_checks import DEFAULT_CHECKS

SUMMARY_FILE = "text_statistics.json"  # in the statistics artifact: the shares of every split
DRIFT_SPLIT = "train"


def stat_keys(text_key: str) -> Tuple[str, ...]:
    """The count features Transform emits: TEXT_STAT_KEYS, and with a pair of text columns each column's too."""
    columns = text_columns(text_key)
    per_column = [features.column_stat_key(k, c) for c in columns for k in features.TEXT_STAT_KEYS]
    return features.TEXT_STAT_KEYS + (tuple(per_column) if len(columns) > 1 else ())


def read_counts(files: List[str], keys: Sequence[str] = features.TEXT_STAT_KEYS) -> Dict[str, np.ndarray]:
    """The per-example text counts of transformed examples (gzipped TFRecords), as int64 arrays."""
    import tensorflow as tf

    spec = {key: tf.io.FixedLenFeature([], tf.int64) for key in keys}
    columns = {key: [] for key in keys}
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096)
    for batch in dataset.map(lambda b: tf.io.parse_example(b, spec)):
        for key in columns:
            columns[key].append(batch[key].numpy())
    return {key: np.concatenate(parts) if parts else np.zeros([0], np.int64) for key, parts in columns.items()}


def summarize(counts: Dict[str, np.ndarray], max_seq_length: int, special_tokens: int = 2) -> dict:
    """Shares and length percentiles of one split (token counts exclude the `special_tokens`: [CLS] and [SEP], or a
    pair's [CLS] a [SEP] b [SEP], whose counts are both texts')."""
    tokens, words, unk = (counts[k] for k in (features.NUM_WORDPIECES_KEY, features.NUM_WORDS_KEY,
                                                features.NUM_UNK_KEY))
    n = int(tokens.size)
    if n == 0:
        return {"examples": 0}
    truncated = int((tokens > max_seq_length - special_tokens).sum())
    empty = int((tokens == 0).sum())
    return {
        "examples": n,
        "empty": empty,
        "empty_share": round(empty / n, 6),
        "truncated": truncated,
        "truncated_share": round(truncated / n, 6),
        "max_seq_length": max_seq_length,
        "unk_share": round(float(unk.sum()) / max(int(tokens.sum()), 1), 6),
        "word_coverage": round(1.0 - float(unk.sum()) / max(int(words.sum()), 1), 6),
        "tokens_mean": round(float(tokens.mean()), 2),
        "tokens_p50": int(np.percentile(tokens, 50)),
        "tokens_p95": int(np.percentile(tokens, 95)),
        "tokens_max": int(tokens.max()),
    }


# The statistics of the counts (and so the drift check) clip them at this many times the sequence length: TFDV's
# histograms have equal-width buckets from the smallest to the largest value, so one 100,000-character text would put
# every other text in the first bucket and look like a drift of the whole distribution. The shares and percentiles of
# text_statistics.json use the exact counts.
STATS_CLIP = 2


def clipped(counts: Dict[str, np.ndarray], max_seq_length: int) -> Dict[str, np.ndarray]:
    return {key: np.minimum(values, STATS_CLIP * max_seq_length) for key, values in counts.items()}


def column_summaries(counts: Dict[str, np.ndarray], max_seq_length: int, text_key: str) -> Dict[str, dict]:
    """Each text column's summary, with a pair of text columns ({} with one: the split's summary is the column's)."""
    columns = text_columns(text_key)
    if len(columns) == 1:
        return {}
    return {c: summarize({k: counts[features.column_stat_key(k, c)] for k in features.TEXT_STAT_KEYS},
                         max_seq_length) for c in columns}


def check_pair(split_summary: dict, checks: Dict[str, float], has_baseline: bool = True
               ) -> List[anomalies_pb2.AnomalyInfo.Reason]:
    """A pair's checks: its truncation on the two texts' combined length; the empty, [UNK] and coverage checks on
    each text column alone (a whitespace-only second text is an empty text even beside a long first one)."""
    failed = check_shares(split_summary, checks, "", has_baseline, kinds=("truncated",))
    for column, summary in split_summary.get("columns", {}).items():
        failed += check_shares(summary, checks, column, has_baseline, kinds=("empty", "unk", "coverage"),
                               prefix=f"column {column!r}: ")
    return failed


def check_shares(split_summary: dict, checks: Dict[str, float], text_key: str,
                 has_baseline: bool = True, kinds: Sequence[str] = ("empty", "truncated", "unk", "coverage"),
                 prefix: str = "") -> List[anomalies_pb2.AnomalyInfo.Reason]:
    """One reason per failed threshold check (of `kinds`), its description after `prefix`. Without a baseline (a
    first run), truncation is only reported."""
    if not split_summary.get("examples"):
        return []
    failed = []

    def fail(kind: str, text: str):
        reason = anomalies_pb2.AnomalyInfo.Reason(type=anomalies_pb2.AnomalyInfo.CUSTOM_VALIDATION,
                                                  short_description=kind, description=prefix + text)
        failed.append(reason)

    s, n = split_summary, split_summary["examples"]
    if "empty" in kinds and s["empty_share"] > checks["max_empty_share"]:
        fail("EMPTY_TEXTS", f"{s['empty']} of {n} texts ({s['empty_share']:.1%}) have no token at all (empty or "
                            f"whitespace only); max_empty_share is {checks['max_empty_share']}.")
    if "truncated" in kinds and s["truncated_share"] > checks["max_truncated_share"]:
        if has_baseline:
            fail("TRUNCATED_TEXTS", f"{s['truncated']} of {n} texts ({s['truncated_share']:.1%}) are longer than "
                                    f"{s['max_seq_length']} tokens and would be cut; max_truncated_share is "
                                    f"{checks['max_truncated_share']}.")
        else:  # a first run: nothing accepted yet to say what is normal for this data; later spans are held to it
            fail("TRUNCATED_TEXTS_REPORTED",
                 f"{s['truncated']} of {n} texts ({s['truncated_share']:.1%}) are longer than {s['max_seq_length']} "
                 f"tokens and are cut (reported, not refused, on a first run; later runs refuse more than "
                 f"max_truncated_share {checks['max_truncated_share']}; --max-seq-length sets the length).")
    if "unk" in kinds and s["unk_share"] > checks["max_unk_share"]:
        fail("UNKNOWN_TOKENS", f"{s['unk_share']:.1%} of the WordPiece tokens are [UNK] (the vocabulary cannot "
                               f"represent those words: another language or script?); max_unk_share is "
                               f"{checks['max_unk_share']}.")
    if "coverage" in kinds and s["word_coverage"] < checks["min_word_coverage"]:
        fail("LOW_WORD_COVERAGE", f"the vocabulary represents only {s['word_coverage']:.1%} of the words of "
                                  f"column {text_key!r}; min_word_coverage is {checks['min_word_coverage']}.")
    return failed


def drift_sentence(tfdv_description: str, threshold: float) -> str:
    """TFDV's comparator sentence ("The approximate Jensen-Shannon divergence between current and previous is
    0.628873 (up to six significant digits), above the threshold 0.25.") said in the text's terms, with its figure."""
    found = re.search(r"divergence between current and previous is ([0-9.eE+-]+)", tfdv_description)
    measured = f"Jensen-Shannon divergence {float(found.group(1)):.3g}" if found else tfdv_description.rstrip(".")
    return (f"the distribution of tokens per text drifted from the last accepted data's ({measured}; "
            f"max_token_count_drift is {threshold}).")


def token_count_drift(current_stats, baseline_stats, threshold: float) -> anomalies_pb2.Anomalies:
    """TFDV's Jensen-Shannon divergence comparator on the token counts of two statistics protos."""
    import tensorflow_data_validation as tfdv

    schema = schema_pb2.Schema()
    for key in features.TEXT_STAT_KEYS:  # a pair's per-column counts are described, not compared
        feature = schema.feature.add(name=key, type=schema_pb2.INT)
        if key == features.NUM_WORDPIECES_KEY:
            feature.drift_comparator.jensen_shannon_divergence.threshold = threshold
    return drift_only(tfdv.validate_statistics(current_stats, schema, previous_statistics=baseline_stats))


def _split_files(examples) -> Dict[str, List[str]]:
    import tensorflow as tf

    files: Dict[str, List[str]] = {}
    for artifact in examples:
        for split in standard_artifact_utils.decode_split_names(artifact.split_names):
            files.setdefault(split, []).extend(tf.io.gfile.glob(os.path.join(artifact.uri, f"Split-{split}", "*")))
    return files


@tfx.dsl.components.component
def TextStatisticsGen(
        examples: tfx.dsl.components.InputArtifact[List[tfx.types.standard_artifacts.Examples]],
        statistics: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        anomalies: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
        text_key: tfx.dsl.components.Parameter[str],
        max_seq_length: tfx.dsl.components.Parameter[int],
        checks: tfx.dsl.components.Parameter[str],
        baseline_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None):
    """`examples`: Transform's transformed examples. `checks`: the thresholds, as JSON (see DEFAULT_CHECKS)."""
    import pandas as pd
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    thresholds = {**DEFAULT_CHECKS, **json.loads(checks)}
    if not lookup.found(baseline_statistics):  # a first run: BaselineLookup found no accepted text statistics yet
        baseline_statistics = None
    summaries, found = {}, {}
    for split, files in sorted(_split_files(examples).items()):
        counts = read_counts(files, stat_keys(text_key))
        summaries[split] = summarize(counts, max_seq_length, special_tokens=len(text_columns(text_key)) + 1)
        if column_summaries(counts, max_seq_length, text_key):
            summaries[split]["columns"] = column_summaries(counts, max_seq_length, text_key)
        stats = tfdv.generate_statistics_from_dataframe(pd.DataFrame(clipped(counts, max_seq_length)))
        folder = os.path.join(statistics.uri, f"Split-{split}")
        tf.io.gfile.makedirs(folder)
        with tf.io.gfile.GFile(os.path.join(folder, STATISTICS_FILE), "wb") as f:
            f.write(stats.SerializeToString())
        split_anomalies = anomalies_pb2.Anomalies()
        has_baseline = baseline_statistics is not None
        reasons = (check_pair(summaries[split], thresholds, has_baseline) if "columns" in summaries[split] else
                   check_shares(summaries[split], thresholds, text_key, has_baseline=has_baseline))
        if split == DRIFT_SPLIT and baseline_statistics is not None and split in \
                standard_artifact_utils.decode_split_names(baseline_statistics.split_names):
            baseline = tfdv.load_stats_binary(os.path.join(baseline_statistics.uri, f"Split-{split}",
                                                           STATISTICS_FILE))
            drift = token_count_drift(stats, baseline, thresholds["max_token_count_drift"])
            for info in drift.anomaly_info.values():
                for reason in info.reason:
                    reasons.append(anomalies_pb2.AnomalyInfo.Reason(
                        type=reason.type, short_description=reason.short_description,
                        description=drift_sentence(reason.description, thresholds["max_token_count_drift"])))
        if reasons:
            info = split_anomalies.anomaly_info[text_key]
            info.severity = anomalies_pb2.AnomalyInfo.ERROR
            info.reason.extend(reasons)
            info.description = " ".join(r.description for r in reasons)
            info.short_description = reasons[0].short_description
        found[split] = split_anomalies
    statistics.split_names = standard_artifact_utils.encode_split_names(sorted(summaries))
    with tf.io.gfile.GFile(os.path.join(statistics.uri, SUMMARY_FILE), "w") as f:
        json.dump(summaries, f, indent=2)
    write_anomalies(anomalies, found)
