"""The benchmarks' pair and score data scripts (benchmarks/pairs_aclsum.py, scores_lee.py, scores_vader.py) and the
pair baselines' features, on small inputs written here in each package's own format: no download."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import pair_baselines  # noqa: E402
import pairs_aclsum  # noqa: E402
import scores_lee  # noqa: E402
import scores_vader  # noqa: E402

from pipeline.data import assets  # noqa: E402


def aclsum_paper(**overrides) -> str:
    paper = {
        "id": "P00-1",
        "summary": {"challenge": "Parsing is slow.", "approach": "They prune charts.", "outcome": "It is 2x faster."},
        "sentences": {"abstract": ["We prune , charts .", "Parsing is slow ."], "introduction": ["It is 2x faster ."],
                      "conclusion": []},
        "highlights": {"challenge": {"abstract": [0, 1], "introduction": [0], "conclusion": []},
                       "approach": {"abstract": [1, 0], "introduction": [0], "conclusion": []},
                       "outcome": {"abstract": [0, 0], "introduction": [1], "conclusion": []}},
    }
    paper.update(overrides)
    return json.dumps(paper)


def test_aclsum_pairs_each_summary_with_every_sentence_of_its_paper():
    rows = pairs_aclsum.summary_sentence_pairs([aclsum_paper(), ""])
    assert len(rows) == 9  # 3 aspects x 3 sentences; the empty line is skipped
    positives = [(a, b) for a, b, label in rows if label == "1"]
    assert positives == [("Parsing is slow.", "Parsing is slow ."), ("They prune charts.", "We prune , charts ."),
                         ("It is 2x faster.", "It is 2x faster .")]
    assert {label for *_, label in rows} == {"0", "1"}


def test_aclsum_refuses_highlights_that_do_not_match_the_sentences():
    broken = json.loads(aclsum_paper())
    broken["highlights"]["approach"]["abstract"] = [1]
    with pytest.raises(ValueError, match="P00-1: 2 abstract sentences but 1 approach highlights"):
        pairs_aclsum.summary_sentence_pairs([json.dumps(broken)])


def test_vader_ground_truth_is_parsed_as_written():
    text = "1\t2.726315789\tSo lucky &amp; loved.\r\n2\t-0.5\tMeh, a \"quoted\" day\r\n"
    assert scores_vader.rated_texts(text) == [("So lucky & loved.", "2.726315789"), ('Meh, a "quoted" day', "-0.5")]
    with pytest.raises(ValueError, match="line 1: 2 tab-separated fields"):
        scores_vader.rated_texts("1\tno rating here\r\n")
    with pytest.raises(ValueError):
        scores_vader.rated_texts("1\tpositive\tA text\r\n")


def test_vader_splits_keep_a_repeated_text_in_one_split_and_draw_about_ten_percent_each():
    files = {s: "".join(f"{i}\t{i % 9 - 4}\t{s} text number {i}\r\n" for i in range(500)) for s in scores_vader.SOURCES}
    files["tweets"] += "x1\t1\tnyt text number 7\r\n"  # the same text as one of nytEditorialSnippets'
    splits = scores_vader.vader_splits(files)
    assert sum(len(rows) for rows in splits.values()) == 2001
    homes = {split for split, rows in splits.items() for text, _ in rows if text == "nyt text number 7"}
    assert len(homes) == 1
    assert 120 < len(splits["test"]) < 280 and 120 < len(splits["eval"]) < 280
    assert splits == scores_vader.vader_splits(files)  # the same on every run


def test_lee_pairs_are_the_ratings_above_the_diagonal():
    documents = "First story.\nSecond story.\nThird story.\n"
    ratings = "1\t0.3\t0.26666666\n0\t1\t0.9\n0\t0\t1\n"
    pairs = [row for rows in scores_lee.rated_pairs(documents, ratings).values() for row in rows]
    assert sorted(pairs) == [("First story.", "Second story.", "0.3"), ("First story.", "Third story.", "0.26666666"),
                             ("Second story.", "Third story.", "0.9")]
    with pytest.raises(ValueError, match="3 documents but a ratings matrix of 2 rows"):
        scores_lee.rated_pairs(documents, "1\t0.3\t0.2\n0\t1\t0.9\n")


def test_pair_rows_survive_the_csv_round_trip(tmp_path):
    rows = [("A summary, with a comma.", 'A "quoted" sentence\nover two lines', "1"), ("é", "ü", "0")]
    assert assets._write_csv(tmp_path / "train" / "data.csv", rows, pairs_aclsum.COLUMNS) == 2
    with open(tmp_path / "train" / "data.csv", newline="", encoding="utf-8") as f:
        read = list(csv.DictReader(f))
    assert [tuple(r[c] for c in pairs_aclsum.COLUMNS) for r in read] == rows


def test_pair_features_hold_the_cosine_and_the_product_of_the_two_texts():
    texts = {s: [("the cat sat", "the cat ran"), ("a dog barked", "stocks fell sharply")] for s in ("train", "eval")}
    blocks = pair_baselines.feature_blocks(texts, min_df=1)["eval"]
    cosine = blocks["cosine"].toarray().ravel()
    assert cosine[1] == 0 and 0 < cosine[0] < 1
    assert np.allclose(np.asarray(blocks["product"].sum(axis=1)).ravel(), cosine)
    assert pair_baselines.features(blocks, "pair").shape[1] == blocks["product"].shape[1] + 1


def test_regression_refuses_a_score_that_is_not_a_number():
    data = {s: [{"text": "good", "score": "1.5"}, {"text": "bad", "score": "high"}] for s in ("train", "eval", "test")}
    with pytest.raises(SystemExit, match="column 'score' holds a value that is not a number"):
        pair_baselines.run(data, ["text"], "score", "regression", ("text",))
