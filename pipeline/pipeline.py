"""The TFX pipeline as a pure function of a `PipelineConfig`; it knows nothing about the runner.

ExampleGen -> StatisticsGen -> ImportSchemaGen (curated) / SchemaGen (inferred, for comparison)
-> ExampleValidator + DriftValidator (against the last accepted statistics) -> DataValidationGate
-> Transform (in-graph WordPiece) -> TextStatisticsGen -> TextValidationGate -> Trainer (BERT)
-> Evaluator (TFMA, against the latest blessed model) -> Pusher (only when blessed).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import List

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components import features, text_checks, text_stats
from components.drift import DriftValidator
from components.gates import DataValidationGate
from components.pusher import AtomicPusherExecutor
from pipeline.config import HASH_BUCKETS, PREPROCESSING_FN, RUN_FN, SPAN_FOLDER, PipelineConfig

COMPONENTS_DIR = Path(__file__).resolve().parent.parent / "components"


def code_fingerprint() -> str:
    """A digest of the user code under components/. It goes into the Transform and Trainer exec
    properties so TFX's cache is invalidated when that code changes (module paths alone carry no version)."""
    digest = hashlib.sha256()
    for path in sorted(COMPONENTS_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


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


def make_eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """Metrics on the eval split, and the gates that decide the blessing.

    Accuracy must reach `min_accuracy` and may not fall more than `max_accuracy_drop` below the baseline
    (the latest blessed model, i.e. the one in service); TFX drops the change threshold on the first run,
    when there is no baseline yet.
    """
    class_ids = list(range(config.num_classes))
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.max_accuracy_drop}))
    per_class = [tfma.MetricConfig(class_name="Precision"), tfma.MetricConfig(class_name="Recall"),
                 tfma.MetricConfig(class_name="F1Score")]
    if config.num_classes == 2:
        per_class.append(tfma.MetricConfig(class_name="AUC"))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="serving_examples",
            prediction_key="probabilities",
            label_key=features.LABEL_ID_KEY,
            preprocessing_function_names=["transform_features"])],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=accuracy_threshold),
            ]),
            # One-vs-rest per class (precision/recall/F1, AUC for binary tasks) and their macro average.
            tfma.MetricsSpec(
                metrics=per_class,
                binarize=tfma.BinarizationOptions(class_ids={"values": class_ids}),
                aggregate=tfma.AggregationOptions(
                    macro_average=True, class_weights={i: 1.0 for i in class_ids})),
        ])


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
    ).with_id(f"{gate_id}_baseline_resolver")


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    input_config, output_config = example_gen_input(config)
    example_gen = tfx.components.CsvExampleGen(
        input_base=config.data_root, input_config=input_config, output_config=output_config)

    # Without spans, or with a window of one, everything trains on what ExampleGen just ingested. With a
    # window, Transform and Trainer read the last `spans_window` spans recorded in ML Metadata.
    training_examples = example_gen.outputs["examples"]
    window = []
    if config.use_spans and config.spans_window > 1:
        examples_window = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
            config={"range_config": tfx.proto.RangeConfig(
                rolling_range=tfx.proto.RollingRange(num_spans=config.spans_window))},
            examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples,
                                     producer_component_id=example_gen.id),
        ).with_id("span_window_resolver")
        examples_window.add_upstream_node(example_gen)
        training_examples = examples_window.outputs["examples"]
        window = [examples_window]

    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])

    # The inferred schema is always computed, to compare with the curated one (or to stand in for it
    # when a user's data has no curated schema yet).
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    components: List = [example_gen, *window, statistics_gen, schema_gen]
    if config.schema_file:
        curated = tfx.components.ImportSchemaGen(schema_file=config.schema_file)
        components.append(curated)
        schema = curated.outputs["schema"]
    else:
        schema = schema_gen.outputs["schema"]

    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema)
    data_gate_id, text_gate_id = "DataValidationGate", "TextValidationGate"
    data_baseline = last_accepted_statistics(data_gate_id, config)
    drift_validator = DriftValidator(statistics=statistics_gen.outputs["statistics"], schema=schema,
                                     baseline_statistics=data_baseline.outputs["statistics"])
    data_gate = DataValidationGate(
        anomalies=example_validator.outputs["anomalies"], more_anomalies=drift_validator.outputs["anomalies"],
        statistics=statistics_gen.outputs["statistics"]).with_id(data_gate_id)

    code_version = code_fingerprint()
    transform_settings = features.TransformSettings(
        text_key=config.text_key, label_key=config.label_key, vocab_file=config.vocab_file,
        lower_case=config.lower_case, max_seq_length=config.max_seq_length,
        vocab_mode=config.vocab_mode, learned_vocab_size=config.learned_vocab_size)
    transform = tfx.components.Transform(
        examples=training_examples,
        schema=schema,
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={**transform_settings.to_custom_config(), "code_version": code_version})
    transform.add_upstream_node(data_gate)  # nothing is transformed (or trained) when the data gate fails

    text_baseline = last_accepted_statistics(text_gate_id, config)
    text_statistics_gen = text_stats.TextStatisticsGen(
        examples=transform.outputs["transformed_examples"], baseline_statistics=text_baseline.outputs["statistics"],
        text_key=config.text_key, max_seq_length=config.max_seq_length,
        checks=json.dumps(text_checks.load_checks(config.text_checks_file), sort_keys=True))
    text_gate = DataValidationGate(
        anomalies=text_statistics_gen.outputs["anomalies"],
        statistics=text_statistics_gen.outputs["statistics"]).with_id(text_gate_id)

    # The model in service: the Evaluator's baseline, and the Trainer's starting point with warm_start.
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")

    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={**config.trainer_custom_config(), "code_version": code_version},
        # The model in service, to start from (--warm-start).
        base_model=model_resolver.outputs["model"] if config.warm_start else None)
    trainer.add_upstream_node(text_gate)  # nothing is trained when the text checks fail

    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        example_splits=["eval"],
        eval_config=make_eval_config(config))

    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
            base_directory=os.path.join(config.serving_dir, config.model_name))),
        # Copies into a hidden staging folder, then renames the version folder into place (components/pusher.py).
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor))

    components += [example_validator, data_baseline, drift_validator, data_gate, transform, text_baseline,
                   text_statistics_gen, text_gate, model_resolver, trainer, evaluator, pusher]
    metadata = (tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
                if config.metadata_path else None)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(config.beam_pipeline_args))
