"""ExampleGen for the CSV data: TFX's CsvExampleGen, with the text and label columns always read as text.

TFX's CsvExampleGen gives each column the type its values look like: a label column of 0/1 tags, or of star ratings
1-5, becomes an INT feature. Every schema here (curated, frozen, or a user's `--schema`) declares the label columns
BYTES with a string domain of class names ("0", "1", ...), as Transform's lookup and the front door's checks read
them, so such data failed validation with a type mismatch. This executor infers the types as TFX's does, then sets
the columns it is given (the text and the label columns) to strings; every other column keeps its inferred type, so
the schemas frozen before still match. It is built from tfx_bsl's CSV decoding steps and the TFX executor's own
reading and conversion steps; TFX has no option for a column's type.

`EXAMPLE_GEN`'s node in pipeline/dag/data_validation.py runs it: `example_gen(...)` below.
"""

from __future__ import annotations

import os
from typing import Iterable, List, Sequence

import apache_beam as beam
from google.protobuf import any_pb2, json_format, struct_pb2
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx_bsl.coders import csv_decoder

TEXT_COLUMNS_KEY = "text_columns"  # in the component's custom_config: the columns read as strings


def custom_config(columns: Sequence[str]) -> example_gen_pb2.CustomConfig:
    """The ExampleGen's custom_config naming the columns to read as strings."""
    names = struct_pb2.Struct()
    names.update({TEXT_COLUMNS_KEY: list(columns)})
    packed = any_pb2.Any()
    packed.Pack(names)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def text_columns(exec_properties) -> frozenset:
    """The columns custom_config names (none without one). The executor gets custom_config as the proto's JSON."""
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not raw:
        return frozenset()
    config = example_gen_pb2.CustomConfig()
    json_format.Parse(raw, config)
    names = struct_pb2.Struct()
    if not config.custom_config.Unpack(names) or TEXT_COLUMNS_KEY not in names:
        return frozenset()
    return frozenset(names[TEXT_COLUMNS_KEY])


def as_text(infos: Iterable[csv_decoder.ColumnInfo], columns: frozenset) -> List[csv_decoder.ColumnInfo]:
    """The inferred column types with `columns` set to strings."""
    return [csv_decoder.ColumnInfo(info.name, csv_decoder.ColumnType.STRING) if info.name in columns else info
            for info in infos]


class _CsvToExample(beam.PTransform):
    """One split's CSV files as tf.Examples: the records read in file order (a quoted field may span lines), parsed,
    the column types inferred over the whole split, `columns` made strings, then each record converted."""

    def __init__(self, exec_properties, split_pattern: str):
        super().__init__()
        self._pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
        self._columns = text_columns(exec_properties)

    def expand(self, pipeline):
        files = fileio.glob(self._pattern)
        if not files:
            raise RuntimeError(f"Split pattern {self._pattern} does not match any files.")
        names = io_utils.load_csv_column_names(files[0])
        if any(io_utils.load_csv_column_names(f) != names for f in files[1:]):
            raise RuntimeError(f"Files in same split {self._pattern} have different header.")
        records = (pipeline
                   | "CreateFilenames" >> beam.Create(files)
                   | "ReadFromText" >> beam.ParDo(csv_executor._ReadCsvRecordsFromTextFile())  # noqa: SLF001
                   | "ParseCSVLine" >> beam.ParDo(csv_decoder.ParseCSVLine(delimiter=","))
                   | "ExtractParsedCSVLines" >> beam.Keys())
        columns = self._columns
        infos = (records
                 | "InferColumnTypes" >> beam.CombineGlobally(
                     csv_decoder.ColumnTypeInferrer(names, skip_blank_lines=True))
                 | "TextColumnsAsStrings" >> beam.Map(lambda inferred: as_text(inferred, columns)))
        return records | "ToTFExample" >> beam.ParDo(csv_executor._ParsedCsvToTfExample(),  # noqa: SLF001
                                                     beam.pvalue.AsSingleton(infos))


class Executor(csv_executor.Executor):
    """TFX's CSV ExampleGen executor (splits, spans, fingerprints, output format) with `_CsvToExample` above."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802  (TFX's name)
        return _CsvToExample


def example_gen(input_base: str, input_config, output_config, string_columns: Sequence[str]) -> FileBasedExampleGen:
    """The ExampleGen component over CSV files under `input_base`, reading `string_columns` as strings."""
    return FileBasedExampleGen(input_base=input_base, input_config=input_config, output_config=output_config,
                               custom_config=custom_config(string_columns),
                               custom_executor_spec=executor_spec.BeamExecutorSpec(Executor))
