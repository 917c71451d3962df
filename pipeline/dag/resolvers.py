"""The pipeline's one resolver node: the window of the last spans ExampleGen recorded in ML Metadata
(--spans-window, local runs only; the Kubeflow compiler refuses it). What a run compares with from earlier runs does
not come from resolvers but from BaselineLookup (pipeline/dag/baselines.py), the same on every orchestrator."""

from __future__ import annotations

from tfx import v1 as tfx

from pipeline.dag.nodes import SPAN_WINDOW


def span_window(example_gen, spans: int) -> tfx.dsl.Resolver:
    """The last `spans` spans ExampleGen recorded in ML Metadata, for Transform and the Trainer."""
    window = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={"range_config": tfx.proto.RangeConfig(rolling_range=tfx.proto.RollingRange(num_spans=spans))},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples, producer_component_id=example_gen.id),
    ).with_id(SPAN_WINDOW)
    window.add_upstream_node(example_gen)
    return window
