"""The checks of a data root's CSV files before a run (components/ingestion/csv_checks.py), the --max-examples subset
(pipeline/data/subsets.py) and what a schema.pbtxt says of a column (components/validation/schema_file.py), on tiny
files: what the pipeline could not use is one clear DataFileError (kind, file, line), the label values are the
training split's, and the subset is deterministic. The reading itself: tests/unit/test_csv_files.py."""

import csv
import random
from pathlib import Path

import pytest

from components.ingestion import csv_checks, csv_files
from components.ingestion.csv_files import (
    SPLIT_FOLDERS,
    DataFileError,
)
from components.validation import schema_file
from pipeline.data import subsets
from support import write_csv

REPO = Path(__file__).resolve().parents[2]


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


def refused(call, kind):
    with pytest.raises(DataFileError) as raised:
        call()
    assert raised.value.kind == kind, str(raised.value)
    return raised.value


def test_clean_input_has_no_warnings(tmp_path):
    write_csv(tmp_path / "a.csv", rows(3))
    write_csv(tmp_path / "b.csv", rows(2, seed=1))
    assert csv_checks.check_input(tmp_path, (), "text", "label") == []


def test_mismatched_headers(tmp_path):
    first = write_csv(tmp_path / "a.csv", rows(3))
    second = write_csv(tmp_path / "b.csv", [r[::-1] for r in rows(3)], header=("label", "text"))
    error = refused(lambda: csv_checks.check_input(tmp_path, (), "text", "label"), "MISMATCHED_HEADERS")
    assert str(second) in str(error) and str(first) in str(error)
    assert error.path == str(second)


def test_mismatched_headers_across_split_folders(tmp_path):
    write_csv(tmp_path / "train" / "a.csv", rows(3))
    write_csv(tmp_path / "eval" / "a.csv", rows(3))
    write_csv(tmp_path / "test" / "a.csv", [r + ["x"] for r in rows(3)], header=("text", "label", "id"))
    refused(lambda: csv_checks.check_input(tmp_path, SPLIT_FOLDERS, "text", "label"), "MISMATCHED_HEADERS")


def test_a_header_only_file_is_a_warning(tmp_path):
    write_csv(tmp_path / "a.csv", rows(3))
    empty = write_csv(tmp_path / "b.csv", [])
    assert csv_checks.check_input(tmp_path, (), "text", "label") == [f"{empty} has a header but no rows."]


def test_only_header_only_files_is_no_rows(tmp_path):
    write_csv(tmp_path / "a.csv", [])
    write_csv(tmp_path / "b.csv", [])
    error = refused(lambda: csv_checks.check_input(tmp_path, (), "text", "label"), "NO_ROWS")
    assert error.path == str(tmp_path) and "no data rows" in str(error)


def test_a_split_folder_of_header_only_files_is_no_rows(tmp_path):
    for split in ("train", "test"):
        write_csv(tmp_path / split / "a.csv", rows(3))
    write_csv(tmp_path / "eval" / "a.csv", [])
    error = refused(lambda: csv_checks.check_input(tmp_path, SPLIT_FOLDERS, "text", "label"), "NO_ROWS")
    assert error.path == str(tmp_path / "eval")


def test_extra_column_is_a_warning(tmp_path):
    write_csv(tmp_path / "a.csv", [r + [f"id-{i}"] for i, r in enumerate(rows(3))],
               header=("text", "label", "review_id"))
    [warning] = csv_checks.check_input(tmp_path, (), "text", "label")
    assert "review_id" in warning and "not used" in warning


def test_check_input_raises_the_scan_errors(tmp_path):
    write_csv(tmp_path / "a.csv", rows(3))
    write(tmp_path / "b.csv", "text,label\nok,fresh,extra\n")
    error = refused(lambda: csv_checks.check_input(tmp_path, (), "text", "label"), "MALFORMED_CSV")
    assert str(tmp_path / "b.csv") in str(error)


# label_values --------------------------------------------------------------------------------------------------

def test_label_values_of_all_files_without_splits(tmp_path):
    write_csv(tmp_path / "a.csv", [["x", "rotten"], ["y", ""]])
    write_csv(tmp_path / "b.csv", [["z", "fresh"], ["w", "rotten"]])
    assert csv_checks.label_values(tmp_path, (), "text", "label") == ("fresh", "rotten")


def test_label_values_of_the_train_split_only(tmp_path):
    write_csv(tmp_path / "train" / "a.csv", [["x", "b"], ["y", "a"]])
    write_csv(tmp_path / "eval" / "a.csv", [["x", "c"]])
    write_csv(tmp_path / "test" / "a.csv", [["x", "d"]])
    assert csv_checks.label_values(tmp_path, SPLIT_FOLDERS, "text", "label") == ("a", "b")


# subset -----------------------------------------------------------------------------------------------------------

def read_csv(path: Path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_subset_is_deterministic_and_reused(tmp_path):
    data = tmp_path / "data"
    write_csv(data / "a.csv", rows(60))
    write_csv(data / "b.csv", rows(40, seed=1))
    first = subsets.subset(data, (), 10, "text", "label", tmp_path / "cache1")
    second = subsets.subset(data, (), 10, "text", "label", tmp_path / "cache2")
    assert first.parent == tmp_path / "cache1" and first.name == second.name
    assert (first / "data.csv").read_bytes() == (second / "data.csv").read_bytes()
    written = read_csv(first / "data.csv")
    assert written[0] == ["text", "label"] and len(written) == 11
    everything = [tuple(r) for r in rows(60) + rows(40, seed=1)]
    assert all(tuple(r) in everything for r in written[1:])
    assert len({tuple(r) for r in written[1:]}) == 10

    # A second call reuses what the first wrote (the path is the same, the content is not rewritten).
    (first / "data.csv").write_text("text,label\nmarker,fresh\n")
    assert subsets.subset(data, (), 10, "text", "label", tmp_path / "cache1") == first
    assert (first / "data.csv").read_text() == "text,label\nmarker,fresh\n"
    assert not [p for p in (tmp_path / "cache1").iterdir() if p != first]  # no temporary folder left


def test_subset_does_not_depend_on_file_layout_or_row_order(tmp_path):
    all_rows = rows(100)
    write_csv(tmp_path / "one" / "all.csv", all_rows)
    shuffled = all_rows[:]
    random.Random(5).shuffle(shuffled)
    write_csv(tmp_path / "two" / "x.csv", shuffled[:30])
    write_csv(tmp_path / "two" / "y.csv", shuffled[30:])
    a = subsets.subset(tmp_path / "one", (), 15, "text", "label", tmp_path / "cache")
    b = subsets.subset(tmp_path / "two", (), 15, "text", "label", tmp_path / "cache")
    assert a != b  # different data roots, different cache entries ...
    assert (a / "data.csv").read_bytes() == (b / "data.csv").read_bytes()  # ... the same sample


def test_a_smaller_subset_is_part_of_a_larger_one(tmp_path):
    write_csv(tmp_path / "data" / "a.csv", rows(100))
    small = read_csv(subsets.subset(tmp_path / "data", (), 10, "text", "label", tmp_path / "cache") / "data.csv")
    large = read_csv(subsets.subset(tmp_path / "data", (), 30, "text", "label", tmp_path / "cache") / "data.csv")
    assert large[:11] == small


def test_subset_of_split_folders_takes_80_10_10(tmp_path):
    data = tmp_path / "data"
    for split, n in (("train", 200), ("eval", 50), ("test", 50)):
        write_csv(data / split / "data.csv", [[f"{split} {t}", label] for t, label in rows(n)])
    target = subsets.subset(data, SPLIT_FOLDERS, 100, "text", "label", tmp_path / "cache")
    for split, expected in (("train", 80), ("eval", 10), ("test", 10)):
        written = read_csv(target / split / "data.csv")
        assert len(written) == expected + 1
        assert all(text.startswith(f"{split} ") for text, _ in written[1:])
    assert csv_files.detect_splits(target) == SPLIT_FOLDERS
    assert csv_checks.check_input(target, SPLIT_FOLDERS, "text", "label") == []


def test_subset_keeps_only_text_and_label_and_survives_quoting(tmp_path):
    data = tmp_path / "data"
    write(data / "a.csv", 'id,text,label\n1,"multi\nline, ""quoted""",fresh\n2,plain,rotten\n')
    target = subsets.subset(data, (), 50, "text", "label", tmp_path / "cache")
    result = csv_files.scan_csv(target / "data.csv", "text", "label")
    assert result.header == ["text", "label"]
    assert sorted(result.rows) == [('multi\nline, "quoted"', "fresh"), ("plain", "rotten")]


# schema_label_names ----------------------------------------------------------------------------------------------

def test_schema_label_names_of_the_curated_schema():
    assert schema_file.schema_label_names(str(REPO / "schema" / "rotten_tomatoes" / "schema.pbtxt"), "label") == \
        ("fresh", "rotten")
    newsgroups = schema_file.schema_label_names(str(REPO / "schema" / "20newsgroups" / "schema.pbtxt"), "label")
    assert len(newsgroups) == 20 and newsgroups[0] == "alt.atheism"


def test_schema_label_names_inline_domain_none_and_missing(tmp_path):
    inline = write(tmp_path / "inline.pbtxt",
                   'feature { name: "y" type: BYTES string_domain { value: "no" value: "yes" } }\n')
    assert schema_file.schema_label_names(str(inline), "y") == ("no", "yes")
    free = write(tmp_path / "free.pbtxt", 'feature { name: "y" type: BYTES }\n')
    assert schema_file.schema_label_names(str(free), "y") is None
    dangling = write(tmp_path / "dangling.pbtxt", 'feature { name: "y" type: BYTES domain: "nowhere" }\n')
    assert schema_file.schema_label_names(str(dangling), "y") is None
    error = refused(lambda: schema_file.schema_label_names(str(free), "label"), "INVALID_INPUT")
    assert "has no feature 'label'" in str(error) and str(free) in str(error)


# Empty texts: refused at the door, naming the file and the lines ---------------------------------------------------

def test_empty_text_fields_are_refused_naming_file_lines_and_what_to_do(tmp_path):
    data = rows(30)
    for i in (2, 9):
        data[i][0] = ""
    path = write_csv(tmp_path / "data" / "reviews.csv", data)
    error = refused(lambda: csv_checks.check_input(tmp_path / "data", (), "text", "label"), "EMPTY_TEXT_FIELDS")
    assert str(error) == (f"{path}: 2 of 30 rows have an empty text in column 'text' (lines 4, 11); every example "
                          "needs a text: remove those rows, or fill them in, and run again.")
    assert error.feature == "text" and error.path == str(path)


def test_texts_of_spaces_are_left_to_the_text_checks_and_an_optional_text_to_the_pipeline(tmp_path):
    data = rows(10)
    data[3][0] = "   "
    write_csv(tmp_path / "spaces" / "reviews.csv", data)
    assert csv_checks.check_input(tmp_path / "spaces", (), "text", "label") == []
    data[3][0] = ""
    write_csv(tmp_path / "empty" / "reviews.csv", data)
    assert csv_checks.check_input(tmp_path / "empty", (), "text", "label", text_required=False) == []


def test_the_curated_schemas_require_the_text_and_a_schema_may_not(tmp_path):
    assert schema_file.schema_requires_text(str(REPO / "schema" / "rotten_tomatoes" / "schema.pbtxt"), "text")
    loose = tmp_path / "schema.pbtxt"
    loose.write_text('feature { name: "text" type: BYTES presence { min_fraction: 0.9 } }\n')
    assert not schema_file.schema_requires_text(str(loose), "text")


# Two texts per example (--text-column a,b) -------------------------------------------------------------------------

def pair_rows(n):
    return [[f"question {i}?", f"passage {i}." if i % 3 else f"an answer to {i}", "yes" if i % 2 else "no", str(i)]
            for i in range(n)]


PAIR_HEADER = ("question", "passage", "label", "id")


def test_a_pair_of_text_columns_is_read_and_its_labels_found(tmp_path):
    write_csv(tmp_path / "data" / "pairs.csv", pair_rows(12), PAIR_HEADER)
    warnings = csv_checks.check_input(tmp_path / "data", (), "question,passage", "label")
    assert warnings == [f"column(s) id of {tmp_path / 'data' / 'pairs.csv'} are not used: only 'question' and "
                        "'passage' and 'label' reach the model."]
    assert csv_checks.label_values(tmp_path / "data", (), "question,passage", "label") == ("no", "yes")
    scan = csv_files.scan_csv(tmp_path / "data" / "pairs.csv", "question,passage", "label")
    assert scan.rows[1] == ("question 1?", "passage 1.", "yes") and scan.text_count == 2


@pytest.mark.parametrize("column, at", [(0, "question"), (1, "passage")])
def test_an_empty_text_in_either_column_of_a_pair_is_refused_naming_the_column_and_lines(tmp_path, column, at):
    data = pair_rows(12)
    for i in (4, 7):
        data[i][column] = ""
    path = write_csv(tmp_path / "data" / "pairs.csv", data, PAIR_HEADER)
    error = refused(lambda: csv_checks.check_input(tmp_path / "data", (), "question,passage", "label"),
                    "EMPTY_TEXT_FIELDS")
    assert str(error) == (f"{path}: 2 of 12 rows have an empty text in column {at!r} (lines 6, 9); every example "
                          "needs a text (each example of a pair needs both texts): remove those rows, or fill them in, "
                          "and run again.")
    assert error.feature == at


def test_a_missing_second_text_column_is_refused_naming_it(tmp_path):
    path = write_csv(tmp_path / "data" / "pairs.csv", pair_rows(3), PAIR_HEADER)
    error = refused(lambda: csv_checks.check_input(tmp_path / "data", (), "question,answer", "label"),
                    "MISSING_COLUMN")
    assert str(error).startswith(f"{path} has no text column 'answer' (its columns: question, passage, label, id)")


@pytest.mark.parametrize("flag, says", [
    ("a,b,c", "--text-column 'a,b,c' names 3 columns; it takes one text column, or two for a pair of texts"),
    ("a,", "--text-column 'a,' has an empty column name"),
    ("a,a", "--text-column 'a,a' names 'a' twice"),
])
def test_more_than_two_or_bad_text_columns_are_refused_in_one_line_naming_the_flag(tmp_path, flag, says):
    write_csv(tmp_path / "data" / "pairs.csv", pair_rows(3), PAIR_HEADER)
    error = refused(lambda: csv_checks.check_input(tmp_path / "data", (), flag, "label"), "INVALID_TEXT_COLUMN")
    assert str(error).startswith(says) and "\n" not in str(error)


def test_a_subset_of_pairs_keeps_both_texts(tmp_path):
    write_csv(tmp_path / "data" / "pairs.csv", pair_rows(40), PAIR_HEADER)
    out = subsets.subset(tmp_path / "data", (), 10, "question,passage", "label", tmp_path / "cache")
    kept = list(csv.reader(open(out / "data.csv", encoding="utf-8")))
    assert kept[0] == ["question", "passage", "label"] and len(kept) == 11
    assert all(q.startswith("question") and p and label in ("yes", "no") for q, p, label in kept[1:])


def test_a_schema_requiring_either_text_of_a_pair_requires_the_texts(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "question" type: BYTES presence { min_fraction: 0.5 } }\n'
                      'feature { name: "passage" type: BYTES presence { min_fraction: 1 } }\n')
    assert schema_file.schema_requires_text(str(schema), "question,passage")
    schema.write_text('feature { name: "question" type: BYTES presence { min_fraction: 0.5 } }\n'
                      'feature { name: "passage" type: BYTES presence { min_fraction: 0.5 } }\n')
    assert not schema_file.schema_requires_text(str(schema), "question,passage")


def test_several_label_columns_still_work_with_two_texts(tmp_path):
    """The label columns come after both texts in every row: their values, and a missing one, are each column's."""
    data = [[*row[:3], "x" if i % 3 else "y"] for i, row in enumerate(pair_rows(12))]
    data[4][3] = ""
    path = write_csv(tmp_path / "data" / "pairs.csv", data, ("question", "passage", "label", "kind"))
    assert csv_checks.label_values(tmp_path / "data", (), "question,passage", "label,kind", column=1) == ("x", "y")
    assert csv_checks.label_values(tmp_path / "data", (), "question,passage", "label,kind", column=0) == ("no", "yes")
    assert csv_checks.check_input(tmp_path / "data", (), "question,passage", "label,kind",
                                  missing_allowed=("kind",)) == []
    error = refused(lambda: csv_checks.check_input(tmp_path / "data", (), "question,passage", "label,kind"),
                    "MISSING_LABELS")
    assert str(error).startswith(f"{path}: 1 of 12 rows have no value in the label column 'kind' (line 6)")
