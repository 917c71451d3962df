"""ServingSkewCheck's comparison (components/validation/serving_skew.py) on counts and statistics made by TFDV itself:
in-domain traffic crosses nothing, out-of-domain traffic (other answers, longer texts, unknown words) crosses each
check with a sentence naming its threshold, the sample puts the texts furthest from training first, and the verdict
is one sentence. The counts of a real model's transform graph are the end-to-end test's
(tests/e2e/test_serving_loop.py)."""

import csv
import io

import numpy as np
import pandas as pd
import pytest

from components import features
from components.validation import serving_skew
from components.validation.text_checks import DEFAULT_CHECKS
from components.validation.text_stats import clipped, summarize

MAX_SEQ = 64


def counts(tokens, unk=None, words=None):
    tokens = np.asarray(tokens, np.int64)
    return {features.NUM_WORDPIECES_KEY: tokens,
            features.NUM_WORDS_KEY: np.asarray(words if words is not None else np.maximum(tokens - 1, 0), np.int64),
            features.NUM_UNK_KEY: np.asarray(unk if unk is not None else np.zeros_like(tokens), np.int64)}


@pytest.fixture(scope="module")
def training():
    """The statistics the gates accepted: the train split's labels (half each) and token counts (10 to 20)."""
    import tensorflow_data_validation as tfdv

    rng = np.random.default_rng(0)
    train_tokens = rng.integers(10, 21, 400)
    data = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"label": ["neg", "pos"] * 200,
                                                                 "text": ["t"] * 400}))
    text = tfdv.generate_statistics_from_dataframe(pd.DataFrame(clipped(counts(train_tokens), MAX_SEQ)))
    return data, text, summarize(counts(train_tokens), MAX_SEQ)


def rows(labels, probabilities, texts=None):
    n = len(labels)
    return {"text": texts or [f"text {i}" for i in range(n)], "label": list(labels),
            "probability_label": list(probabilities), "version": [1] * n, "time": [1_700_000_000 + i for i in range(n)]}


def test_in_domain_traffic_crosses_nothing(training):
    data, text, summary = training
    tokens = np.random.default_rng(1).integers(10, 21, 200)
    report, stats = serving_skew.compare(rows(["neg", "pos"] * 100, [0.9] * 200), counts(tokens), ["label"], "text",
                                         DEFAULT_CHECKS, data, text, summary)
    assert report["skew_found"] is False and report["crossed"] == []
    assert report["classes"]["label"] == {"serving": {"neg": 0.5, "pos": 0.5}, "training": {"neg": 0.5, "pos": 0.5}}
    histogram = report["token_histogram"]
    assert histogram and sum(b["training"] for b in histogram) == pytest.approx(1, abs=0.01)
    assert sum(b["serving"] for b in histogram) == pytest.approx(1, abs=0.01)
    assert stats.datasets[0].num_examples == 200


def test_out_of_domain_traffic_crosses_each_check_and_says_which_threshold(training):
    data, text, summary = training
    n = 100
    tokens = np.full(n, 60)
    report, _ = serving_skew.compare(rows(["pos"] * 95 + ["neg"] * 5, [0.6] * n), counts(tokens, unk=np.full(n, 20),
                                     words=np.full(n, 30)), ["label"], "text", DEFAULT_CHECKS, data, text, summary)
    assert report["skew_found"] is True
    crossed = {c["check"]: c["description"] for c in report["crossed"]}
    assert set(crossed) == {"PREDICTED_CLASS_SHIFT", "TOKEN_COUNT_DRIFT", "UNKNOWN_TOKENS", "LOW_WORD_COVERAGE"}
    assert "max_predicted_class_shift 0.2" in crossed["PREDICTED_CLASS_SHIFT"]
    assert "neg 5%, pos 95%" in crossed["PREDICTED_CLASS_SHIFT"] and "neg 50%, pos 50%" in crossed[
        "PREDICTED_CLASS_SHIFT"]
    assert "max_token_count_drift is 0.25" in crossed["TOKEN_COUNT_DRIFT"]
    assert "max_unk_share is 0.05" in crossed["UNKNOWN_TOKENS"]


def test_a_threshold_of_the_text_checks_file_moves_the_line(training):
    data, text, summary = training
    labels = ["pos"] * 70 + ["neg"] * 30  # 20 points from the training's half
    tokens = np.random.default_rng(2).integers(10, 21, 100)
    strict, _ = serving_skew.compare(rows(labels, [0.9] * 100), counts(tokens), ["label"], "text",
                                     {**DEFAULT_CHECKS, "max_predicted_class_shift": 0.1}, data, text, summary)
    lenient, _ = serving_skew.compare(rows(labels, [0.9] * 100), counts(tokens), ["label"], "text",
                                      {**DEFAULT_CHECKS, "max_predicted_class_shift": 0.3}, data, text, summary)
    assert [c["check"] for c in strict["crossed"]] == ["PREDICTED_CLASS_SHIFT"]
    assert lenient["crossed"] == []


def test_the_sample_puts_the_texts_furthest_from_training_first_with_an_empty_label_to_fill_in():
    texts = ["in domain", "all unknown", "very long", "empty", "unsure"]
    served = rows(["pos", "neg", "pos", "neg", "pos"], [0.9, 0.8, 0.9, 0.7, 0.51], texts)
    made = counts([12, 12, 300, 0, 12], unk=[0, 10, 0, 0, 0], words=[10, 10, 250, 0, 10])
    table = list(csv.DictReader(io.StringIO(serving_skew.sample_csv(served, made, ["label"], "text", p95=18))))
    assert [r["text"] for r in table] == ["all unknown", "very long", "empty", "unsure", "in domain"]
    assert table[0] == {**table[0], "label": "", "predicted_label": "neg", "probability_label": "0.8",
                        "unk_tokens": "10", "tokens": "12", "model_version": "1"}


def test_the_verdict_is_one_sentence_for_each_outcome():
    assert serving_skew.verdict({"new_traffic": False}).startswith("No new traffic")
    assert "no model in service" in serving_skew.verdict({"new_traffic": True, "examples": 3, "compared": False,
                                                          "why_not_compared": "no model in service"})
    calm = serving_skew.verdict({"new_traffic": True, "examples": 3, "compared": True, "skew_found": False})
    assert "look like its training data" in calm
    said = serving_skew.verdict({"new_traffic": True, "examples": 3, "compared": True, "skew_found": True,
                                 "crossed": [{"check": "UNKNOWN_TOKENS"}], "sample": "/r/sample.csv"})
    assert "UNKNOWN_TOKENS" in said and "/r/sample.csv" in said and said.count(". ") == 0


def test_the_summary_carries_the_serving_section_and_the_report_shows_it_in_service(training, tmp_path):
    """The report as ServingSkewCheck writes it, read back by the run summary (summarize) and drawn by the page."""
    import json

    from components.release import report_page
    from components.release.run_summary import RunArtifacts, RunSetup, summarize

    data, text, summary = training
    compared, _ = serving_skew.compare(rows(["pos"] * 100, [0.6] * 100), counts(np.full(100, 60)), ["label"],
                                       "text", DEFAULT_CHECKS, data, text, summary)
    report = {"requests": 50, "examples": 100, "files": 2, "versions": {"1": 100}, "new_traffic": True,
              "compared": True, **compared, "sample": str(tmp_path / "skewed_sample.csv")}
    report["verdict"] = serving_skew.verdict(report)
    (tmp_path / serving_skew.REPORT_FILE).write_text(json.dumps(report))
    setup = RunSetup("d", "/d", None, "none", "m", 0, "m", MAX_SEQ, "text", "label")
    run = summarize(RunArtifacts(serving_skew=str(tmp_path)), setup)
    assert run.serving["skew_found"] is True and run.serving["requests"] == 50
    assert run.to_json()["serving"]["crossed"] == report["crossed"]
    assert summarize(RunArtifacts(), setup).serving is None  # no --serving-logs: no section

    page = report_page.in_service_section(run)
    assert "differ from its training data" in page and "PREDICTED_CLASS_SHIFT" in page
    assert str(tmp_path / "skewed_sample.csv") in page
    assert page.count("<img") == 2  # the classes, and the tokens per text side by side
    assert "No request logs were read" in report_page.in_service_section(summarize(RunArtifacts(), setup))
