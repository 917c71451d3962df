"""The TFX pipeline as a pure function of a `PipelineConfig`; it knows nothing about the runner.

ExampleGen -> StatisticsGen -> ImportSchemaGen (curated) / SchemaGen (inferred, for comparison)
-> ExampleValidator + DriftValidator (against the last accepted statistics) -> DataValidationGate
-> Transform (in-graph WordPiece) -> TextStatisticsGen -> TextValidationGate -> [Pretrainer (masked-LM stage, with
--pretrain-epochs)] -> Trainer (BERT)
-> ServingCheck (servable by the stock TF Serving image) -> Evaluator (TFMA, against the latest blessed model)
-> ModelCardWriter (the model with its card) -> Pusher (only when blessed, by both).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from pathlib import Path
from typing import List

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.validation import text_checks, text_stats
from components.release import evaluator as class_aware_evaluator
from components.validation.drift import DriftValidator
from components.validation.frozen_files import FROZEN_DIR
from components.validation.frozen_schema import SchemaCurator, SchemaFreezer
from components.validation.gates import DataValidationGate
from components.release.model_card import ModelCardWriter
from components.release.pusher import AtomicPusherExecutor
from components.release.run_report import RunReport
from components.settings.base import to_custom_config
from components.modules.trainer_executor import VertexTrainer
from components.release.serving_check import ServingCheck
from pipeline.dag.config import HASH_BUCKETS, PRETRAIN_RUN_FN, PREPROCESSING_FN, RUN_FN, SPAN_FOLDER, PipelineConfig, VertexTraining
from components.release.eval_config import make_eval_config

COMPONENTS_DIR = Path(__file__).resolve().parents[2] / "components"

# The node ids (pipeline/dag/nodes.py), re-exported: pipeline.dag.pipeline.TRAINER is nodes.TRAINER.
from pipeline.dag.nodes import *  # noqa: E402,F401,F403


def frozen_schema_dir(config: PipelineConfig) -> str:
    """Where a pipeline without a curated schema keeps the one it froze (components/validation/frozen_schema.py): relative to the
    pipeline root on a local run (so a moved or copied root keeps its cache), the full location on Kubeflow."""
    return FROZEN_DIR if config.orchestrator == "local" else posixpath.join(config.pipeline_root, FROZEN_DIR)


def fix_hint(config: PipelineConfig) -> str:
    """What a refusal tells the user to change when their data changed legitimately: their own files, or a flag."""
    if config.schema_source == "none":
        return ("this is the pipeline's first accepted-data check, against the schema inferred from this data and "
                "the default thresholds; pass --schema FILE (a schema.pbtxt, with a text_checks.toml beside it) to "
                "set your own")
    schema = config.schema_origin or config.schema_file
    return f"edit {schema} or the text_checks.toml beside it (see the README)"


def baseline_resolver_id(gate_id: str) -> str:
    """The node that resolves the statistics `gate_id` last accepted (the drift checks' baseline)."""
    return f"{gate_id}_baseline_resolver"


def code_fingerprint() -> str:
    """A digest of the user code under components/ (and its data, the serving op list). It goes into the Transform,
    Trainer and ServingCheck exec properties so TFX's cache is invalidated when that code changes (module paths
    alone carry no version)."""
    digest = hashlib.sha256()
    # Every sub-package, by path relative to components/: a moved file changes the digest too.
    for path in sorted([*COMPONENTS_DIR.rglob("*.py"), *COMPONENTS_DIR.rglob("*.json")]):
        digest.update(path.relative_to(COMPONENTS_DIR).as_posix().encode())
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


def infra_validator(config: PipelineConfig, trainer, example_gen, serving_check):
    """TFX's InfraValidator with the local Docker daemon: the pinned stock tensorflow/serving image (the one
    components/release/tf_serving_ops.json describes and k8s/ deploys) loads the candidate in a container and answers
    `serving_examples` requests built from eval examples. It runs after the project's ServingCheck (which stops a
    model with missing ops before a container is started)."""
    from components.release.serving_ops import load_serving_ops

    image = load_serving_ops().image
    repository, tag = image.rsplit(":", 1)
    validator = tfx.components.InfraValidator(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        serving_spec=tfx.proto.ServingSpec(
            tensorflow_serving=tfx.proto.TensorFlowServing(image_name=repository, tags=[tag]),
            local_docker=tfx.proto.LocalDockerConfig(),
            model_name=config.model_name),
        request_spec=tfx.proto.RequestSpec(
            tensorflow_serving=tfx.proto.TensorFlowServingRequestSpec(signature_names=["serving_examples"]),
            split_name="eval", num_examples=8),
    ).with_id(INFRA_VALIDATOR)
    validator.add_upstream_node(serving_check)
    return validator


def vertex_training_config(vertex: VertexTraining) -> dict:
    """The keys TFX's Google Cloud AI Platform Trainer reads from the Trainer's custom_config (all prefixed
    `ai_platform_`, which TrainerSettings ignores): Vertex AI, its region, and the CustomJob: a chief pool of one
    replica and a worker pool of the others, each running the pipeline's image (the executor sets the command)."""
    extension = tfx.extensions.google_cloud_ai_platform

    def pool(replicas: int) -> dict:
        return {"machine_spec": {"machine_type": vertex.machine_type}, "replica_count": replicas,
                "container_spec": {"image_uri": vertex.image}}

    return {extension.ENABLE_VERTEX_KEY: True, extension.VERTEX_REGION_KEY: vertex.region,
            extension.TRAINING_ARGS_KEY: {"project": vertex.project,
                                          "job_spec": {"worker_pool_specs": [pool(1), pool(vertex.workers - 1)]}}}


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    input_config, output_config = example_gen_input(config)
    example_gen = tfx.components.CsvExampleGen(
        input_base=config.data_root, input_config=input_config, output_config=output_config).with_id(EXAMPLE_GEN)

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
        ).with_id(SPAN_WINDOW)
        examples_window.add_upstream_node(example_gen)
        training_examples = examples_window.outputs["examples"]
        window = [examples_window]

    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id(STATISTICS_GEN)

    # The inferred schema is always computed, to compare with the curated one (or to become it when the data has
    # no curated schema yet: curated by SchemaCurator, frozen by SchemaFreezer once the data passed the checks).
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"],
                                          infer_feature_shape=True).with_id(SCHEMA_GEN)
    components: List = [example_gen, *window, statistics_gen, schema_gen]
    if config.schema_file:
        curated = tfx.components.ImportSchemaGen(schema_file=config.schema_file).with_id(IMPORT_SCHEMA_GEN)
    else:
        curated = SchemaCurator(inferred_schema=schema_gen.outputs["schema"], text_key=config.text_key,
                                label_key=config.label_key, label_names=json.dumps(list(config.label_names)),
                                frozen_dir=frozen_schema_dir(config), frozen_edit=config.frozen_edit
                                ).with_id(SCHEMA_CURATOR)
    components.append(curated)
    schema = curated.outputs["schema"]

    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema).with_id(EXAMPLE_VALIDATOR)
    data_baseline = last_accepted_statistics(DATA_GATE, config)
    drift_validator = DriftValidator(statistics=statistics_gen.outputs["statistics"], schema=schema,
                                     baseline_statistics=data_baseline.outputs["statistics"]).with_id(DRIFT_VALIDATOR)
    data_gate = DataValidationGate(
        anomalies=example_validator.outputs["anomalies"], more_anomalies=drift_validator.outputs["anomalies"],
        statistics=statistics_gen.outputs["statistics"], fix=fix_hint(config)).with_id(DATA_GATE)

    code_version = code_fingerprint()
    transform = tfx.components.Transform(
        examples=training_examples,
        schema=schema,
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=config.transform.to_custom_config(code_version)).with_id(TRANSFORM)
    transform.add_upstream_node(data_gate)  # nothing is transformed (or trained) when the data gate fails

    text_baseline = last_accepted_statistics(TEXT_GATE, config)
    text_statistics_gen = text_stats.TextStatisticsGen(
        examples=transform.outputs["transformed_examples"], baseline_statistics=text_baseline.outputs["statistics"],
        text_key=config.text_key, max_seq_length=config.transform.max_seq_length,
        checks=json.dumps(text_checks.load_checks(config.text_checks_file), sort_keys=True)
    ).with_id(TEXT_STATISTICS_GEN)
    text_gate = DataValidationGate(
        anomalies=text_statistics_gen.outputs["anomalies"],
        statistics=text_statistics_gen.outputs["statistics"], fix=fix_hint(config)).with_id(TEXT_GATE)
    freezer = []
    if not config.schema_file:  # the first run whose data passes both gates freezes the schema it was checked with
        freezer = [SchemaFreezer(schema=schema, frozen_dir=frozen_schema_dir(config)).with_id(SCHEMA_FREEZER)]
        freezer[0].add_upstream_node(text_gate)

    # The model in service: the Evaluator's baseline, and the Trainer's starting point with warm_start.
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id(MODEL_RESOLVER)

    # The masked-LM stage (--pretrain-epochs > 0): a second Trainer whose run_fn adapts the encoder to the training
    # split's texts (and --unlabeled-data's); its Model artifact is the fine-tuning Trainer's starting checkpoint.
    pretrainer = []
    if config.pretrainer.enabled:
        pretrainer = [tfx.components.Trainer(
            run_fn=PRETRAIN_RUN_FN,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema,
            train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
            eval_args=tfx.proto.EvalArgs(splits=["eval"]),  # measured on, never trained on
            custom_config=config.pretrainer.to_custom_config(code_version)).with_id(PRETRAINER)]
        pretrainer[0].add_upstream_node(text_gate)
    if config.trainer.warm_start:
        start_from = model_resolver.outputs["model"]  # the model in service
    else:
        start_from = pretrainer[0].outputs["model"] if pretrainer else None

    # One process in the Trainer step, or (Kubeflow, --trainer-workers N) a multi-worker Vertex AI Training job that
    # the step launches and waits for: TFX's Google Cloud AI Platform Trainer, the same run_fn in every replica.
    trainer_class, vertex_config = tfx.components.Trainer, {}
    if config.vertex_training is not None:
        trainer_class = VertexTrainer  # TFX's, whose non-chief replicas need not write the model
        vertex_config = vertex_training_config(config.vertex_training)
    trainer = trainer_class(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={**config.trainer.to_custom_config(code_version), **vertex_config},
        # What to start from: the model in service (--warm-start), or the Pretrainer's adapted encoder.
        base_model=start_from).with_id(TRAINER)
    trainer.add_upstream_node(text_gate)  # nothing is trained when the text checks fail

    # The model must load and answer its warm-up requests with only the ops of the stock TF Serving image before it
    # is evaluated (a model that fails stops the run: it is never blessed, so never the next run's baseline).
    serving_check = ServingCheck(model=trainer.outputs["model"], code_version=code_version).with_id(SERVING_CHECK)
    infra = [infra_validator(config, trainer, example_gen, serving_check)] if config.infra_validator else []
    infra_blessing = (infra[0] if infra else serving_check).outputs["blessing"]

    # TFX's Evaluator, except that a candidate whose classes differ from the model in service's is not compared with
    # it (components/release/evaluator.py).
    evaluator_executor = (class_aware_evaluator.AcceptNewClassesExecutor if config.evaluator.accept_new_classes
                          else class_aware_evaluator.Executor)
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        example_splits=["eval"],
        eval_config=make_eval_config(config.evaluator, config.num_classes)).with_id(EVALUATOR)
    evaluator.executor_spec = executor_spec.BeamExecutorSpec(evaluator_executor)  # the Evaluator has no argument
    evaluator.add_upstream_node(infra[0] if infra else serving_check)

    # The model as pushed: the Trainer's, with its model card in assets.extra/ (components/release/model_card.py).
    card = ModelCardWriter(
        model=trainer.outputs["model"], evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"], examples=example_gen.outputs["examples"], text_key=config.text_key,
        label_key=config.label_key, facts=json.dumps({
            "dataset": config.dataset, "data_root": config.data_root, "pipeline_name": config.pipeline_name,
            "model_name": config.model_name}, sort_keys=True)).with_id(MODEL_CARD)

    pusher = tfx.components.Pusher(
        model=card.outputs["card_model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_blessing,
        push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
            base_directory=os.path.join(config.serving_dir, config.model_name))),
        # Copies into a hidden staging folder, then renames the version folder into place (components/release/pusher.py).
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor)).with_id(PUSHER)

    # Kubeflow has no local ML Metadata store to draw the run report from after the run: a step draws it.
    report = [] if config.orchestrator == "local" else [RunReport(
        statistics=statistics_gen.outputs["statistics"], anomalies=example_validator.outputs["anomalies"],
        drift_anomalies=drift_validator.outputs["anomalies"], text_statistics=text_statistics_gen.outputs["statistics"],
        text_anomalies=text_statistics_gen.outputs["anomalies"], transformed_examples=transform.outputs[
            "transformed_examples"], model=trainer.outputs["model"], evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"], card_model=card.outputs["card_model"],
        baseline_statistics=data_baseline.outputs["statistics"],
        context=json.dumps({
            "pipeline_name": config.pipeline_name, "label_key": config.label_key,
            "max_seq_length": config.transform.max_seq_length, "evaluator": to_custom_config(config.evaluator),
            "dataset": config.dataset, "model": config.trainer.pretrained_dir or config.trainer.model_size},
            sort_keys=True)).with_id(RUN_REPORT)]

    components += [example_validator, data_baseline, drift_validator, data_gate, transform, text_baseline,
                   text_statistics_gen, text_gate, *freezer, model_resolver, *pretrainer, trainer, serving_check, *infra, evaluator, card, pusher, *report]
    metadata = (tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
                if config.metadata_path else None)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(config.beam_pipeline_args))
