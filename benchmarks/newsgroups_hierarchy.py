"""A larger two-task case of a user's own: 20newsgroups with its real two-level hierarchy, as a `--data-root` folder.

Each post of the built-in 20newsgroups (pipeline/data/assets.py; the same train, eval and test splits) gets two label
columns: `newsgroup`, its group (comp.graphics, rec.autos, ... 20 classes), and `topic`, the first part of that name,
the newsgroups' own top-level hierarchy (alt, comp, misc, rec, sci, soc, talk: 7 classes). One model answers both:

    .venv/bin/python benchmarks/newsgroups_hierarchy.py DIR
    .venv/bin/python pipeline/run_local.py --data-root DIR --label-column newsgroup,topic
    .venv/bin/python benchmarks/multitask_baseline.py --data-root DIR --label-column newsgroup,topic
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data import assets, datasets  # noqa: E402

SPLITS = ("train", "eval", "test")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write train/, eval/ and test/ (created if missing)")
    args = parser.parse_args()
    source = assets.ensure_dataset("20newsgroups")
    for split in SPLITS:
        with open(source / split / "data.csv", newline="", encoding="utf-8") as f:
            rows = [(r[datasets.TEXT_COLUMN], r[datasets.LABEL_COLUMN], r[datasets.LABEL_COLUMN].split(".")[0])
                    for r in csv.DictReader(f)]
        assets._write_csv(args.folder / split / "data.csv", rows, ["text", "newsgroup", "topic"])
        print(f"{args.folder / split}: {len(rows)} posts, {len({r[2] for r in rows})} topics, "
              f"{len({r[1] for r in rows})} groups")
    return 0


if __name__ == "__main__":
    sys.exit(main())
