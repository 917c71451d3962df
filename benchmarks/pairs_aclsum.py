"""Two texts and a class: ACLSum's aspect summaries paired with their papers' sentences, as a `--data-root` folder.

No GLUE-style pair set (MRPC, RTE, SNLI/MNLI, QQP, SICK, STS-B) is shipped inside a package on the registries this
project can reach (what was searched: docs/data.md, "Two texts and scores"). ACLSum (the pinned `aclsum` wheel on
PyPI: 250 ACL Anthology papers, MIT licence) holds a real pair relation labelled by people: for each paper and each
of three aspects (challenge, approach, outcome) an annotator wrote a one-sentence summary and highlighted the
sentences of the paper's abstract, introduction and conclusion that the summary was written from. Every (summary,
sentence of the same paper) is one example, labelled 1 where the sentence was highlighted for that summary's aspect
and 0 where it was not: the shape of a claim and its evidence, or a question and a passage (QNLI). Hard negatives
come for free: the 0s are sentences of the same paper. About 13% of the pairs are 1s.

The package's own splits, papers never shared between them, as a user would bring them: DIR/train/, DIR/eval/ (the
package's `val`) and DIR/test/, each a data.csv with the columns text_a (the summary), text_b (the sentence) and
label (0/1):

    .venv/bin/python benchmarks/pairs_aclsum.py DIR
    .venv/bin/python benchmarks/pair_baselines.py --data-root DIR --text-column text_a,text_b --label-column label
"""

from __future__ import annotations

import argparse
import collections
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
COLUMNS = ("text_a", "text_b", "label")


def summary_sentence_pairs(lines) -> list:
    """(summary, sentence, "1"/"0") for every aspect summary of every paper against every sentence of the same paper,
    in the package's order (paper, aspect, section, sentence). The sentences are tokenised with spaces around
    punctuation ("results , which"), the summaries are not; both are kept as they are."""
    rows = []
    for line in lines:
        if not line.strip():
            continue
        paper = json.loads(line)
        for aspect in ASPECTS:
            summary = paper["summary"][aspect].strip()
            for section in SECTIONS:
                flags = paper["highlights"][aspect][section]
                sentences = paper["sentences"][section]
                if len(flags) != len(sentences):
                    raise ValueError(f"paper {paper['id']}: {len(sentences)} {section} sentences but {len(flags)} "
                                     f"{aspect} highlights")
                rows.extend((summary, s.strip(), str(int(f))) for s, f in zip(sentences, flags))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write train/, eval/ and test/ (created if missing)")
    args = parser.parse_args()
    with assets.fetched_wheel(ACLSUM) as wheel, zipfile.ZipFile(wheel) as zf:
        splits = {ours: summary_sentence_pairs(zf.read(f"aclsum/dataset/{theirs}.jsonl").decode("utf-8").splitlines())
                  for ours, theirs in SPLITS.items()}
    for split, rows in splits.items():
        written = assets._write_csv(args.folder / split / "data.csv", rows, COLUMNS)
        labels = collections.Counter(r[2] for r in rows)
        print(f"{args.folder / split}: {written} pairs of {len({r[0] for r in rows})} summaries; label 1: "
              f"{labels['1']} ({labels['1'] / written:.1%}), label 0: {labels['0']}")


if __name__ == "__main__":
    main()
