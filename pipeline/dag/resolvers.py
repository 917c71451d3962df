"""The pipeline's resolver nodes: what a run reads from earlier runs through ML Metadata (the statistics a gate last
accepted, the model in service, the last spans ingested)."""

from __future__ import annotations

from tfx import v1 as tfx

from pipeline.dag.config import PipelineConfig
from pipeline.dag.nodes import MODEL_RESOLVER, SPAN_WINDOW, baseline_resolver_id


class LatestIfAnyStrategy(tfx.dsl.experimental.LatestArtifactStrategy):
    """The latest artifact, or nothing when there is none yet. The stock strategy fails its resolver node in that
    case (the pipeline goes on, but every first run would show a failed node); KFP's V2 compiler accepts only the
    stock class, so Kubeflow pipelines keep it."""

    def resolve_artifacts(self, store, input_dict):
        return self._resolve(input_dict)


def last_accepted_statistics(gate_id: str, config: PipelineConfig) -> tfx.dsl.Resolver:
    """The statistics that gate `gate_id` accepted most recently, in an earlier run (none on the first run): the
    baseline of the drift checks. Refused data never becomes a baseline, since a failing gate publishes nothing."""
    return tfx.dsl.Resolver(
        strategy_class=(LatestIfAnyStrategy if config.orchestrator == "local"
                        else tfx.dsl.experimental.LatestArtifactStrategy),
        statistics=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics,
                                   producer_component_id=gate_id, output_key="validated_statistics"),
    ).with_id(baseline_resolver_id(gate_id))


def model_in_service() -> tfx.dsl.Resolver:
    """The latest blessed model: the Evaluator's baseline, and the Trainer's starting point with --warm-start."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id(MODEL_RESOLVER)


def span_window(example_gen, spans: int) -> tfx.dsl.Resolver:
    """The last `spans` spans ExampleGen recorded in ML Metadata, for Transform and the Trainer."""
    window = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={"range_config": tfx.proto.RangeConfig(rolling_range=tfx.proto.RollingRange(num_spans=spans))},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples, producer_component_id=example_gen.id),
    ).with_id(SPAN_WINDOW)
    window.add_upstream_node(example_gen)
    return window
