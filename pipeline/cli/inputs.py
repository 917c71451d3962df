"""Input data at the edge: the data's CSV files checked, and what the pipeline needs derived from them.

Everything a user can get wrong about their data files is caught here with one clear sentence (`InputError`) before
any TFX component starts; the files are read as CsvExampleGen reads them (components/ingestion/csv_files.py).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from components.ingestion.csv_files import (
    HASH_BUCKETS,
    CsvScan,
    DataFileError,
    label_columns,
    read_rows,
    scan_csv,
    split_files,
    training_files,
)
from components.runtime.storage import folder_written_whole
from pipeline.data import assets


class InputError(ValueError):
    """The input data cannot be used; the message says which file and why.

    `kind` and `feature` make the machine-readable record of the problem (see `as_problem`), in the same shape as
    the anomalies of the data validation components (components/validation/gates.py).
    """

    def __init__(self, message: str, kind: str = "INVALID_INPUT", feature: str = "(input)", path: str = ""):
        super().__init__(message)
        self.kind, self.feature, self.path = kind, feature, path

    def as_problem(self) -> dict:
        return {"split": "", "feature": self.feature, "kind": self.kind, "description": str(self),
                "file": self.path}


@contextlib.contextmanager
def as_input_errors():
    """A data file's DataFileError (components/ingestion/csv_files.py) as the front door's InputError: the same
    sentence and record."""
    try:
        yield
    except DataFileError as e:
        raise InputError(str(e), e.kind, e.feature, e.path) from None


def _lines(numbers: Sequence[int]) -> str:
    shown = ", ".join(map(str, numbers[:5]))
    more = f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def check_labels(scan: CsvScan, label_key: str, domain: Optional[Sequence[str]], domain_file: str,
                 column: int = 0, missing_allowed: bool = False) -> None:
    """Refuses a file with rows that have no label (unless `missing_allowed`: a label column the schema lets go
    without a value), or (with a schema's `domain`) a label value it does not list: one sentence naming the file, the
    column, how many rows, their lines and the values. `label_key` is the column; `column` its position among the
    label columns of the scan's rows."""
    labels = [row[1 + column] for row in scan.rows]
    missing = [n for n, label in zip(scan.lines, labels) if not label.strip()]
    if missing and not missing_allowed:
        several = len(scan.rows[0]) > 2 if scan.rows else False
        remedy = (" (with several label columns, a column may leave rows without a value if its schema feature has no "
                  "presence.min_fraction of 1)" if several else "")
        raise InputError(f"{scan.path}: {len(missing)} of {len(scan.rows)} rows have no value in the label column "
                         f"{label_key!r} ({_lines(missing)}); every training example needs its label: add the "
                         f"labels, or remove those rows{remedy}.", "MISSING_LABELS", label_key, str(scan.path))
    if domain is None:
        return
    known = set(domain)
    unknown: Dict[str, List[int]] = {}
    for number, label in zip(scan.lines, labels):
        if label not in known and not (missing_allowed and not label.strip()):
            unknown.setdefault(label, []).append(number)
    if unknown:
        values = "; ".join(f"{value!r} in {len(numbers)} row(s), {_lines(numbers)}"
                           for value, numbers in sorted(unknown.items(), key=lambda kv: -len(kv[1])))
        raise InputError(f"{scan.path}: label values that {domain_file} does not list for column {label_key!r} "
                         f"(its classes: {', '.join(domain)}): {values}. If a new class is intended, add it at the end "
                         f"of the string_domain of {label_key!r} in {domain_file} and run again with "
                         "--accept-new-classes.", "UNKNOWN_LABELS", label_key, str(scan.path))


def check_texts(scan: CsvScan, text_key: str) -> None:
    """Refuses a file with rows whose text field is empty: the schema requires a text in every example, and the data
    gate would refuse the whole span later without naming the file or the lines. (A text of spaces is present; the
    text checks judge those, by their share.)"""
    empty = [n for n, row in zip(scan.lines, scan.rows) if row[0] == ""]
    if empty:
        raise InputError(f"{scan.path}: {len(empty)} of {len(scan.rows)} rows have an empty text in column "
                         f"{text_key!r} ({_lines(empty)}); every example needs a text: remove those rows, or fill "
                         "them in, and run again.", "EMPTY_TEXT_FIELDS", text_key, str(scan.path))


def schema_requires_text(schema_file: str, text_key: str) -> bool:
    """Whether a schema.pbtxt requires the text in every example (presence.min_fraction 1, as the curated and the
    frozen schemas do); a schema that lets it be missing leaves empty texts to the pipeline's own checks."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(schema_file, encoding="utf-8") as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    feature = next((f for f in schema.feature if f.name == text_key), None)
    return feature is None or not feature.HasField("presence") or feature.presence.min_fraction >= 1.0


@as_input_errors()
def check_input(data_root: Path, splits: Sequence[str], text_key: str, label_key: str,
                label_domain: Union[None, Sequence[str], Mapping[str, Optional[Sequence[str]]]] = None,
                domain_file: str = "", text_required: bool = True, missing_allowed: Sequence[str] = ()) -> List[str]:
    """Reads every CSV file of the data the run will ingest (one span's, with spans) the way CsvExampleGen will.
    Raises InputError for what it could not read, a split with no rows, files whose headers differ (CsvExampleGen
    takes the column names from one file), rows without a label (but in the label columns of `missing_allowed`) or
    (`text_required`) without a text, and (given the schema's `label_domain`, from `domain_file`: one domain, or
    {column: domain or None} with several label columns) label values outside it; returns warnings (columns the
    pipeline ignores, header-only files)."""
    warnings: List[str] = []
    header_of = None
    columns = label_columns(label_key)
    domains = label_domain if isinstance(label_domain, Mapping) else {columns[0]: label_domain}
    for split, paths in split_files(data_root, splits).items():
        scans = [scan_csv(p, text_key, label_key) for p in paths]
        for scan in scans:
            for i, column in enumerate(columns):
                check_labels(scan, column, domains.get(column), domain_file, column=i,
                             missing_allowed=column in missing_allowed)
            if text_required:
                check_texts(scan, text_key)
            if header_of is None:
                header_of = scan
            elif scan.header != header_of.header:
                raise InputError(f"{scan.path} has columns {', '.join(scan.header)} but {header_of.path} has "
                                 f"{', '.join(header_of.header)}: every CSV file of the input needs the same header.",
                                 "MISMATCHED_HEADERS", path=str(scan.path))
        where = data_root / split if split else data_root
        if not any(scan.rows for scan in scans):
            raise InputError(f"{where} has no data rows (only a header): there is nothing to train on; add the rows "
                             "to its CSV files.",
                             "NO_ROWS", path=str(where))
        warnings += [f"{scan.path} has a header but no rows." for scan in scans if not scan.rows]
    if header_of is not None and header_of.extra_columns:
        used = " and ".join(repr(c) for c in (text_key, *columns))
        warnings.append(f"column(s) {', '.join(header_of.extra_columns)} of {header_of.path} are not used: only "
                        f"{used} reach the model.")
    return warnings


@as_input_errors()
def label_values(data_root: Path, splits: Sequence[str], text_key: str, label_key: str,
                 column: int = 0) -> Tuple[str, ...]:
    """The distinct label values of the training data (all files when the data is split by hash), of the label column
    at position `column` among --label-column's."""
    return tuple(sorted({row[1 + column] for path in training_files(data_root, splits)
                         for row in read_rows(path, text_key, label_key) if row[1 + column]}))


def _stable_key(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


@as_input_errors()
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
                writer.writerow([text_key, *label_columns(label_key)])
                writer.writerows(rows[:budgets[split]])
    return target


def builtin_data_root(dataset: str) -> Path:
    try:
        return assets.ensure_dataset(dataset)
    except assets.AssetError as e:
        raise InputError(str(e)) from None


def _schema_feature(schema_file: str, column: str):
    # The schema proto parsed directly: TFDV's load_schema_text does the same but imports TensorFlow (seconds).
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(schema_file, encoding="utf-8") as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    feature = next((f for f in schema.feature if f.name == column), None)
    if feature is None:
        raise InputError(f"schema {schema_file} has no feature {column!r} (a label column).", feature=column,
                         path=schema_file)
    return schema, feature


def schema_label_names(schema_file: str, label_key: str) -> Optional[Tuple[str, ...]]:
    """The label column's string domain in a schema.pbtxt, or None when the schema does not restrict it."""
    schema, feature = _schema_feature(schema_file, label_key)
    if feature.HasField("string_domain"):
        return tuple(feature.string_domain.value)
    if feature.domain:
        domain = next((d for d in schema.string_domain if d.name == feature.domain), None)
        if domain is not None:
            return tuple(domain.value)
    return None


def schema_allows_missing(schema_file: str, column: str) -> bool:
    """Whether a schema.pbtxt lets the label column go without a value in a row (no presence.min_fraction of 1)."""
    _, feature = _schema_feature(schema_file, column)
    return not (feature.HasField("presence") and feature.presence.min_fraction >= 1.0)
