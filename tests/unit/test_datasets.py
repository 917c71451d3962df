"""The built-in datasets' one registry (pipeline/data/datasets.py) against the checkout: each has its curated schema
under schema/, naming its text and label columns, and each folder of schema/ is a registered dataset."""

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.data import datasets


def test_every_built_in_dataset_has_a_curated_schema_of_its_columns():
    for dataset in datasets.BUILTIN.values():
        assert dataset.schema_file is not None, f"{dataset.name}: no {dataset.schema_dir / datasets.SCHEMA_FILE}"
        schema = text_format.Parse(dataset.schema_file.read_text(), schema_pb2.Schema())
        features = {f.name for f in schema.feature}
        columns = {dataset.text_column, *dataset.label_columns.split(",")}
        assert columns <= features, f"{dataset.name}: {sorted(columns - features)} not in {dataset.schema_file}"


def test_every_schema_folder_is_a_registered_dataset():
    folders = {p.name for p in datasets.SCHEMA_DIR.iterdir() if p.is_dir()}
    assert folders == set(datasets.NAMES)


def test_custom_data_has_the_default_columns():
    assert datasets.label_columns_of("custom") == datasets.LABEL_COLUMN
    assert datasets.curated_schema("custom") is None and datasets.DEFAULT in datasets.NAMES
