"""Unit tests of components/validation/text_stats.py and components/validation/text_checks.py: the summary of the
per-example text counts, the threshold checks at their boundaries, the token-count drift, and the thresholds files."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifact_utils

from components import features
from components.validation import gates, text_checks, text_stats
from components.validation.text_checks import DEFAULT_CHECKS, checks_file_for, load_checks

Info = anomalies_pb2.AnomalyInfo
REPO = Path(__file__).resolve().parents[2]
WORDS, TOKENS, UNK = features.NUM_WORDS_KEY, features.NUM_WORDPIECES_KEY, features.NUM_UNK_KEY
ALL_OFF = {"max_empty_share": 1.0, "max_truncated_share": 1.0, "max_unk_share": 1.0, "min_word_coverage": 0.0,
           "max_token_count_drift": 1.0}


def counts(tokens, words=None, unk=None):
    tokens = np.asarray(tokens, np.int64)
    return {TOKENS: tokens,
            WORDS: tokens.copy() if words is None else np.asarray(words, np.int64),
            UNK: np.zeros_like(tokens) if unk is None else np.asarray(unk, np.int64)}


# summarize ---------------------------------------------------------------------------------------------------------

def test_summarize_shares_and_percentiles():
    tokens = np.arange(21)  # 0..20: one empty text, percentiles that fall on exact values
    words = tokens // 2 + (tokens > 0)
    unk = np.zeros(21, np.int64)
    unk[[3, 7, 20]] = [1, 2, 1]
    s = text_stats.summarize(counts(tokens, words, unk), max_seq_length=12)
    assert s == {
        "examples": 21,
        "empty": 1,
        "empty_share": round(1 / 21, 6),
        "truncated": 10,  # 11..20 tokens do not fit in 12 - [CLS] - [SEP] = 10
        "truncated_share": round(10 / 21, 6),
        "max_seq_length": 12,
        "unk_share": round(4 / int(tokens.sum()), 6),
        "word_coverage": round(1 - 4 / int(words.sum()), 6),
        "tokens_mean": 10.0,
        "tokens_p50": 10,
        "tokens_p95": 19,
        "tokens_max": 20,
    }


def test_truncation_counts_against_max_seq_length_minus_two():
    s = text_stats.summarize(counts([8, 8, 9, 10, 3]), max_seq_length=10)
    assert s["truncated"] == 2 and s["truncated_share"] == 0.4  # 9 and 10 do not fit; 8 + [CLS] + [SEP] does


def test_a_pairs_truncation_counts_against_max_seq_length_minus_three():
    s = text_stats.summarize(counts([7, 8, 9, 3]), max_seq_length=10, special_tokens=3)
    assert s["truncated"] == 2  # 8 and 9 tokens of two texts do not fit beside [CLS] a [SEP] b [SEP]; 7 does


def pair_counts(question, passage):
    """A pair's counts as Transform emits them: both texts' together, and each column's."""
    a, b = counts(question), counts(passage)
    return {**{key: a[key] + b[key] for key in a},
            **{features.column_stat_key(key, "question"): a[key] for key in a},
            **{features.column_stat_key(key, "passage"): b[key] for key in b}}


def test_a_pairs_texts_are_each_checked_for_emptiness_naming_the_column():
    """A whitespace-only passage beside a question is an empty text, though the pair has tokens; truncation is the
    pair's combined length's."""
    pair = pair_counts([5] * 10, [0, 0, 0] + [6] * 7)
    assert set(text_stats.stat_keys("question,passage")) == set(pair)
    assert text_stats.stat_keys("text") == features.TEXT_STAT_KEYS
    summary = text_stats.summarize(pair, max_seq_length=13, special_tokens=3)
    assert summary["empty"] == 0 and summary["truncated"] == 7  # 5 + 6 tokens do not fit in 13 - 3
    summary["columns"] = text_stats.column_summaries(pair, 13, "question,passage")
    assert summary["columns"]["passage"]["empty"] == 3 and summary["columns"]["question"]["empty"] == 0
    assert text_stats.column_summaries(counts([1, 2]), 14, "text") == {}
    failed = text_stats.check_pair(summary, {**ALL_OFF, "max_empty_share": 0.1, "max_truncated_share": 0.5})
    assert [r.short_description for r in failed] == ["TRUNCATED_TEXTS", "EMPTY_TEXTS"]
    assert failed[0].description.startswith("7 of 10 texts (70.0%) are longer than 13 tokens")
    assert failed[1].description.startswith("column 'passage': 3 of 10 texts (30.0%) have no token at all")


def test_summarize_without_tokens_does_not_divide_by_zero():
    s = text_stats.summarize(counts([0, 0, 0, 0]), max_seq_length=128)
    assert s["empty"] == 4 and s["empty_share"] == 1.0
    assert s["unk_share"] == 0.0 and s["word_coverage"] == 1.0
    assert s["tokens_max"] == 0 and s["truncated"] == 0


def test_summarize_an_empty_split():
    assert text_stats.summarize(counts([]), max_seq_length=128) == {"examples": 0}
    assert text_stats.check_shares({"examples": 0}, DEFAULT_CHECKS, "text") == []


def test_summary_is_json_serializable():
    s = text_stats.summarize(counts([1, 2, 3], [1, 2, 2], [0, 1, 0]), max_seq_length=4)
    assert json.loads(json.dumps(s)) == s


# check_shares: each check at its threshold passes, one example beyond fails ----------------------------------------

def spread_unk(n_unk, n=100, tokens=10):
    """100 texts of 10 tokens (1,000 tokens and words), n_unk of them [UNK]."""
    unk = np.zeros(n, np.int64)
    for i in range(n_unk):
        unk[i % n] += 1
    return counts(np.full(n, tokens), np.full(n, tokens), unk)


CASES = {
    # kind: (threshold key, threshold, counts at the threshold, counts one example beyond, max_seq_length)
    "EMPTY_TEXTS": ("max_empty_share", 0.1, counts([0] * 10 + [5] * 90), counts([0] * 11 + [5] * 89), 128),
    "TRUNCATED_TEXTS": ("max_truncated_share", 0.05, counts([9] * 5 + [8] * 95), counts([9] * 6 + [8] * 94), 10),
    "UNKNOWN_TOKENS": ("max_unk_share", 0.02, spread_unk(20), spread_unk(21), 128),
    "LOW_WORD_COVERAGE": ("min_word_coverage", 0.97, spread_unk(30), spread_unk(31), 128),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_each_check_fires_just_beyond_its_threshold(kind):
    key, threshold, at, beyond, max_seq_length = CASES[kind]
    checks = {**ALL_OFF, key: threshold}
    assert text_stats.check_shares(text_stats.summarize(at, max_seq_length), checks, "text") == []
    failed = text_stats.check_shares(text_stats.summarize(beyond, max_seq_length), checks, "text")
    assert [(r.type, r.short_description) for r in failed] == [(Info.CUSTOM_VALIDATION, kind)]
    assert f"{key} is {threshold}" in failed[0].description


@pytest.mark.parametrize("kind", list(CASES))
def test_a_threshold_of_one_or_zero_switches_a_check_off(kind):
    key, threshold, _, _, max_seq_length = CASES[kind]
    worst = {"EMPTY_TEXTS": counts([0] * 100), "TRUNCATED_TEXTS": counts([500] * 100),
             "UNKNOWN_TOKENS": spread_unk(1000), "LOW_WORD_COVERAGE": spread_unk(1000)}[kind]
    summary = text_stats.summarize(worst, max_seq_length)
    assert text_stats.check_shares(summary, ALL_OFF, "text") == []
    # ... and the same data fails with the check on.
    assert [r.short_description for r in text_stats.check_shares(summary, {**ALL_OFF, key: threshold}, "text")] \
        == [kind]


def test_default_checks_refuse_a_single_empty_text():
    summary = text_stats.summarize(counts([0] + [5] * 999), max_seq_length=128)
    assert [r.short_description for r in text_stats.check_shares(summary, DEFAULT_CHECKS, "text")] == ["EMPTY_TEXTS"]


def test_several_failures_in_order_with_readable_descriptions():
    # 4 texts: one empty, one truncated (12 > 10), half the words [UNK].
    summary = text_stats.summarize(counts([0, 12, 4, 4], [0, 6, 4, 2], [0, 3, 2, 1]), max_seq_length=12)
    failed = text_stats.check_shares(summary, DEFAULT_CHECKS, "review")
    assert [r.short_description for r in failed] == ["EMPTY_TEXTS", "UNKNOWN_TOKENS", "LOW_WORD_COVERAGE"]
    summary = text_stats.summarize(counts([0, 12, 4, 4], [0, 6, 4, 2], [0, 3, 2, 1]), max_seq_length=10)
    failed = text_stats.check_shares(summary, {**DEFAULT_CHECKS, "max_truncated_share": 0.2}, "review")
    assert [r.short_description for r in failed] == ["EMPTY_TEXTS", "TRUNCATED_TEXTS", "UNKNOWN_TOKENS",
                                                     "LOW_WORD_COVERAGE"]
    descriptions = {r.short_description: r.description for r in failed}
    assert descriptions["EMPTY_TEXTS"].startswith("1 of 4 texts (25.0%) have no token at all")
    assert descriptions["TRUNCATED_TEXTS"].startswith("1 of 4 texts (25.0%) are longer than 10 tokens")
    assert descriptions["UNKNOWN_TOKENS"].startswith("30.0% of the WordPiece tokens are [UNK]")
    assert "50.0% of the words of column 'review'" in descriptions["LOW_WORD_COVERAGE"]


# token_count_drift ---------------------------------------------------------------------------------------------

def count_statistics(low, high, seed, n=500, words_factor=1.0):
    tokens = np.random.default_rng(seed).integers(low, high, n)
    return tfdv.generate_statistics_from_dataframe(pd.DataFrame(
        {WORDS: (tokens * words_factor).astype(np.int64), TOKENS: tokens, UNK: np.zeros(n, np.int64)}))


def test_shifted_token_counts_drift():
    found = text_stats.token_count_drift(count_statistics(60, 90, seed=1), count_statistics(10, 30, seed=0), 0.25)
    assert list(found.anomaly_info) == [TOKENS]
    assert [Info.Type.Name(r.type) for r in found.anomaly_info[TOKENS].reason] == [
        "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"]
    assert "threshold 0.25" in found.anomaly_info[TOKENS].description
    # the refusal's sentence keeps TFDV's figure, said in the text's terms
    said = text_stats.drift_sentence(found.anomaly_info[TOKENS].reason[0].description, 0.25)
    figure = float(said.split("Jensen-Shannon divergence ")[1].split(";")[0])
    assert said.startswith("the distribution of tokens per text drifted") and 0.25 < figure <= 1, said
    assert said.endswith("; max_token_count_drift is 0.25).")
    assert text_stats.drift_sentence("Something else.", 0.1) == (
        "the distribution of tokens per text drifted from the last accepted data's (Something else; "
        "max_token_count_drift is 0.1).")


def test_the_same_distribution_does_not_drift():
    found = text_stats.token_count_drift(count_statistics(10, 30, seed=2), count_statistics(10, 30, seed=0), 0.25)
    assert len(found.anomaly_info) == 0


def test_only_the_token_counts_are_compared():
    # The words per text change completely, the tokens per text do not.
    found = text_stats.token_count_drift(count_statistics(10, 30, seed=0, words_factor=5.0),
                                         count_statistics(10, 30, seed=0), 0.25)
    assert len(found.anomaly_info) == 0


def test_a_drift_threshold_of_one_switches_it_off():
    assert len(text_stats.token_count_drift(count_statistics(60, 90, seed=1), count_statistics(10, 30, seed=0),
                                            1.0).anomaly_info) == 0


# TextStatisticsGen, its function called on a few gzipped TFRecords -----------------------------------------------

class FakeArtifact:
    def __init__(self, uri, split_names=""):
        self.uri = str(uri)
        self.split_names = split_names


def write_examples(folder: Path, by_split):
    import tensorflow as tf

    for split, rows in by_split.items():
        (folder / f"Split-{split}").mkdir(parents=True)
        with tf.io.TFRecordWriter(str(folder / f"Split-{split}" / "data.gz"), options="GZIP") as writer:
            for t, w, u in rows:
                values = {TOKENS: t, WORDS: w, UNK: u}
                example = tf.train.Example(features=tf.train.Features(feature={
                    k: tf.train.Feature(int64_list=tf.train.Int64List(value=[v])) for k, v in values.items()}))
                writer.write(example.SerializeToString())
    return FakeArtifact(folder, standard_artifact_utils.encode_split_names(sorted(by_split)))


def test_read_counts(tmp_path):
    write_examples(tmp_path, {"train": [(3, 2, 0), (0, 0, 0), (7, 5, 1)]})
    read = text_stats.read_counts([str(tmp_path / "Split-train" / "data.gz")])
    assert {k: v.tolist() for k, v in read.items()} == {TOKENS: [3, 0, 7], WORDS: [2, 0, 5], UNK: [0, 0, 1]}
    assert all(v.size == 0 for v in text_stats.read_counts([]).values())


def test_text_statistics_gen_checks_every_split_and_the_drift(tmp_path):
    rng = np.random.default_rng(0)
    good = [(int(t), int(t), 0) for t in rng.integers(10, 30, 200)]
    examples = write_examples(tmp_path / "examples", {"train": good, "eval": good[:50] + [(0, 0, 0)]})
    baseline_examples = write_examples(tmp_path / "old", {"train": [(t * 4, w * 4, u) for t, w, u in good]})
    baseline_stats = FakeArtifact(tmp_path / "baseline")
    gen = text_stats.TextStatisticsGen.test_call
    gen(examples=[baseline_examples], statistics=baseline_stats, anomalies=FakeArtifact(tmp_path / "a0"),
        text_key="text", max_seq_length=128, checks=json.dumps({}))

    statistics, anomalies = FakeArtifact(tmp_path / "stats"), FakeArtifact(tmp_path / "anomalies")
    gen(examples=[examples], statistics=statistics, anomalies=anomalies, text_key="review", max_seq_length=128,
        checks=json.dumps({"max_truncated_share": 1.0}), baseline_statistics=baseline_stats)

    assert json.loads(statistics.split_names) == ["eval", "train"]
    summaries = json.loads((tmp_path / "stats" / text_stats.SUMMARY_FILE).read_text())
    assert summaries["train"]["examples"] == 200 and summaries["eval"]["empty"] == 1
    assert (tmp_path / "stats" / "Split-train" / gates.STATISTICS_FILE).is_file()
    problems = gates.anomaly_problems(gates.load_anomalies(anomalies.uri, anomalies.split_names))
    assert [(p["split"], p["feature"], p["kind"]) for p in problems] == [
        ("eval", "review", "EMPTY_TEXTS"), ("train", "review", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH")]
    assert "the distribution of tokens per text drifted" in problems[1]["description"]
    assert "max_token_count_drift is 0.25" in problems[1]["description"]


# load_checks and checks_file_for ------------------------------------------------------------------------------

def test_no_file_gives_the_defaults_as_a_copy():
    for path in (None, ""):
        checks = load_checks(path)
        assert checks == DEFAULT_CHECKS and checks is not DEFAULT_CHECKS
    load_checks(None)["max_unk_share"] = 0.9
    assert text_checks.DEFAULT_CHECKS["max_unk_share"] == 0.05


def test_a_file_overrides_what_it_names(tmp_path):
    path = tmp_path / "text_checks.toml"
    path.write_text("max_unk_share = 0.1\nmin_word_coverage = 1\n# a comment\n")
    checks = load_checks(str(path))
    assert checks == {**DEFAULT_CHECKS, "max_unk_share": 0.1, "min_word_coverage": 1.0}
    assert isinstance(checks["min_word_coverage"], float)


@pytest.mark.parametrize("dataset", ["rotten_tomatoes", "20newsgroups", "drug_reviews"])
def test_the_curated_files_load(dataset):
    path = REPO / "schema" / dataset / "text_checks.toml"
    checks = load_checks(str(path))
    assert set(checks) == set(DEFAULT_CHECKS)
    assert all(0.0 <= v <= 1.0 for v in checks.values())
    if dataset == "rotten_tomatoes":
        assert checks["max_truncated_share"] == 0.05 and checks["min_word_coverage"] == 0.97


@pytest.mark.parametrize("text, names", [
    ("max_emtpy_share = 0.1\n", ["unknown check 'max_emtpy_share'", "max_empty_share"]),
    ("max_unk_share = 1.5\n", ["max_unk_share must be a number between 0 and 1", "1.5"]),
    ("min_word_coverage = -0.1\n", ["min_word_coverage must be", "-0.1"]),
    ("max_empty_share = true\n", ["max_empty_share must be a number", "True"]),
    ("max_empty_share = \"0.1\"\n", ["max_empty_share must be a number", "'0.1'"]),
    ("max_unk_share = \n", ["is not valid TOML"]),
    ("[checks]\nmax_unk_share = 0.1\n", ["unknown check 'checks'"]),
], ids=["unknown-key", "above-one", "below-zero", "bool", "string", "invalid-toml", "table"])
def test_a_bad_file_is_a_value_error_naming_it(tmp_path, text, names):
    path = tmp_path / "text_checks.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        load_checks(str(path))
    message = str(raised.value)
    assert str(path) in message
    for name in names:
        assert name in message


def test_checks_file_for(tmp_path):
    assert checks_file_for(None) is None and checks_file_for("") is None
    curated = REPO / "schema" / "rotten_tomatoes" / "schema.pbtxt"
    assert checks_file_for(str(curated)) == str(curated.parent / text_checks.CHECKS_FILE)
    (tmp_path / "schema.pbtxt").write_text("")
    assert checks_file_for(str(tmp_path / "schema.pbtxt")) is None
    (tmp_path / text_checks.CHECKS_FILE).mkdir()  # a folder of that name is not the file
    assert checks_file_for(str(tmp_path / "schema.pbtxt")) is None


def test_truncation_is_reported_not_refused_without_a_baseline():
    """A first run has no accepted data to compare with: long texts are cut and reported; later runs refuse them."""
    import numpy as np

    counts = {"num_words": np.array([100] * 6 + [5] * 4), "num_wordpieces": np.array([100] * 6 + [5] * 4),
              "num_unk": np.zeros(10, np.int64)}
    summary = text_stats.summarize(counts, 64)
    first = text_stats.check_shares(summary, DEFAULT_CHECKS, "text", has_baseline=False)
    later = text_stats.check_shares(summary, DEFAULT_CHECKS, "text", has_baseline=True)
    assert [r.short_description for r in first] == ["TRUNCATED_TEXTS_REPORTED"]
    assert "reported, not refused" in first[0].description and "--max-seq-length" in first[0].description
    assert [r.short_description for r in later] == ["TRUNCATED_TEXTS"]


def test_one_enormous_text_is_not_a_drift_but_longer_texts_are():
    """The drift statistics clip the counts at twice the sequence length: one 100,000-character text among hundreds
    of short ones does not look like the whole distribution moved; texts three times as long do."""
    import numpy as np
    import pandas as pd
    import tensorflow_data_validation as tfdv

    rng = np.random.default_rng(0)
    short = rng.integers(8, 18, 400)

    def stats(wordpieces):
        counts = {"num_words": wordpieces, "num_wordpieces": wordpieces, "num_unk": np.zeros_like(wordpieces)}
        return tfdv.generate_statistics_from_dataframe(pd.DataFrame(text_stats.clipped(counts, 32)))

    baseline = stats(short)
    with_outlier = stats(np.concatenate([rng.integers(8, 18, 399), [25_000]]))
    longer = stats(short * 3)
    assert not text_stats.token_count_drift(with_outlier, baseline, 0.25).anomaly_info
    assert text_stats.token_count_drift(longer, baseline, 0.25).anomaly_info
