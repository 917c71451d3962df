"""Real tags, several per text: ACLSum's sentences of scientific papers, each tagged 0/1 for three aspects, as a
`--data-root` folder.

ACLSum (the pinned `aclsum` wheel on PyPI: 250 ACL Anthology papers, MIT licence) has the sentences of each paper's
abstract, introduction and conclusion, and for each of three aspects (`challenge`: the problem the paper takes on,
`approach`: what it does, `outcome`: what it found) the sentences its annotators highlighted as that aspect's
source. A sentence may be highlighted for no aspect, one, or several: the multi-label shape of one 0/1 column per tag
(docs/multi_task.md). This writes the package's own splits, papers never shared between them, as a user would bring
them: DIR/train/, DIR/eval/ (the package's `val`) and DIR/test/ with the columns text, challenge, approach and outcome:

    .venv/bin/python benchmarks/aclsum_tags.py DIR
    .venv/bin/python pipeline/run_local.py --data-root DIR --label-column challenge,approach,outcome
    .venv/bin/python benchmarks/multitask_baseline.py --data-root DIR --label-column challenge,approach,outcome
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data import assets  # noqa: E402

ACLSUM = assets.Distribution("aclsum==0.1.2")
ASPECTS = ("challenge", "approach", "outcome")
SECTIONS = ("abstract", "introduction", "conclusion")
SPLITS = {"train": "train", "eval": "val", "test": "test"}  # ours: the package's


def tagged_sentences(lines) -> list:
    """(sentence, one "0"/"1" per aspect) for every sentence of every paper, in the package's order. The sentences
    are tokenised with spaces around punctuation ("results , which"); they are kept as they are."""
    rows = []
    for line in lines:
        if not line.strip():
            continue
        paper = json.loads(line)
        for section in SECTIONS:
            for i, sentence in enumerate(paper["sentences"][section]):
                rows.append((sentence.strip(), *(str(int(paper["highlights"][a][section][i])) for a in ASPECTS)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write train/, eval/ and test/ (created if missing)")
    args = parser.parse_args()
    with assets.fetched_wheel(ACLSUM) as wheel, zipfile.ZipFile(wheel) as zf:
        splits = {ours: tagged_sentences(zf.read(f"aclsum/dataset/{theirs}.jsonl").decode("utf-8").splitlines())
                  for ours, theirs in SPLITS.items()}
    for split, rows in splits.items():
        written = assets._write_csv(args.folder / split / "data.csv", rows, ["text", *ASPECTS])
        tagged = {a: sum(r[1 + k] == "1" for r in rows) for k, a in enumerate(ASPECTS)}
        print(f"{args.folder / split}: {written} sentences; tagged " + ", ".join(f"{a} {n}" for a, n in tagged.items()))


if __name__ == "__main__":
    main()
