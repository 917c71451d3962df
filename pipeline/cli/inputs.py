"""Input data at the edge: resolve a dataset to CSV files, check them, and derive what the pipeline needs.

Everything a user can get wrong about their data files is caught here with one clear sentence
(`InputError`) before any TFX component starts.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from components import tasks
from pipeline.dag.config import HASH_BUCKETS
from pipeline.data import assets

SPLIT_FOLDERS = ("train", "eval", "test")


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


# CsvExampleGen reads fields with Python's csv module at its default field size limit: a longer field (a text of
# more characters) would fail inside Beam, so it is refused here with a clear message instead.
CSV_FIELD_LIMIT = csv.field_size_limit()


@dataclasses.dataclass
class CsvScan:
    """What reading one CSV file the way CsvExampleGen does found."""

    path: Path
    header: List[str]
    rows: List[Tuple[str, ...]]  # (text, label), or (text, label, label...) with several label columns, in their order
    extra_columns: List[str]  # columns other than the text and the labels (ignored by the pipeline)
    lines: List[int] = dataclasses.field(default_factory=list)  # the line each row starts on


def _logical_lines(path: Path):
    """(first line number, text) of each record as CsvExampleGen delimits them: physical lines are joined until
    their double quotes balance (a quoted field may span lines). Invalid UTF-8 is an InputError naming the line."""
    with open(path, "rb") as f:
        pending, first, quotes = [], 0, 0
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{path}, line {number}: bytes that are not valid UTF-8 ({e.reason} at byte "
                                 f"{e.start} of the line); save the file as UTF-8.", "NOT_UTF8", path=str(path)
                                 ) from None
            if not pending:
                first = number
            pending.append(line)
            quotes += line.count('"')
            if quotes % 2 == 0:
                yield first, "".join(pending)
                pending, quotes = [], 0
        if pending:
            raise InputError(f"{path}, line {first}: a quoted field is never closed (unbalanced double quotes); "
                             "close it, and write a quote inside a quoted field twice (\"\").",
                             "MALFORMED_CSV", path=str(path))


def _parse_record(path: Path, number: int, line: str) -> Optional[List[str]]:
    try:
        records = list(csv.reader(io.StringIO(line), strict=True))
    except csv.Error as e:
        if "field larger than field limit" in str(e):
            raise InputError(f"{path}, line {number}: a field is longer than {CSV_FIELD_LIMIT:,} characters, the "
                             "most CsvExampleGen can read; shorten or split that text.", "FIELD_TOO_LONG",
                             path=str(path)) from None
        raise InputError(f"{path}, line {number}: malformed CSV ({e}); fix the line.", "MALFORMED_CSV",
                         path=str(path)) from None
    if not records or records == [[]]:  # a blank line (csv reads it as one empty record): CsvExampleGen skips it too
        return None
    if len(records) > 1:
        raise InputError(f"{path}, line {number}: malformed CSV (stray double quotes join or split "
                         "records); fix the quotes on that line (a quote inside a quoted field is written twice).",
                         "MALFORMED_CSV", path=str(path))
    return records[0]


def scan_csv(path: Path, text_key: str, label_key: str) -> CsvScan:
    """`_scan_csv`, once per file version: the front door checks every file, then reads the training files again for
    the label values and the sequence length; the key has the file's size and modification time, so an edited file
    is read anew."""
    stat = Path(path).stat()
    return _scan_csv_once(Path(path), stat.st_size, stat.st_mtime_ns, text_key, label_key)


@functools.lru_cache(maxsize=256)
def _scan_csv_once(path: Path, size: int, mtime_ns: int, text_key: str, label_key: str) -> CsvScan:
    return _scan_csv(path, text_key, label_key)


def _scan_csv(path: Path, text_key: str, label_key: str) -> CsvScan:
    """Reads a whole CSV file as CsvExampleGen will, refusing with one clear InputError what it could not read or
    what would reach the model wrongly: invalid UTF-8, unbalanced quotes, a row whose number of fields differs
    from the header's, a missing text or label column, a field over CsvExampleGen's size limit."""
    lines = _logical_lines(path)
    header = None
    for number, line in lines:
        header = _parse_record(path, number, line)
        if header is not None:
            break
    if not header:
        raise InputError(f"{path} is empty: a CSV file with a header row is expected; add a header naming the "
                         "columns, then the rows (or remove the file).", "NO_HEADER", path=str(path))
    columns = label_columns(label_key)
    for role, key in (("text", text_key), *(("label", c) for c in columns)):
        if key not in header:
            raise InputError(f"{path} has no {role} column {key!r} (its columns: {', '.join(header)}); "
                             f"name it with --{role}-column.", "MISSING_COLUMN", key, str(path))
    at = [header.index(text_key), *(header.index(c) for c in columns)]
    rows, numbers = [], []
    for number, line in lines:
        record = _parse_record(path, number, line)
        if record is None:
            continue
        if len(record) != len(header):
            raise InputError(f"{path}, line {number}: {len(record)} fields where the header has {len(header)}; fix "
                             "the line (a field that holds a comma must be quoted: \"a, b\").", "MALFORMED_CSV",
                             path=str(path))
        rows.append(tuple(record[i] for i in at))
        numbers.append(number)
    extra = [c for c in header if c != text_key and c not in columns]
    return CsvScan(path, header, rows, extra, numbers)


SPAN_RE = re.compile(r"^span-(\d+)$")


def spans(data_root: Path) -> List[Tuple[int, Path]]:
    """The `span-N` folders under data_root, oldest first ([] when the data has no spans)."""
    if not data_root.is_dir():
        raise InputError(f"data root {data_root} does not exist or is not a folder: pass --data-root the "
                         "folder that holds your CSV files.", "NO_DATA",
                         path=str(data_root))
    found = [(int(m.group(1)), p) for p in data_root.iterdir() if p.is_dir() and (m := SPAN_RE.match(p.name))]
    return sorted(found)


def csv_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.glob("*.csv") if p.is_file())


def detect_splits(data_root: Path) -> Tuple[str, ...]:
    """('train', 'eval', 'test') when the data brings its own split folders, () for one set of files."""
    if not data_root.is_dir():
        raise InputError(f"data root {data_root} does not exist or is not a folder: pass --data-root the "
                         "folder that holds your CSV files.", "NO_DATA",
                         path=str(data_root))
    present = [s for s in SPLIT_FOLDERS if (data_root / s).is_dir()]
    if present:
        missing = [s for s in SPLIT_FOLDERS if s not in present]
        if missing:
            raise InputError(f"{data_root} has split folders {', '.join(present)} but not {', '.join(missing)}: "
                             "provide all of train/, eval/ and test/, or put the CSV files directly in the folder "
                             "to have them split 80/10/10 by hash.", "NO_DATA_FILES", path=str(data_root))
        for split in present:
            if not csv_files(data_root / split):
                raise InputError(f"split folder {data_root / split} has no .csv files: put that split's CSV files "
                                 "in it.", "NO_DATA_FILES", path=str(data_root / split))
        return SPLIT_FOLDERS
    if not csv_files(data_root):
        span = SPAN_RE.match(data_root.name)
        raise InputError(f"{data_root} has no .csv files (and no train/, eval/, test/ folders of them"
                         f"{'' if span else ', nor span-N/ folders'}): "
                         + ("put the span's CSV files in it, or remove the folder (the newest span is the one "
                            "ingested)." if span else "point --data-root at the folder that holds your CSV files."),
                         "NO_DATA_FILES", path=str(data_root))
    return ()


def split_files(data_root: Path, splits: Sequence[str]) -> Dict[str, List[Path]]:
    if splits:
        return {s: csv_files(data_root / s) for s in splits}
    return {"": csv_files(data_root)}


def label_columns(label_key: str) -> Tuple[str, ...]:
    """--label-column's columns (components/tasks.py), its mistakes an InputError."""
    try:
        return tasks.label_columns(label_key)
    except ValueError as e:
        raise InputError(str(e), "INVALID_LABEL_COLUMN") from None


def read_rows(path: Path, text_key: str, label_key: str) -> List[Tuple[str, ...]]:
    """(text, label) rows of one CSV file ((text, label, label...) with several label columns); a file CsvExampleGen
    could not read is an InputError naming the line."""
    return scan_csv(path, text_key, label_key).rows


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


def label_values(data_root: Path, splits: Sequence[str], text_key: str, label_key: str,
                 column: int = 0) -> Tuple[str, ...]:
    """The distinct label values of the training data (all files when the data is split by hash), of the label column
    at position `column` among --label-column's."""
    files = split_files(data_root, splits)
    chosen = files.get("train", files.get(""))
    return tuple(sorted({row[1 + column] for path in chosen for row in read_rows(path, text_key, label_key)
                         if row[1 + column]}))


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
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for split, paths in files.items():
            rows = [r for p in paths for r in read_rows(p, text_key, label_key)]
            rows.sort(key=lambda r: _stable_key("\x00".join(r)))
            out = tmp / split / "data.csv" if split else tmp / "data.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow([text_key, *label_columns(label_key)])
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
