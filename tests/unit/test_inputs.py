"""Unit tests of pipeline/cli/inputs.py on tiny CSV files: what CsvExampleGen could not read is one clear InputError
(kind, file, line), splits and spans are found, and the subset is deterministic."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import csv  # noqa: E402
import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from pipeline.cli import inputs  # noqa: E402
from pipeline.cli.inputs import InputError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, content) -> Path:
    """Writes text (as UTF-8, newlines untouched) or bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def write_rows(path: Path, rows, header=("text", "label")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def rows(n, seed=0):
    rng = random.Random(seed)
    return [[f"review {i} {'good' if i % 2 else 'bad'} film, {rng.random():.6f}", "fresh" if i % 2 else "rotten"]
            for i in range(n)]


def scan(path):
    return inputs.scan_csv(path, "text", "label")


def refused(call, kind):
    with pytest.raises(InputError) as raised:
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
    assert error.as_problem() == {"split": "", "feature": "(input)", "kind": "NOT_UTF8", "description": str(error),
                                  "file": str(path)}


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
    assert error.as_problem()["feature"] == "text" and error.as_problem()["kind"] == "MISSING_COLUMN"


def test_missing_label_column_names_its_flag(tmp_path):
    path = write(tmp_path / "a.csv", "text\ngood\n")
    error = refused(lambda: scan(path), "MISSING_COLUMN")
    assert "no label column 'label'" in str(error) and "--label-column" in str(error)
    assert error.feature == "label"


def test_other_column_names(tmp_path):
    path = write(tmp_path / "a.csv", "review,sentiment\ngood,pos\n")
    assert inputs.scan_csv(path, "review", "sentiment").rows == [("good", "pos")]


def test_empty_file_has_no_header(tmp_path):
    path = write(tmp_path / "a.csv", "")
    assert str(path) in str(refused(lambda: scan(path), "NO_HEADER"))


def test_field_over_the_csv_limit(tmp_path):
    path = write(tmp_path / "a.csv", f"text,label\n{'x' * (inputs.CSV_FIELD_LIMIT + 1)},fresh\n")
    assert f"{path}, line 2:" in str(refused(lambda: scan(path), "FIELD_TOO_LONG"))
    ok = write(tmp_path / "b.csv", f"text,label\n{'x' * inputs.CSV_FIELD_LIMIT},fresh\n")
    assert len(scan(ok).rows[0][0]) == inputs.CSV_FIELD_LIMIT


def test_input_error_defaults():
    error = InputError("something is wrong")
    assert isinstance(error, ValueError)
    assert error.as_problem() == {"split": "", "feature": "(input)", "kind": "INVALID_INPUT",
                                  "description": "something is wrong", "file": ""}


# check_input -------------------------------------------------------------------------------------------------------

def test_clean_input_has_no_warnings(tmp_path):
    write_rows(tmp_path / "a.csv", rows(3))
    write_rows(tmp_path / "b.csv", rows(2, seed=1))
    assert inputs.check_input(tmp_path, (), "text", "label") == []


def test_mismatched_headers(tmp_path):
    first = write_rows(tmp_path / "a.csv", rows(3))
    second = write_rows(tmp_path / "b.csv", [r[::-1] for r in rows(3)], header=("label", "text"))
    error = refused(lambda: inputs.check_input(tmp_path, (), "text", "label"), "MISMATCHED_HEADERS")
    assert str(second) in str(error) and str(first) in str(error)
    assert error.path == str(second)


def test_mismatched_headers_across_split_folders(tmp_path):
    write_rows(tmp_path / "train" / "a.csv", rows(3))
    write_rows(tmp_path / "eval" / "a.csv", rows(3))
    write_rows(tmp_path / "test" / "a.csv", [r + ["x"] for r in rows(3)], header=("text", "label", "id"))
    refused(lambda: inputs.check_input(tmp_path, inputs.SPLIT_FOLDERS, "text", "label"), "MISMATCHED_HEADERS")


def test_a_header_only_file_is_a_warning(tmp_path):
    write_rows(tmp_path / "a.csv", rows(3))
    empty = write_rows(tmp_path / "b.csv", [])
    assert inputs.check_input(tmp_path, (), "text", "label") == [f"{empty} has a header but no rows."]


def test_only_header_only_files_is_no_rows(tmp_path):
    write_rows(tmp_path / "a.csv", [])
    write_rows(tmp_path / "b.csv", [])
    error = refused(lambda: inputs.check_input(tmp_path, (), "text", "label"), "NO_ROWS")
    assert error.path == str(tmp_path) and "no data rows" in str(error)


def test_a_split_folder_of_header_only_files_is_no_rows(tmp_path):
    for split in ("train", "test"):
        write_rows(tmp_path / split / "a.csv", rows(3))
    write_rows(tmp_path / "eval" / "a.csv", [])
    error = refused(lambda: inputs.check_input(tmp_path, inputs.SPLIT_FOLDERS, "text", "label"), "NO_ROWS")
    assert error.path == str(tmp_path / "eval")


def test_extra_column_is_a_warning(tmp_path):
    write_rows(tmp_path / "a.csv", [r + [f"id-{i}"] for i, r in enumerate(rows(3))],
               header=("text", "label", "review_id"))
    [warning] = inputs.check_input(tmp_path, (), "text", "label")
    assert "review_id" in warning and "not used" in warning


def test_check_input_raises_the_scan_errors(tmp_path):
    write_rows(tmp_path / "a.csv", rows(3))
    write(tmp_path / "b.csv", "text,label\nok,fresh,extra\n")
    error = refused(lambda: inputs.check_input(tmp_path, (), "text", "label"), "MALFORMED_CSV")
    assert str(tmp_path / "b.csv") in str(error)


# detect_splits and spans -------------------------------------------------------------------------------------------

def test_flat_data_has_no_splits(tmp_path):
    write_rows(tmp_path / "a.csv", rows(2))
    assert inputs.detect_splits(tmp_path) == ()


def test_split_folders(tmp_path):
    for split in ("train", "eval", "test"):
        write_rows(tmp_path / split / "data.csv", rows(2))
    assert inputs.detect_splits(tmp_path) == ("train", "eval", "test")


def test_incomplete_split_folders(tmp_path):
    for split in ("train", "eval"):
        write_rows(tmp_path / split / "data.csv", rows(2))
    write_rows(tmp_path / "all.csv", rows(2))  # files beside do not make up for it
    error = refused(lambda: inputs.detect_splits(tmp_path), "NO_DATA_FILES")
    assert "but not test" in str(error)


def test_a_split_folder_without_csv_files(tmp_path):
    for split in ("train", "eval", "test"):
        write_rows(tmp_path / split / "data.csv", rows(2))
    (tmp_path / "eval" / "data.csv").rename(tmp_path / "eval" / "data.txt")
    error = refused(lambda: inputs.detect_splits(tmp_path), "NO_DATA_FILES")
    assert error.path == str(tmp_path / "eval")


def test_no_csv_files(tmp_path):
    write(tmp_path / "notes.txt", "not data")
    assert "nor span-N/ folders" in str(refused(lambda: inputs.detect_splits(tmp_path), "NO_DATA_FILES"))
    span = tmp_path / "span-3"
    span.mkdir()
    assert "span-N" not in str(refused(lambda: inputs.detect_splits(span), "NO_DATA_FILES"))


def test_missing_data_root(tmp_path):
    refused(lambda: inputs.detect_splits(tmp_path / "nowhere"), "NO_DATA")
    refused(lambda: inputs.spans(tmp_path / "nowhere"), "NO_DATA")


def test_spans_in_numeric_order(tmp_path):
    for name in ("span-10", "span-2", "span-1", "span-x", "span-", "old-span-4", "span-5.bak"):
        (tmp_path / name).mkdir()
    write(tmp_path / "span-7", "a file, not a folder")
    assert inputs.spans(tmp_path) == [(1, tmp_path / "span-1"), (2, tmp_path / "span-2"),
                                      (10, tmp_path / "span-10")]


def test_no_spans(tmp_path):
    write_rows(tmp_path / "a.csv", rows(2))
    assert inputs.spans(tmp_path) == []


# label_values --------------------------------------------------------------------------------------------------

def test_label_values_of_all_files_without_splits(tmp_path):
    write_rows(tmp_path / "a.csv", [["x", "rotten"], ["y", ""]])
    write_rows(tmp_path / "b.csv", [["z", "fresh"], ["w", "rotten"]])
    assert inputs.label_values(tmp_path, (), "text", "label") == ("fresh", "rotten")


def test_label_values_of_the_train_split_only(tmp_path):
    write_rows(tmp_path / "train" / "a.csv", [["x", "b"], ["y", "a"]])
    write_rows(tmp_path / "eval" / "a.csv", [["x", "c"]])
    write_rows(tmp_path / "test" / "a.csv", [["x", "d"]])
    assert inputs.label_values(tmp_path, inputs.SPLIT_FOLDERS, "text", "label") == ("a", "b")


# subset -----------------------------------------------------------------------------------------------------------

def read_csv(path: Path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_subset_is_deterministic_and_reused(tmp_path):
    data = tmp_path / "data"
    write_rows(data / "a.csv", rows(60))
    write_rows(data / "b.csv", rows(40, seed=1))
    first = inputs.subset(data, (), 10, "text", "label", tmp_path / "cache1")
    second = inputs.subset(data, (), 10, "text", "label", tmp_path / "cache2")
    assert first.parent == tmp_path / "cache1" and first.name == second.name
    assert (first / "data.csv").read_bytes() == (second / "data.csv").read_bytes()
    written = read_csv(first / "data.csv")
    assert written[0] == ["text", "label"] and len(written) == 11
    everything = [tuple(r) for r in rows(60) + rows(40, seed=1)]
    assert all(tuple(r) in everything for r in written[1:])
    assert len({tuple(r) for r in written[1:]}) == 10

    # A second call reuses what the first wrote (the path is the same, the content is not rewritten).
    (first / "data.csv").write_text("text,label\nmarker,fresh\n")
    assert inputs.subset(data, (), 10, "text", "label", tmp_path / "cache1") == first
    assert (first / "data.csv").read_text() == "text,label\nmarker,fresh\n"
    assert not [p for p in (tmp_path / "cache1").iterdir() if p != first]  # no temporary folder left


def test_subset_does_not_depend_on_file_layout_or_row_order(tmp_path):
    all_rows = rows(100)
    write_rows(tmp_path / "one" / "all.csv", all_rows)
    shuffled = all_rows[:]
    random.Random(5).shuffle(shuffled)
    write_rows(tmp_path / "two" / "x.csv", shuffled[:30])
    write_rows(tmp_path / "two" / "y.csv", shuffled[30:])
    a = inputs.subset(tmp_path / "one", (), 15, "text", "label", tmp_path / "cache")
    b = inputs.subset(tmp_path / "two", (), 15, "text", "label", tmp_path / "cache")
    assert a != b  # different data roots, different cache entries ...
    assert (a / "data.csv").read_bytes() == (b / "data.csv").read_bytes()  # ... the same sample


def test_a_smaller_subset_is_part_of_a_larger_one(tmp_path):
    write_rows(tmp_path / "data" / "a.csv", rows(100))
    small = read_csv(inputs.subset(tmp_path / "data", (), 10, "text", "label", tmp_path / "cache") / "data.csv")
    large = read_csv(inputs.subset(tmp_path / "data", (), 30, "text", "label", tmp_path / "cache") / "data.csv")
    assert large[:11] == small


def test_subset_of_split_folders_takes_80_10_10(tmp_path):
    data = tmp_path / "data"
    for split, n in (("train", 200), ("eval", 50), ("test", 50)):
        write_rows(data / split / "data.csv", [[f"{split} {t}", label] for t, label in rows(n)])
    target = inputs.subset(data, inputs.SPLIT_FOLDERS, 100, "text", "label", tmp_path / "cache")
    for split, expected in (("train", 80), ("eval", 10), ("test", 10)):
        written = read_csv(target / split / "data.csv")
        assert len(written) == expected + 1
        assert all(text.startswith(f"{split} ") for text, _ in written[1:])
    assert inputs.detect_splits(target) == inputs.SPLIT_FOLDERS
    assert inputs.check_input(target, inputs.SPLIT_FOLDERS, "text", "label") == []


def test_subset_keeps_only_text_and_label_and_survives_quoting(tmp_path):
    data = tmp_path / "data"
    write(data / "a.csv", 'id,text,label\n1,"multi\nline, ""quoted""",fresh\n2,plain,rotten\n')
    target = inputs.subset(data, (), 50, "text", "label", tmp_path / "cache")
    result = scan(target / "data.csv")
    assert result.header == ["text", "label"]
    assert sorted(result.rows) == [('multi\nline, "quoted"', "fresh"), ("plain", "rotten")]


# schema_label_names ----------------------------------------------------------------------------------------------

def test_schema_label_names_of_the_curated_schema():
    assert inputs.schema_label_names(str(REPO / "schema" / "rotten_tomatoes" / "schema.pbtxt"), "label") == \
        ("fresh", "rotten")
    newsgroups = inputs.schema_label_names(str(REPO / "schema" / "20newsgroups" / "schema.pbtxt"), "label")
    assert len(newsgroups) == 20 and newsgroups[0] == "alt.atheism"


def test_schema_label_names_inline_domain_none_and_missing(tmp_path):
    inline = write(tmp_path / "inline.pbtxt",
                   'feature { name: "y" type: BYTES string_domain { value: "no" value: "yes" } }\n')
    assert inputs.schema_label_names(str(inline), "y") == ("no", "yes")
    free = write(tmp_path / "free.pbtxt", 'feature { name: "y" type: BYTES }\n')
    assert inputs.schema_label_names(str(free), "y") is None
    dangling = write(tmp_path / "dangling.pbtxt", 'feature { name: "y" type: BYTES domain: "nowhere" }\n')
    assert inputs.schema_label_names(str(dangling), "y") is None
    error = refused(lambda: inputs.schema_label_names(str(free), "label"), "INVALID_INPUT")
    assert "has no feature 'label'" in str(error) and str(free) in str(error)


# Empty texts: refused at the door, naming the file and the lines ---------------------------------------------------

def test_empty_text_fields_are_refused_naming_file_lines_and_what_to_do(tmp_path):
    data = rows(30)
    for i in (2, 9):
        data[i][0] = ""
    path = write_rows(tmp_path / "data" / "reviews.csv", data)
    error = refused(lambda: inputs.check_input(tmp_path / "data", (), "text", "label"), "EMPTY_TEXT_FIELDS")
    assert str(error) == (f"{path}: 2 of 30 rows have an empty text in column 'text' (lines 4, 11); every example "
                          "needs a text: remove those rows, or fill them in, and run again.")
    assert error.as_problem()["feature"] == "text" and error.as_problem()["file"] == str(path)


def test_texts_of_spaces_are_left_to_the_text_checks_and_an_optional_text_to_the_pipeline(tmp_path):
    data = rows(10)
    data[3][0] = "   "
    write_rows(tmp_path / "spaces" / "reviews.csv", data)
    assert inputs.check_input(tmp_path / "spaces", (), "text", "label") == []
    data[3][0] = ""
    write_rows(tmp_path / "empty" / "reviews.csv", data)
    assert inputs.check_input(tmp_path / "empty", (), "text", "label", text_required=False) == []


def test_the_curated_schemas_require_the_text_and_a_schema_may_not(tmp_path):
    assert inputs.schema_requires_text(str(REPO / "schema" / "rotten_tomatoes" / "schema.pbtxt"), "text")
    loose = tmp_path / "schema.pbtxt"
    loose.write_text('feature { name: "text" type: BYTES presence { min_fraction: 0.9 } }\n')
    assert not inputs.schema_requires_text(str(loose), "text")
