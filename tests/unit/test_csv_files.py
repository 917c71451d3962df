"""A data root's CSV files as CsvExampleGen reads them (components/ingestion/csv_files.py), on tiny files: what
CsvExampleGen could not read is one DataFileError naming its kind, the file and the line; splits and spans are
found."""

import random
from pathlib import Path

import pytest

from components.ingestion import csv_files
from components.ingestion.csv_files import DataFileError
from support import write_csv


def write(path: Path, content) -> Path:
    """Writes text (as UTF-8, newlines untouched) or bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def rows(n, seed=0):
    rng = random.Random(seed)
    return [[f"review {i} {'good' if i % 2 else 'bad'} film, {rng.random():.6f}", "fresh" if i % 2 else "rotten"]
            for i in range(n)]


def scan(path):
    return csv_files.scan_csv(path, "text", "label")


def refused(call, kind):
    with pytest.raises(DataFileError) as raised:
        call()
    assert raised.value.kind == kind, str(raised.value)
    return raised.value


# scan_csv ---------------------------------------------------------------------------------------------------------

def test_scan_reads_rows_header_and_extra_columns(tmp_path):
    path = write(tmp_path / "a.csv", "id,label,text\n1,fresh,good film\n2,rotten,\"bad, long film\"\n")
    result = scan(path)
    assert result.header == ["id", "label", "text"]
    assert result.rows == [("good film", "fresh"), ("bad, long film", "rotten")]
    assert result.extra_columns == ["id"]
    assert result.path == path


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = write(tmp_path / "latin1.csv", "text,label\ngood,fresh\n".encode() + "très bien,fresh\n".encode("latin-1"))
    error = refused(lambda: scan(path), "NOT_UTF8")
    assert f"{path}, line 3:" in str(error) and "UTF-8" in str(error)
    assert error.path == str(path)
    assert (error.kind, error.feature) == ("NOT_UTF8", "(input)")


def test_unbalanced_quotes_name_the_line_where_the_field_opens(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\ngood,fresh\n"never closed,fresh\nmore,rotten\n')
    error = refused(lambda: scan(path), "MALFORMED_CSV")
    assert f"{path}, line 3:" in str(error) and "never closed" in str(error)


def test_wrong_field_count_names_the_line(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\ngood,fresh\nbad,rotten,extra\n")
    error = refused(lambda: scan(path), "MALFORMED_CSV")
    assert str(error) == (f"{path}, line 3: 3 fields where the header has 2; fix the line (a field that holds a "
                          'comma must be quoted: "a, b").')
    path = write(tmp_path / "b.csv", "text,label\ngood,fresh\nno label\n")
    assert "line 3: 1 fields where the header has 2" in str(refused(lambda: scan(path), "MALFORMED_CSV"))


def test_multi_line_quoted_field_is_one_record_and_line_numbers_follow(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\n"first line\nsecond ""quoted"" line",fresh\nok,rotten\n')
    assert scan(path).rows == [('first line\nsecond "quoted" line', "fresh"), ("ok", "rotten")]
    bad = write(tmp_path / "b.csv", 'text,label\n"first line\nsecond line",fresh\nok,rotten,extra\n')
    assert f"{bad}, line 4:" in str(refused(lambda: scan(bad), "MALFORMED_CSV"))


def test_stray_quotes_are_malformed(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\n"closed" then more,fresh\n')
    error = refused(lambda: scan(path), "MALFORMED_CSV")
    assert f"{path}, line 2: malformed CSV" in str(error)


@pytest.mark.parametrize("content", ["text,label\ngood,fresh\n\nbad,rotten\n",
                                     "text,label\ngood,fresh\nbad,rotten\n\n",
                                     "text,label\r\ngood,fresh\r\n\r\nbad,rotten\r\n"],
                         ids=["between-rows", "trailing", "crlf"])
def test_blank_lines_are_skipped(tmp_path, content):
    assert scan(write(tmp_path / "a.csv", content)).rows == [("good", "fresh"), ("bad", "rotten")]


def test_crlf_line_ends_are_read(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\r\ngood,fresh\r\nbad,rotten\r\n")
    assert scan(path).rows == [("good", "fresh"), ("bad", "rotten")]


def test_missing_text_column_names_the_columns_and_the_flag(tmp_path):
    path = write(tmp_path / "a.csv", "review,label\ngood,fresh\n")
    error = refused(lambda: scan(path), "MISSING_COLUMN")
    assert "no text column 'text'" in str(error)
    assert "(its columns: review, label)" in str(error) and "--text-column" in str(error)
    assert error.feature == "text" and error.path == str(path)


def test_missing_label_column_names_its_flag(tmp_path):
    path = write(tmp_path / "a.csv", "text\ngood\n")
    error = refused(lambda: scan(path), "MISSING_COLUMN")
    assert "no label column 'label'" in str(error) and "--label-column" in str(error)
    assert error.feature == "label"


def test_other_column_names(tmp_path):
    path = write(tmp_path / "a.csv", "review,sentiment\ngood,pos\n")
    assert csv_files.scan_csv(path, "review", "sentiment").rows == [("good", "pos")]


def test_empty_file_has_no_header(tmp_path):
    path = write(tmp_path / "a.csv", "")
    assert str(path) in str(refused(lambda: scan(path), "NO_HEADER"))


def test_field_over_the_csv_limit(tmp_path):
    path = write(tmp_path / "a.csv", f"text,label\n{'x' * (csv_files.CSV_FIELD_LIMIT + 1)},fresh\n")
    assert f"{path}, line 2:" in str(refused(lambda: scan(path), "FIELD_TOO_LONG"))
    ok = write(tmp_path / "b.csv", f"text,label\n{'x' * csv_files.CSV_FIELD_LIMIT},fresh\n")
    assert len(scan(ok).rows[0][0]) == csv_files.CSV_FIELD_LIMIT


# detect_splits and spans -------------------------------------------------------------------------------------------

def test_flat_data_has_no_splits(tmp_path):
    write_csv(tmp_path / "a.csv", rows(2))
    assert csv_files.detect_splits(tmp_path) == ()


def test_split_folders(tmp_path):
    for split in ("train", "eval", "test"):
        write_csv(tmp_path / split / "data.csv", rows(2))
    assert csv_files.detect_splits(tmp_path) == ("train", "eval", "test")


def test_incomplete_split_folders(tmp_path):
    for split in ("train", "eval"):
        write_csv(tmp_path / split / "data.csv", rows(2))
    write_csv(tmp_path / "all.csv", rows(2))  # files beside do not make up for it
    error = refused(lambda: csv_files.detect_splits(tmp_path), "NO_DATA_FILES")
    assert "but not test" in str(error)


def test_a_split_folder_without_csv_files(tmp_path):
    for split in ("train", "eval", "test"):
        write_csv(tmp_path / split / "data.csv", rows(2))
    (tmp_path / "eval" / "data.csv").rename(tmp_path / "eval" / "data.txt")
    error = refused(lambda: csv_files.detect_splits(tmp_path), "NO_DATA_FILES")
    assert error.path == str(tmp_path / "eval")


def test_no_csv_files(tmp_path):
    write(tmp_path / "notes.txt", "not data")
    assert "nor span-N/ folders" in str(refused(lambda: csv_files.detect_splits(tmp_path), "NO_DATA_FILES"))
    span = tmp_path / "span-3"
    span.mkdir()
    assert "span-N" not in str(refused(lambda: csv_files.detect_splits(span), "NO_DATA_FILES"))


def test_missing_data_root(tmp_path):
    refused(lambda: csv_files.detect_splits(tmp_path / "nowhere"), "NO_DATA")
    refused(lambda: csv_files.spans(tmp_path / "nowhere"), "NO_DATA")


def test_spans_in_numeric_order(tmp_path):
    for name in ("span-10", "span-2", "span-1", "span-x", "span-", "old-span-4", "span-5.bak"):
        (tmp_path / name).mkdir()
    write(tmp_path / "span-7", "a file, not a folder")
    assert csv_files.spans(tmp_path) == [(1, tmp_path / "span-1"), (2, tmp_path / "span-2"),
                                      (10, tmp_path / "span-10")]


def test_no_spans(tmp_path):
    write_csv(tmp_path / "a.csv", rows(2))
    assert csv_files.spans(tmp_path) == []
