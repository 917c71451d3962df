"""A data root's CSV files as CsvExampleGen reads them: the layouts a data root may have (one set of files split by
hash, train/eval/test folders, span-N folders of either) and each file's records, for the checks before a run.

Everything a user can get wrong about a file is one `DataFileError` naming the file and the line; the front door
(pipeline/cli/inputs.py) says it as its own refusal before any TFX component starts. Only the standard library: the
front door reads every file before TensorFlow loads.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from components import tasks
from components.settings import data as data_settings

SPLIT_FOLDERS = ("train", "eval", "test")  # a data root that brings its own splits
# The hash split of a data root without split folders (ExampleGen's output config; the shares of a subset too).
HASH_BUCKETS = (("train", 8), ("eval", 1), ("test", 1))
SPAN_RE = re.compile(r"^span-(\d+)$")
SPAN_FOLDER = "span-{SPAN}"  # ExampleGen's span placeholder
# CsvExampleGen reads fields with Python's csv module at its default field size limit: a longer field (a text of
# more characters) would fail inside Beam, so it is refused here with a clear message instead.
CSV_FIELD_LIMIT = csv.field_size_limit()


class DataFileError(ValueError):
    """An input file or folder (the data's, or the schema it is checked against) that cannot be used; the message
    says which and why. `kind`, `feature` and `path` make the machine-readable record of the problem, in the shape of
    the data validation's anomalies."""

    def __init__(self, message: str, kind: str, feature: str = "(input)", path: str = ""):
        super().__init__(message)
        self.kind, self.feature, self.path = kind, feature, path


@dataclasses.dataclass
class CsvScan:
    """What reading one CSV file the way CsvExampleGen does found."""

    path: Path
    header: List[str]
    # (text, label): the text columns' fields (one, or a pair's two), then the label columns', in their flags' order
    rows: List[Tuple[str, ...]]
    extra_columns: List[str]  # columns other than the texts and the labels (ignored by the pipeline)
    lines: List[int] = dataclasses.field(default_factory=list)  # the line each row starts on
    text_count: int = 1  # how many of each row's first fields are texts

    @property
    def labels_at(self) -> int:
        """Where a row's label fields start."""
        return self.text_count


def _logical_lines(path: Path):
    """(first line number, text) of each record as CsvExampleGen delimits them: physical lines are joined until
    their double quotes balance (a quoted field may span lines). Invalid UTF-8 is a DataFileError naming the line."""
    with open(path, "rb") as f:
        pending, first, quotes = [], 0, 0
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataFileError(f"{path}, line {number}: bytes that are not valid UTF-8 ({e.reason} at byte "
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
            raise DataFileError(f"{path}, line {first}: a quoted field is never closed (unbalanced double quotes); "
                                "close it, and write a quote inside a quoted field twice (\"\").",
                                "MALFORMED_CSV", path=str(path))


def _parse_record(path: Path, number: int, line: str) -> Optional[List[str]]:
    try:
        records = list(csv.reader(io.StringIO(line), strict=True))
    except csv.Error as e:
        if "field larger than field limit" in str(e):
            raise DataFileError(f"{path}, line {number}: a field is longer than {CSV_FIELD_LIMIT:,} characters, the "
                                "most CsvExampleGen can read; shorten or split that text.", "FIELD_TOO_LONG",
                                path=str(path)) from None
        raise DataFileError(f"{path}, line {number}: malformed CSV ({e}); fix the line.", "MALFORMED_CSV",
                            path=str(path)) from None
    if not records or records == [[]]:  # a blank line (csv reads it as one empty record): CsvExampleGen skips it too
        return None
    if len(records) > 1:
        raise DataFileError(f"{path}, line {number}: malformed CSV (stray double quotes join or split "
                            "records); fix the quotes on that line (a quote inside a quoted field is written twice).",
                            "MALFORMED_CSV", path=str(path))
    return records[0]


def label_columns(label_key: str) -> Tuple[str, ...]:
    """--label-column's columns (components/tasks.py), its mistakes a DataFileError."""
    try:
        return tasks.label_columns(label_key)
    except ValueError as e:
        raise DataFileError(str(e), "INVALID_LABEL_COLUMN") from None


def text_columns(text_key: str) -> Tuple[str, ...]:
    """--text-column's columns (components/settings/data.py), its mistakes a DataFileError."""
    try:
        return data_settings.text_columns(text_key)
    except ValueError as e:
        raise DataFileError(str(e), "INVALID_TEXT_COLUMN") from None


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
    """Reads a whole CSV file as CsvExampleGen will, refusing with one clear DataFileError what it could not read or
    what would reach the model wrongly: invalid UTF-8, unbalanced quotes, a row whose number of fields differs
    from the header's, a missing text or label column, a field over CsvExampleGen's size limit."""
    lines = _logical_lines(path)
    header = None
    for number, line in lines:
        header = _parse_record(path, number, line)
        if header is not None:
            break
    if not header:
        raise DataFileError(f"{path} is empty: a CSV file with a header row is expected; add a header naming the "
                            "columns, then the rows (or remove the file).", "NO_HEADER", path=str(path))
    columns = label_columns(label_key)
    texts = text_columns(text_key)
    for role, key in (*(("text", c) for c in texts), *(("label", c) for c in columns)):
        if key not in header:
            raise DataFileError(f"{path} has no {role} column {key!r} (its columns: {', '.join(header)}); "
                                f"name it with --{role}-column.", "MISSING_COLUMN", key, str(path))
    at = [*(header.index(c) for c in texts), *(header.index(c) for c in columns)]
    rows, numbers = [], []
    for number, line in lines:
        record = _parse_record(path, number, line)
        if record is None:
            continue
        if len(record) != len(header):
            raise DataFileError(f"{path}, line {number}: {len(record)} fields where the header has {len(header)}; "
                                "fix the line (a field that holds a comma must be quoted: \"a, b\").",
                                "MALFORMED_CSV", path=str(path))
        rows.append(tuple(record[i] for i in at))
        numbers.append(number)
    extra = [c for c in header if c not in texts and c not in columns]
    return CsvScan(path, header, rows, extra, numbers, len(texts))


def read_rows(path: Path, text_key: str, label_key: str) -> List[Tuple[str, ...]]:
    """(text, label) rows of one CSV file ((text, text, label, label...) with a pair of texts and several label
    columns: CsvScan.rows); a file CsvExampleGen
    could not read is a DataFileError naming the line."""
    return scan_csv(path, text_key, label_key).rows


def _no_folder(data_root: Path) -> DataFileError:
    return DataFileError(f"data root {data_root} does not exist or is not a folder: pass --data-root the folder that "
                         "holds your CSV files.", "NO_DATA", path=str(data_root))


def spans(data_root: Path) -> List[Tuple[int, Path]]:
    """The `span-N` folders under data_root, oldest first ([] when the data has no spans)."""
    if not data_root.is_dir():
        raise _no_folder(data_root)
    found = [(int(m.group(1)), p) for p in data_root.iterdir() if p.is_dir() and (m := SPAN_RE.match(p.name))]
    return sorted(found)


def csv_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.glob("*.csv") if p.is_file())


def detect_splits(data_root: Path) -> Tuple[str, ...]:
    """('train', 'eval', 'test') when the data brings its own split folders, () for one set of files."""
    if not data_root.is_dir():
        raise _no_folder(data_root)
    present = [s for s in SPLIT_FOLDERS if (data_root / s).is_dir()]
    if present:
        missing = [s for s in SPLIT_FOLDERS if s not in present]
        if missing:
            raise DataFileError(f"{data_root} has split folders {', '.join(present)} but not {', '.join(missing)}: "
                                "provide all of train/, eval/ and test/, or put the CSV files directly in the folder "
                                "to have them split 80/10/10 by hash.", "NO_DATA_FILES", path=str(data_root))
        for split in present:
            if not csv_files(data_root / split):
                raise DataFileError(f"split folder {data_root / split} has no .csv files: put that split's CSV "
                                    "files in it.", "NO_DATA_FILES", path=str(data_root / split))
        return SPLIT_FOLDERS
    if not csv_files(data_root):
        span = SPAN_RE.match(data_root.name)
        raise DataFileError(f"{data_root} has no .csv files (and no train/, eval/, test/ folders of them"
                            f"{'' if span else ', nor span-N/ folders'}): "
                            + ("put the span's CSV files in it, or remove the folder (the newest span is the one "
                               "ingested)." if span else "point --data-root at the folder that holds your CSV files."),
                            "NO_DATA_FILES", path=str(data_root))
    return ()


def split_files(data_root: Path, splits: Sequence[str]) -> Dict[str, List[Path]]:
    """Each split's CSV files; {"": every file} for data split by hash."""
    if splits:
        return {s: csv_files(data_root / s) for s in splits}
    return {"": csv_files(data_root)}


def training_files(data_root: Path, splits: Sequence[str]) -> List[Path]:
    """The files the training split is drawn from: train/'s, or every file when the data is split by hash."""
    files = split_files(data_root, splits)
    return files.get("train", files.get(""))
