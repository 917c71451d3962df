"""Input data at the edge: resolve a dataset to CSV files, check them, and derive what the pipeline needs.

Everything a user can get wrong about their data files is caught here with one clear sentence
(`InputError`) before any TFX component starts.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from pipeline import assets
from pipeline.config import HASH_BUCKETS

SPLIT_FOLDERS = ("train", "eval", "test")


class InputError(ValueError):
    """The input data cannot be used; the message says which file and why."""


SPAN_RE = re.compile(r"^span-(\d+)$")


def spans(data_root: Path) -> List[Tuple[int, Path]]:
    """The `span-N` folders under data_root, oldest first ([] when the data has no spans)."""
    if not data_root.is_dir():
        raise InputError(f"data root {data_root} does not exist or is not a folder.")
    found = [(int(m.group(1)), p) for p in data_root.iterdir() if p.is_dir() and (m := SPAN_RE.match(p.name))]
    return sorted(found)


def csv_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.glob("*.csv") if p.is_file())


def detect_splits(data_root: Path) -> Tuple[str, ...]:
    """('train', 'eval', 'test') when the data brings its own split folders, () for one set of files."""
    if not data_root.is_dir():
        raise InputError(f"data root {data_root} does not exist or is not a folder.")
    present = [s for s in SPLIT_FOLDERS if (data_root / s).is_dir()]
    if present:
        missing = [s for s in SPLIT_FOLDERS if s not in present]
        if missing:
            raise InputError(f"{data_root} has split folders {', '.join(present)} but not {', '.join(missing)}: "
                             "provide all of train/, eval/ and test/, or put the CSV files directly in the folder "
                             "to have them split 80/10/10 by hash.")
        for split in present:
            if not csv_files(data_root / split):
                raise InputError(f"split folder {data_root / split} has no .csv files.")
        return SPLIT_FOLDERS
    if not csv_files(data_root):
        raise InputError(f"{data_root} has no .csv files (and no train/, eval/, test/ folders of them"
                         f"{'' if SPAN_RE.match(data_root.name) else ', nor span-N/ folders'}).")
    return ()


def _files(data_root: Path, splits: Sequence[str]) -> Dict[str, List[Path]]:
    if splits:
        return {s: csv_files(data_root / s) for s in splits}
    return {"": csv_files(data_root)}


def check_header(path: Path, text_key: str, label_key: str) -> List[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise InputError(f"{path} is empty: a CSV file with a header row is expected.")
    for role, key in (("text", text_key), ("label", label_key)):
        if key not in header:
            raise InputError(f"{path} has no {role} column {key!r} (its columns: {', '.join(header)}); "
                             f"name it with --{role}-column.")
    return header


def read_rows(path: Path, text_key: str, label_key: str) -> List[Tuple[str, str]]:
    """(text, label) rows of one CSV file; a structurally broken file is an InputError naming the line."""
    header = check_header(path, text_key, label_key)
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, strict=True)
        next(reader)
        try:
            for record in reader:
                if len(record) != len(header):
                    raise InputError(f"{path}, line {reader.line_num}: {len(record)} fields where the header has "
                                     f"{len(header)}.")
                row = dict(zip(header, record))
                rows.append((row[text_key], row[label_key]))
        except csv.Error as e:
            raise InputError(f"{path}, line {reader.line_num}: malformed CSV ({e}).") from None
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: bytes that are not valid UTF-8 ({e.reason} at byte {e.start}).") from None
    return rows


def label_values(data_root: Path, splits: Sequence[str], text_key: str, label_key: str) -> Tuple[str, ...]:
    """The distinct label values of the training data (all files when the data is split by hash)."""
    files = _files(data_root, splits)
    chosen = files.get("train", files.get(""))
    return tuple(sorted({label for path in chosen for _, label in read_rows(path, text_key, label_key) if label}))


def _stable_key(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def subset(data_root: Path, splits: Sequence[str], max_examples: int, text_key: str, label_key: str,
           cache_dir: Path) -> Path:
    """A deterministic subset of at most `max_examples` rows (the rows whose text hashes lowest, an unbiased
    sample), written once under `cache_dir` and reused, so repeated runs hit TFX's cache.

    With own splits, the train/eval/test folders get 80/10/10 of the budget.
    """
    files = _files(data_root, splits)
    tag = hashlib.md5(f"{data_root.resolve()}|{text_key}|{label_key}".encode()).hexdigest()[:8]
    target = cache_dir / f"{data_root.name}-{tag}-max{max_examples}"
    if target.exists():
        return target
    total = sum(b for _, b in HASH_BUCKETS)
    budgets = ({s: max(1, max_examples * b // total) for s, b in HASH_BUCKETS} if splits else {"": max_examples})
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for split, paths in files.items():
            rows = [r for p in paths for r in read_rows(p, text_key, label_key)]
            rows.sort(key=lambda r: _stable_key(r[0] + "\x00" + r[1]))
            out = tmp / split / "data.csv" if split else tmp / "data.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow([text_key, label_key])
                writer.writerows(rows[:budgets[split]])
        if not target.exists():
            os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def builtin_data_root(dataset: str) -> Path:
    try:
        return assets.ensure_dataset(dataset)
    except assets.AssetError as e:
        raise InputError(str(e)) from None


def schema_label_names(schema_file: str, label_key: str) -> Optional[Tuple[str, ...]]:
    """The label's string domain in a schema.pbtxt, or None when the schema does not restrict it."""
    from tensorflow_data_validation.utils import schema_util

    schema = schema_util.load_schema_text(schema_file)
    feature = next((f for f in schema.feature if f.name == label_key), None)
    if feature is None:
        raise InputError(f"schema {schema_file} has no feature {label_key!r} (the label column).")
    if feature.HasField("string_domain"):
        return tuple(feature.string_domain.value)
    if feature.domain:
        domain = next((d for d in schema.string_domain if d.name == feature.domain), None)
        if domain is not None:
            return tuple(domain.value)
    return None
