"""The ExampleGen's CSV reading (components/ingestion/csv_example_gen.py), on small CSV files in a real Beam pipeline:
the text and label columns it is given come out as strings whatever their values look like (0/1 tags, star
ratings), and every other column keeps the type TFX's CsvExampleGen infers. The whole pipeline on 0/1 tags:
tests/e2e/test_multi_task.py."""

import apache_beam as beam
import pytest
import tensorflow as tf
from google.protobuf import json_format

from components.ingestion import csv_example_gen

CSV = ('review,toxic,stars,review_id,score\n'
       '"you are, frankly, an idiot",1,1,17,0.5\n'
       '"have a nice day",0,5,18,1.5\n'
       '"a review whose quote\nspans two lines",,3,19,2.0\n')


def _examples(tmp_path, columns):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part.csv").write_text(CSV)
    exec_properties = {"input_base": str(tmp_path / "data"),
                       "custom_config": json_format.MessageToJson(csv_example_gen.custom_config(columns))}
    written = tmp_path / "examples.tfrecord"
    with beam.Pipeline() as pipeline:
        _ = (pipeline
             | csv_example_gen._CsvToExample(exec_properties, "*.csv")  # noqa: SLF001
             | beam.Map(lambda e: e.SerializeToString())
             | beam.io.WriteToTFRecord(str(written), shard_name_template=""))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(written))]


def _kind(example, name):
    return example.features.feature[name].WhichOneof("kind")


def test_the_text_and_label_columns_are_strings_and_the_others_keep_their_types(tmp_path):
    examples = sorted(_examples(tmp_path, ["review", "toxic", "stars"]),
                      key=lambda e: e.features.feature["review_id"].int64_list.value[0])
    assert len(examples) == 3
    for example in examples:
        for name in ("review", "toxic", "stars"):
            assert _kind(example, name) == "bytes_list", name
        assert _kind(example, "review_id") == "int64_list" and _kind(example, "score") == "float_list"
    assert [e.features.feature["toxic"].bytes_list.value[:] for e in examples] == [[b"1"], [b"0"], []]  # empty: none
    assert examples[1].features.feature["stars"].bytes_list.value[0] == b"5"
    assert examples[2].features.feature["review"].bytes_list.value[0] == b"a review whose quote\nspans two lines"


def test_without_columns_it_reads_as_tfxs_csv_example_gen_does(tmp_path):
    examples = _examples(tmp_path, [])
    assert {_kind(e, "toxic") for e in examples} == {"int64_list"}
    assert {_kind(e, "review") for e in examples} == {"bytes_list"}


@pytest.mark.parametrize("raw", [None, "", json_format.MessageToJson(csv_example_gen.custom_config([]))])
def test_no_custom_config_means_no_column_is_changed(raw):
    assert csv_example_gen.text_columns({} if raw is None else {"custom_config": raw}) == frozenset()
