"""A deterministic subset of a data root's rows (--max-examples), for quick runs: the rows whose text hashes lowest, an
unbiased sample, written once under data/subsets/ and reused, so repeated runs hit TFX's cache."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Sequence

from components.ingestion.csv_files import HASH_BUCKETS, label_columns, read_rows, split_files, text_columns
from components.runtime.storage import folder_written_whole


def _stable_key(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def subset(data_root: Path, splits: Sequence[str], max_examples: int, text_key: str, label_key: str,
           cache_dir: Path) -> Path:
    """A deterministic subset of at most `max_examples` rows (the rows whose text hashes lowest, an unbiased
    sample), written once under `cache_dir` and reused, so repeated runs hit TFX's cache.

    With own splits, the train/eval/test folders get 80/10/10 of the budget.
    """
    files = split_files(data_root, splits)
    tag = hashlib.md5(f"{data_root.resolve()}|{text_key}|{label_key}".encode()).hexdigest()[:8]
    target = cache_dir / f"{data_root.name}-{tag}-max{max_examples}"
    if target.exists():
        return target
    total = sum(b for _, b in HASH_BUCKETS)
    budgets = ({s: max(1, max_examples * b // total) for s, b in HASH_BUCKETS} if splits else {"": max_examples})
    with folder_written_whole(target) as tmp:
        for split, paths in files.items():
            rows = [r for p in paths for r in read_rows(p, text_key, label_key)]
            rows.sort(key=lambda r: _stable_key("\x00".join(r)))
            out = tmp / split / "data.csv" if split else tmp / "data.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow([*text_columns(text_key), *label_columns(label_key)])
                writer.writerows(rows[:budgets[split]])
    return target
