"""Two texts and a score (STS-B's shape): the Lee corpus's news documents, every pair rated for similarity by people,
as a `--data-root` folder.

The gensim wheel on PyPI (4.4.0, LGPL-2.1-only) ships, as test data, the corpus of Lee, Pincombe and Welsh, "An
empirical evaluation of models of text document similarity" (CogSci 2005), which Michael D. Lee gave the gensim
authors: 50 short Australian news documents (45 to 126 words; gensim/test/test_data/lee.cor, one a line, Latin-1)
and the mean of people's similarity ratings of each of the 1,225 pairs, on a 1-5 scale divided by 5
(similarities0-1.txt: a 50 x 50 matrix, the ratings above the diagonal). The ratings run from 0.2 to 1.0, mean 0.33:
most pairs are of unrelated stories.

It has no splits of its own: a stable hash of the pair's two document numbers puts 10% of the pairs in test, 10% in
eval and the rest in train. Every document is in pairs of every split (there are only 50); the pairs themselves are
never shared. Written as a user would bring it: DIR/train/, DIR/eval/ and DIR/test/, each a data.csv with the
columns text_a, text_b and score (0.2 to 1.0). Each pair is two whole documents, so nearly every pair is longer than
a 128-token sequence holds:

    .venv/bin/python benchmarks/scores_lee.py DIR
    .venv/bin/python benchmarks/pair_baselines.py --data-root DIR --text-column text_a,text_b --label-column score \\
        --task regression
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data import assets  # noqa: E402

GENSIM = assets.Distribution("gensim==4.4.0")
DOCUMENTS = "gensim/test/test_data/lee.cor"
RATINGS = "gensim/test/test_data/similarities0-1.txt"
COLUMNS = ("text_a", "text_b", "score")
TEST_PERCENT = 10
EVAL_PERCENT = 10


def split_of(i: int, j: int) -> str:
    # md5, not Python's salted hash(), so that every machine draws the same split.
    bucket = int(hashlib.md5(f"{i}-{j}".encode()).hexdigest(), 16) % 100
    return "test" if bucket < TEST_PERCENT else "eval" if bucket < TEST_PERCENT + EVAL_PERCENT else "train"


def rated_pairs(documents: str, ratings: str) -> dict:
    """{split: [(document i, document j, rating)]} for every pair i < j, in the matrix's order."""
    docs = [d.strip() for d in documents.splitlines() if d.strip()]
    matrix = [row.split("\t") for row in ratings.splitlines() if row.strip()]
    if len(matrix) != len(docs) or any(len(row) != len(docs) for row in matrix):
        raise ValueError(f"{len(docs)} documents but a ratings matrix of {len(matrix)} rows of "
                         f"{sorted({len(r) for r in matrix})} values")
    splits = {"train": [], "eval": [], "test": []}
    for i in range(len(docs)):
        for j in range(i + 1, len(docs)):
            float(matrix[i][j])  # a malformed number is a broken package: let it raise; kept as written
            splits[split_of(i, j)].append((docs[i], docs[j], matrix[i][j].strip()))
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write train/, eval/ and test/ (created if missing)")
    args = parser.parse_args()
    with assets.fetched_wheel(GENSIM) as wheel, zipfile.ZipFile(wheel) as zf:
        splits = rated_pairs(zf.read(DOCUMENTS).decode("latin-1"), zf.read(RATINGS).decode("ascii"))
    for split, rows in splits.items():
        written = assets._write_csv(args.folder / split / "data.csv", rows, COLUMNS)
        values = [float(s) for *_, s in rows]
        print(f"{args.folder / split}: {written} pairs; score mean {statistics.mean(values):.3f}, "
              f"sd {statistics.stdev(values):.3f}, min {min(values):g}, max {max(values):g}")


if __name__ == "__main__":
    main()
