"""Stage 2, the text: Transform (in-graph WordPiece) -> TextStatisticsGen (against the last accepted text statistics)
-> TextValidationGate -> [SchemaFreezer, when the pipeline had no curated schema]."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, List

from tfx import v1 as tfx

from components.settings.data import component_config
from components.validation import text_checks, text_stats
from components.validation.frozen_schema import SchemaFreezer
from components.validation.gates import DataValidationGate
from pipeline.dag.baselines import baselines_dir
from pipeline.dag.config import PREPROCESSING_FN, PipelineConfig
from pipeline.dag.data_validation import DataStage, fix_hint, frozen_schema_dir, vocabulary_hint
from pipeline.dag.nodes import SCHEMA_FREEZER, TEXT_GATE, TEXT_STATISTICS_GEN, TRANSFORM


@dataclasses.dataclass(frozen=True)
class PreprocessingStage:
    """The preprocessing stage's nodes (in order) and what later stages read from it."""

    nodes: List[Any]
    transform: Any
    text_statistics_gen: Any
    text_gate: Any  # nothing is trained before it passes


def preprocessing(config: PipelineConfig, data: DataStage, code_version: str) -> PreprocessingStage:
    """Tokenizes the accepted data in-graph and checks the tokenized text (lengths, unknown pieces) against the last
    accepted text statistics."""
    transform = tfx.components.Transform(
        examples=data.training_examples, schema=data.schema, preprocessing_fn=PREPROCESSING_FN,
        custom_config=component_config(config.transform, config.data, code_version),
        # No run reads an analyzer cache back (there is no `analyzer_cache` input), so the updated one stays an empty
        # folder; on an object store an empty folder does not exist, and TFX's cache then never reuses this step.
        disable_analyzer_cache=True).with_id(TRANSFORM)
    transform.add_upstream_node(data.data_gate)

    text_statistics_gen = text_stats.TextStatisticsGen(
        examples=transform.outputs["transformed_examples"],
        baseline_statistics=data.baselines.outputs["text_statistics"],
        text_key=config.text_key, max_seq_length=config.transform.max_seq_length,
        checks=json.dumps(text_checks.load_checks(config.text_checks_file), sort_keys=True)
    ).with_id(TEXT_STATISTICS_GEN)
    text_gate = DataValidationGate(
        anomalies=text_statistics_gen.outputs["anomalies"],
        statistics=text_statistics_gen.outputs["statistics"], examples=data.example_gen.outputs["examples"],
        fix=fix_hint(config), vocabulary_fix=vocabulary_hint(config),
        baselines_dir=baselines_dir(config, TEXT_GATE)).with_id(TEXT_GATE)
    freezer = []
    if not config.schema_file:  # the first run whose data passes both gates freezes the schema it was checked with
        freezer = [SchemaFreezer(schema=data.schema, frozen_dir=frozen_schema_dir(config)).with_id(SCHEMA_FREEZER)]
        freezer[0].add_upstream_node(text_gate)
    return PreprocessingStage(nodes=[transform, text_statistics_gen, text_gate, *freezer],
                              transform=transform, text_statistics_gen=text_statistics_gen, text_gate=text_gate)
