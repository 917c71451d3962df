"""Stage 1, the data: ExampleGen -> StatisticsGen -> the schema (curated, frozen or inferred) -> ExampleValidator and
DriftValidator (against the last accepted statistics, from BaselineLookup) -> DataValidationGate (which publishes
what it accepted as the next run's baseline)."""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Any, List

from tfx import v1 as tfx

from components import tasks
from components.ingestion import csv_example_gen
from components.ingestion.csv_files import HASH_BUCKETS, SPAN_FOLDER
from components.validation.drift import DriftValidator
from components.validation.frozen_files import FROZEN_DIR
from components.validation.frozen_schema import SchemaCurator
from components.validation.gates import DataValidationGate
from pipeline.dag.baselines import baseline_lookup, baselines_dir
from pipeline.dag.config import PipelineConfig
from pipeline.dag.nodes import (
    DATA_GATE,
    DRIFT_VALIDATOR,
    EXAMPLE_GEN,
    EXAMPLE_VALIDATOR,
    IMPORT_SCHEMA_GEN,
    SCHEMA_CURATOR,
    SCHEMA_GEN,
    STATISTICS_GEN,
)
from pipeline.dag.resolvers import span_window


@dataclasses.dataclass(frozen=True)
class DataStage:
    """The data stage's nodes (in order) and what later stages read from it."""

    nodes: List[Any]
    example_gen: Any
    statistics_gen: Any
    schema: Any  # the schema channel every later step checks against
    training_examples: Any  # what Transform reads: this run's span, or a window of the last spans
    example_validator: Any
    drift_validator: Any
    data_gate: Any  # nothing is transformed (or trained) when it fails
    baselines: Any  # BaselineLookup: the model in service and the statistics both gates last accepted


def frozen_schema_dir(config: PipelineConfig) -> str:
    """Where a pipeline without a curated schema keeps the one it froze (components/validation/frozen_schema.py):
    relative to the pipeline root on a local run (so a moved or copied root keeps its cache), the full location on
    Kubeflow."""
    return FROZEN_DIR if config.orchestrator == "local" else posixpath.join(config.pipeline_root, FROZEN_DIR)


def fix_hint(config: PipelineConfig) -> str:
    """What a refusal tells the user to change when their data changed legitimately: their own files, or a flag."""
    if config.schema_source == "none":
        return ("pass --schema FILE (a schema.pbtxt, with a text_checks.toml beside it) to set your own: this first "
                "check used the schema inferred from this data and the default thresholds")
    schema = config.schema_origin or config.schema_file
    return f"edit {schema} or the text_checks.toml beside it (see docs/protections.md, 'Where the thresholds live')"


def vocabulary_hint(config: PipelineConfig) -> str:
    """What the text gate advises when the vocabulary does not fit the texts (low word coverage, many [UNK]): with a
    checkpoint's vocabulary, one learned from the data or a checkpoint for the texts' language."""
    if config.data.vocab_mode != "checkpoint":
        return ""  # learned from this data: more of it, or a larger --vocab-size, is the remedy (the thresholds say)
    section = "docs/data.md, 'Training from scratch, in any language'"
    if not config.trainer.pretrained_dir:  # from scratch, with the packaged vocabulary
        return (f"pass --vocab learn to learn a WordPiece vocabulary from your data, in any language ({section}): "
                "the packaged one does not cover these texts")
    return (f"pass --pretrained none to train with a WordPiece vocabulary learned from your data, in any language "
            f"({section}), or --pretrained DIR with a checkpoint for their language: the checkpoint's vocabulary "
            "does not cover these texts")


def example_gen_input(config: PipelineConfig):
    """ExampleGen's input/output split configuration: the data's own splits, or a hash split."""
    prefix = f"{SPAN_FOLDER}/" if config.use_spans else ""
    if config.input_splits:
        input_config = tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name=split, pattern=f"{prefix}{split}/*.csv") for split in config.input_splits])
        return input_config, None
    input_config = tfx.proto.Input(splits=[tfx.proto.Input.Split(name="all", pattern=f"{prefix}*.csv")])
    output_config = tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
        tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets) for name, buckets in HASH_BUCKETS]))
    return input_config, output_config


def data_validation(config: PipelineConfig) -> DataStage:
    """Ingests the data, describes it and checks it against the schema and the last accepted data; the gate stops the
    run (and never becomes a baseline) when it fails."""
    input_config, output_config = example_gen_input(config)
    # TFX's CsvExampleGen but for the text and label columns, always read as text (0/1 tags are class names).
    example_gen = csv_example_gen.example_gen(
        config.data_root, input_config, output_config,
        [*config.data.text_columns, *(t.column for t in config.tasks)]).with_id(EXAMPLE_GEN)
    # Without spans, or with a window of one, everything trains on what ExampleGen just ingested. With a window,
    # Transform and Trainer read the last `spans_window` spans recorded in ML Metadata.
    window = [span_window(example_gen, config.spans_window)] if config.use_spans and config.spans_window > 1 else []
    training_examples = (window[0] if window else example_gen).outputs["examples"]
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id(STATISTICS_GEN)

    # The inferred schema is always computed, to compare with the curated one (or to become it when the data has no
    # curated schema yet: curated by SchemaCurator, frozen by SchemaFreezer once the data passed the checks).
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"],
                                          infer_feature_shape=True).with_id(SCHEMA_GEN)
    if config.schema_file:
        curated = tfx.components.ImportSchemaGen(schema_file=config.schema_file).with_id(IMPORT_SCHEMA_GEN)
    else:
        curated = SchemaCurator(inferred_schema=schema_gen.outputs["schema"], text_key=config.text_key,
                                label_key=config.label_key,
                                label_names=json.dumps(tasks.class_names_record(config.tasks)),
                                frozen_dir=frozen_schema_dir(config), frozen_edit=config.frozen_edit
                                ).with_id(SCHEMA_CURATOR)
    schema = curated.outputs["schema"]

    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema).with_id(EXAMPLE_VALIDATOR)
    baselines = baseline_lookup(config)
    drift_validator = DriftValidator(statistics=statistics_gen.outputs["statistics"], schema=schema,
                                     baseline_statistics=baselines.outputs["data_statistics"]).with_id(DRIFT_VALIDATOR)
    data_gate = DataValidationGate(
        anomalies=example_validator.outputs["anomalies"], more_anomalies=drift_validator.outputs["anomalies"],
        statistics=statistics_gen.outputs["statistics"], examples=example_gen.outputs["examples"],
        fix=fix_hint(config), baselines_dir=baselines_dir(config, DATA_GATE)).with_id(DATA_GATE)
    return DataStage(
        nodes=[example_gen, *window, statistics_gen, schema_gen, curated, example_validator, baselines,
               drift_validator, data_gate],
        example_gen=example_gen, statistics_gen=statistics_gen, schema=schema, training_examples=training_examples,
        example_validator=example_validator, drift_validator=drift_validator, data_gate=data_gate,
        baselines=baselines)
