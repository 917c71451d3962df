"""The checks of a data root's CSV files before a run, on what csv_files.py reads: each row's text and labels (against
the schema's domain of each label column), one header across the files, rows in every split. What CsvExampleGen would
read but the pipeline could not use, or would refuse later without naming the file, is one DataFileError naming the
file, the column, how many rows and their lines, and what to do. Only the standard library."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from components.ingestion.csv_files import (
    CsvScan,
    DataFileError,
    label_columns,
    read_rows,
    scan_csv,
    split_files,
    text_columns,
    training_files,
)


def _lines(numbers: Sequence[int]) -> str:
    shown = ", ".join(map(str, numbers[:5]))
    more = f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def check_label_values(scan: CsvScan, label_key: str, domain: Optional[Sequence[str]], domain_file: str,
                       column: int = 0, missing_allowed: bool = False) -> None:
    """Refuses a file with rows that have no label (unless `missing_allowed`: a label column the schema lets go
    without a value), or (with a schema's `domain`) a label value it does not list: one sentence naming the file, the
    column, how many rows, their lines and the values. `label_key` is the column; `column` its position among the
    label columns of the scan's rows."""
    labels = [row[scan.labels_at + column] for row in scan.rows]
    missing = [n for n, label in zip(scan.lines, labels) if not label.strip()]
    if missing and not missing_allowed:
        several = len(scan.rows[0]) > scan.labels_at + 1 if scan.rows else False
        remedy = (" (with several label columns, a column may leave rows without a value if its schema feature has no "
                  "presence.min_fraction of 1)" if several else "")
        raise DataFileError(f"{scan.path}: {len(missing)} of {len(scan.rows)} rows have no value in the label column "
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
        raise DataFileError(f"{scan.path}: label values that {domain_file} does not list for column {label_key!r} "
                            f"(its classes: {', '.join(domain)}): {values}. If a new class is intended, add it at the "
                            f"end of the string_domain of {label_key!r} in {domain_file} and run again with "
                            "--accept-new-classes.", "UNKNOWN_LABELS", label_key, str(scan.path))


def check_texts(scan: CsvScan, text_key: str) -> None:
    """Refuses a file with rows whose text field is empty, in the text column or in either column of a pair: the
    schema requires a text in every example, and the data gate would refuse the whole span later without naming the
    file or the lines. (A text of spaces is present; the text checks judge those, by their share.)"""
    for i, column in enumerate(text_columns(text_key)):
        empty = [n for n, row in zip(scan.lines, scan.rows) if row[i] == ""]
        if empty:
            pair = " (each example of a pair needs both texts)" if scan.text_count > 1 else ""
            raise DataFileError(f"{scan.path}: {len(empty)} of {len(scan.rows)} rows have an empty text in column "
                                f"{column!r} ({_lines(empty)}); every example needs a text{pair}: remove those rows, "
                                "or fill them in, and run again.", "EMPTY_TEXT_FIELDS", column, str(scan.path))


def check_input(data_root: Path, splits: Sequence[str], text_key: str, label_key: str,
                label_domain: Union[None, Sequence[str], Mapping[str, Optional[Sequence[str]]]] = None,
                domain_file: str = "", text_required: bool = True, missing_allowed: Sequence[str] = ()) -> List[str]:
    """Reads every CSV file of the data the run will ingest (one span's, with spans) the way CsvExampleGen will.
    Raises DataFileError for what it could not read, a split with no rows, files whose headers differ (CsvExampleGen
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
                check_label_values(scan, column, domains.get(column), domain_file, column=i,
                                   missing_allowed=column in missing_allowed)
            if text_required:
                check_texts(scan, text_key)
            if header_of is None:
                header_of = scan
            elif scan.header != header_of.header:
                raise DataFileError(f"{scan.path} has columns {', '.join(scan.header)} but {header_of.path} has "
                                    f"{', '.join(header_of.header)}: every CSV file of the input needs the same "
                                    "header.", "MISMATCHED_HEADERS", path=str(scan.path))
        where = data_root / split if split else data_root
        if not any(scan.rows for scan in scans):
            raise DataFileError(f"{where} has no data rows (only a header): there is nothing to train on; add the rows "
                                "to its CSV files.",
                                "NO_ROWS", path=str(where))
        warnings += [f"{scan.path} has a header but no rows." for scan in scans if not scan.rows]
    if header_of is not None and header_of.extra_columns:
        used = " and ".join(repr(c) for c in (*text_columns(text_key), *columns))
        warnings.append(f"column(s) {', '.join(header_of.extra_columns)} of {header_of.path} are not used: only "
                        f"{used} reach the model.")
    return warnings


def label_values(data_root: Path, splits: Sequence[str], text_key: str, label_key: str,
                 column: int = 0) -> Tuple[str, ...]:
    """The distinct label values of the training data (all files when the data is split by hash), of the label column
    at position `column` among --label-column's."""
    at = len(text_columns(text_key)) + column
    return tuple(sorted({row[at] for path in training_files(data_root, splits)
                            for row in read_rows(path, text_key, label_key) if row[at]}))
