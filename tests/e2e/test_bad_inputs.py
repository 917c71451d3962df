"""Retraining you can trust: bad data and bad models never replace the model in service, on a user's own data.

A good run (conftest's `served`) first trains and pushes a model on span-1 of a small, easily learned dataset
(support/retraining.py), given as a user's own CSV files (own column names, no --schema): that run froze the schema
its data was accepted with. Each case then starts from a copy of that run's pipeline root and serving folder, adds a
span-2 holding the bad data, runs `pipeline/run_local.py` as a user would, and checks the exit status, the one-line
message, the machine-readable anomalies (in --summary-json and in <pipeline_root>/anomalies.json), what did not run, and
that the serving folder is byte-for-byte what it was. Data that should be accepted (a 100,000-character text, emoji,
mixed scripts, an extra column) is accepted, and the run says what it did with it."""

import json
import random
import re
from pathlib import Path

import pytest

from pipeline.dag import nodes
from support import OWN_DATA_UPSTREAM, VALIDATION
from support.retraining import LABEL, TEXT, Case, N, rows, snapshot, write_csv


@pytest.fixture
def case(served, tmp_path):
    return Case(served, tmp_path)


# 1. Malformed CSV -------------------------------------------------------------------------------------------------

def test_wrong_number_of_fields(case):
    write_csv(case.span / "reviews.csv", rows(50) + [["a review", "fresh", "an extra field"]])
    case.run()
    case.assert_refused("MALFORMED_CSV", "(input)", "reviews.csv", "line 52", "3 fields where the header has 2")


def test_unbalanced_quotes(case):
    path = write_csv(case.span / "reviews.csv", rows(50))
    with open(path, "a", encoding="utf-8") as f:
        f.write('"a review whose quote never closes,fresh\n' + "another review,rotten\n")
    case.run()
    case.assert_refused("MALFORMED_CSV", "(input)", "reviews.csv", "line 52", "never closed")


# 2. The text column missing or renamed ------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [(LABEL,), ("text", LABEL)], ids=["missing", "renamed"])
def test_text_column_missing_or_renamed(case, header):
    data = [[label] for _, label in rows(50)] if len(header) == 1 else rows(50)
    write_csv(case.span / "reviews.csv", data, header=header)
    case.run()
    case.assert_refused("MISSING_COLUMN", TEXT, f"no text column '{TEXT}'", "--text-column")


# 3. Empty and whitespace-only texts -----------------------------------------------------------------------------

def test_a_few_empty_texts(case):
    data = rows(200, seed=3)
    for i in (5, 50, 120):
        data[i][0] = ""
    write_csv(case.span / "reviews.csv", data)
    case.run()
    # The frozen schema requires a text in every example (presence.min_fraction 1.0), as a curated one does: refused
    # at the door, naming the file, the rows and what to do, before any step runs.
    case.assert_refused("EMPTY_TEXT_FIELDS", TEXT, f"{case.span / 'reviews.csv'}: 3 of 200 rows have an empty text",
                        f"'{TEXT}'", "lines 7, 52, 122", "remove those rows, or fill them in")
    assert case.summary["components"] == {}


def test_mostly_whitespace_texts(case):
    data = rows(200, seed=4)
    for i in range(150):
        data[i][0] = " \t  " if i % 2 else "   "
    write_csv(case.span / "reviews.csv", data)
    case.run()
    # Present for TFDV, but no token at all: the text checks (max_empty_share in text_checks.toml) stop it.
    case.assert_refused("EMPTY_TEXTS", TEXT, "have no token at all", "max_empty_share")
    assert case.summary["components"][nodes.TRANSFORM]["state"] == "COMPLETE"
    train = case.summary["text_statistics"]["train"]
    assert train["empty"] > train["examples"] / 2, train


# 4. Missing labels, a label outside the schema's domain ----------------------------------------------------------

# Refused at the edge, before anything runs: the file, the column, how many rows, their lines and the values.

@pytest.mark.parametrize("every", [10, 2], ids=["a tenth", "half"])
def test_missing_labels(case, every):
    data = rows(200, seed=5)
    for i in range(0, 200, every):
        data[i][1] = ""
    write_csv(case.span / "reviews.csv", data)
    case.run()
    case.assert_refused("MISSING_LABELS", LABEL, "reviews.csv", f"{200 // every} of 200 rows have no value",
                        f"label column '{LABEL}'", "lines 2, ")
    assert case.summary["components"] == {}  # nothing ran


def test_label_outside_the_frozen_domain(case):
    data = rows(200, seed=6)
    for i in range(0, 200, 3):
        data[i][1] = "meh"
    write_csv(case.span / "reviews.csv", data)
    case.run()
    case.assert_refused("UNKNOWN_LABELS", LABEL, "reviews.csv", "'meh' in 67 row(s)", "its classes: fresh, rotten",
                        str(case.root / "schema" / "schema.pbtxt"), "--accept-new-classes")
    assert case.summary["components"] == {}


# 5. Bytes that are not UTF-8 ----------------------------------------------------------------------------------------

def test_invalid_utf8(case):
    path = write_csv(case.span / "reviews.csv", rows(30))
    with open(path, "ab") as f:
        f.write(b"caf\xe9 au lait was \xff\xfe lovely,fresh\n")
    case.run()
    case.assert_refused("NOT_UTF8", "(input)", "reviews.csv", "line 32", "not valid UTF-8")


# 7. A header-only file, an empty span folder ------------------------------------------------------------------------

def test_header_only_file(case):
    write_csv(case.span / "reviews.csv", [])
    case.run()
    case.assert_refused("NO_ROWS", "(input)", "no data rows")


def test_empty_span_folder(case):
    case.span.mkdir(parents=True)
    case.run()
    case.assert_refused("NO_DATA_FILES", "(input)", "span-2", "no .csv files")


# 8. Drift against the previous span ---------------------------------------------------------------------------------

def test_label_distribution_drift(case):
    # The local runner's run-2 of the retraining scenario that tests/integration/test_kubeflow_executed.py runs on
    # the compiled Kubeflow spec: the same drifted span, refused against the good run's accepted statistics.
    write_csv(case.span / "reviews.csv", rows(N, seed=8, fresh_share=0.95))
    case.run()
    case.assert_refused("COMPARATOR_L_INFTY_HIGH", LABEL, f"'{LABEL}'", "Linfty",
                        f"edit {case.root / 'schema' / 'schema.pbtxt'}")
    assert case.summary["anomalies"][0]["found_by"] == "DriftValidator"
    assert nodes.TRANSFORM not in case.summary["components"]
    assert case.summary["components"][nodes.BASELINE_LOOKUP]["state"] == "COMPLETE"


def test_text_length_drift(case):
    # The same kind of reviews, but every one three times as long (still far below --max-seq-length).
    write_csv(case.span / "reviews.csv", rows(N, seed=9, length=40))
    case.run()
    case.assert_refused("COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH", TEXT, "tokens per text drifted",
                        "max_token_count_drift")


# NLP statistics: a span the vocabulary cannot represent ---------------------------------------------------------

AMHARIC = ["ፊልሙ", "ጥሩ", "ነበር", "መጥፎ", "ታሪኩ", "ተዋናዮቹ", "በጣም", "አስደሳች", "አሰልቺ", "ሙዚቃው", "መጨረሻው", "ደስ"]


def test_texts_the_vocabulary_cannot_represent(case):
    # Reviews in Amharic: the packaged (English, uncased) WordPiece vocabulary has no Ethiopic script at all.
    rng = random.Random(13)
    data = [[" ".join(rng.choices(AMHARIC, k=rng.randint(8, 16))), rng.choice(["fresh", "rotten"])]
            for _ in range(N)]
    write_csv(case.span / "reviews.csv", data)
    case.run()
    case.assert_refused("UNKNOWN_TOKENS", TEXT, "[UNK]", "max_unk_share",
                        "what to do: pass --vocab learn", "the packaged one does not cover these texts")
    assert any("LOW_WORD_COVERAGE" in a["kind"] for a in case.summary["anomalies"]), case.summary["anomalies"]
    assert case.summary["text_statistics"]["train"]["unk_share"] > 0.9


# 6 and 9. Data that is accepted (conftest's `accepted` run): a 100,000-character text, emoji, mixed scripts, an extra
# column ---------------------------------------------------------------------------------------------------------

def test_a_100000_character_text_is_accepted_and_truncated(accepted):
    # A new span unlike the last only by these few texts: both drift checks and every text check pass.
    assert accepted.proc.returncode == 0, accepted.proc.stderr[-4000:]
    for gate in (nodes.DATA_GATE, nodes.TEXT_GATE):
        assert accepted.summary["components"][gate]["state"] == "COMPLETE"
    stats = accepted.summary["text_statistics"]
    assert sum(split["truncated"] for split in stats.values()) == 1, stats
    assert sum(split["tokens_max"] > 10_000 for split in stats.values()) == 1, stats
    assert accepted.summary["anomalies"] == []
    assert accepted.summary["pushed"] or accepted.summary["not_blessed_because"]
    length = accepted.summary["max_seq_length"]  # chosen by --max-seq-length auto, as in the first run
    assert length % 32 == 0 and f"truncated to {length}" in accepted.proc.stdout


def test_extra_column_is_accepted_with_a_warning(accepted):
    assert accepted.proc.returncode == 0, accepted.proc.stderr[-4000:]
    warnings = accepted.summary["warnings"]
    assert any("review_id" in w and "not used" in w for w in warnings), warnings  # the input check
    assert any("review_id" in w for w in json.loads((accepted.root / "anomalies.json").read_text())["warnings"])
    assert "warning:" in accepted.proc.stderr and "review_id" in accepted.proc.stderr
    # A second run: its report compares the labels and the token lengths with the last accepted data.
    page = (accepted.root / "report.html").read_text()
    assert 'alt="Train labels against the drift checks&#x27; baseline"' in page
    assert 'alt="Token lengths against the baseline"' in page and "review_id" in page  # the warning, too


# Bad models never replace good ones ---------------------------------------------------------------------------------

def test_degraded_model_is_not_blessed_and_the_summary_says_why(case):
    # The good run's own data, but a model trained for one step.
    case.run("--train-steps", "1", data_root=case.served_data)
    assert case.proc.returncode == 0, case.proc.stderr[-4000:]
    summary = case.summary
    # A second run on the same data: every step before the Trainer comes from the cache, except the validation
    # against the last accepted data (whose baseline is now the first run's statistics, so it runs again and finds
    # no drift); the Evaluator's baseline is the model the first run pushed.
    for node in OWN_DATA_UPSTREAM:  # the frozen schema is published from the cache too: the freeze kept the cache
        assert summary["components"][node]["state"] == "CACHED", (node, summary["components"][node])
    for node in VALIDATION + (nodes.TRAINER, nodes.EVALUATOR):
        assert summary["components"][node]["state"] == "COMPLETE", (node, summary["components"][node])
    assert summary["anomalies"] == [], summary["anomalies"]
    assert summary["baseline_model"] == case.in_service()  # the version in service, compared with
    assert summary["components"][nodes.BASELINE_LOOKUP]["state"] == "COMPLETE"  # never from the cache
    assert summary["blessed"] is False and summary["pushed"] is False
    # The metric, its value, the model in service's, and the allowed drop.
    reasons = " ".join(summary["not_blessed_because"])
    accuracy = summary["eval_metrics"]["sparse_categorical_accuracy"]
    served = case.good["eval_metrics"]["sparse_categorical_accuracy"]
    found = re.search(r"sparse_categorical_accuracy is ([0-9.]+) below the model in service's \(([0-9.]+) against "
                      r"([0-9.]+)\); the most it may drop is 0.01", reasons)
    assert found, reasons
    drop, candidate, baseline = map(float, found.groups())
    assert abs(candidate - accuracy) < 1e-3 and abs(baseline - served) < 1e-3 and abs(drop - (served - accuracy)) < 1e-3
    verdict = next(line for line in case.proc.stdout.splitlines() if line.startswith("blessed: "))
    assert verdict.startswith("blessed: False (") and "sparse_categorical_accuracy is" in verdict
    assert snapshot(case.serving) == case.before


def test_warm_start_from_the_model_in_service(accepted):
    # One step on a new span from the model in service keeps its accuracy; one step from scratch does not (the
    # degraded-model test).
    assert accepted.proc.returncode == 0, accepted.proc.stderr[-4000:]
    assert "warm start from the model in service" in accepted.proc.stdout
    assert accepted.summary["eval_metrics"]["sparse_categorical_accuracy"] >= 0.8, accepted.summary["eval_metrics"]
    # The local runner's run-3 of the retraining scenario (tests/integration/test_kubeflow_executed.py runs it on the
    # compiled Kubeflow spec): started from, and compared with, the version folder in service.
    served = accepted.in_service()
    assert accepted.summary["baseline_model"] == served
    history = json.loads((Path(accepted.summary["model_uri"]) / "training_history.json").read_text())
    assert history["started_from"] == served
    # Drift was measured against the statistics the good run's gate accepted, published under the pipeline root.
    published = sorted((accepted.root / "baselines" / nodes.DATA_GATE).iterdir())
    assert len(published) == 2 and json.loads((published[0] / "baseline.json").read_text())["span"] == 1
