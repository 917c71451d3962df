"""Stage 4, the release of the candidate (the Trainer's model, or the Distiller's student): ServingCheck (servable by
the stock TF Serving image) -> [InfraValidator] -> Evaluator (TFMA, against the model in service) -> ModelCardWriter
-> Pusher (only when blessed by both) -> [RunReport, on Kubeflow]."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, List, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.release import evaluator as class_aware_evaluator
from components.release.eval_config import make_eval_config
from components.release.model_card import ModelCardWriter
from components.release.pusher import AtomicPusherExecutor
from components.release.run_report import RunReport
from components.release.serving_check import ServingCheck
from components.settings.base import to_custom_config
from pipeline.dag.baselines import serving_base
from pipeline.dag.config import PipelineConfig
from pipeline.dag.data_validation import DataStage
from pipeline.dag.nodes import EVALUATOR, INFRA_VALIDATOR, MODEL_CARD, PUSHER, RUN_REPORT, SERVING_CHECK
from pipeline.dag.preprocessing import PreprocessingStage
from pipeline.dag.training import TrainingStage


def infra_validator(config: PipelineConfig, candidate, example_gen, serving_check):
    """TFX's InfraValidator with the local Docker daemon: the pinned stock tensorflow/serving image (the one
    components/release/tf_serving_ops.json describes and k8s/ deploys) loads the candidate in a container and answers
    Classify requests on `classification` and Predict requests on `serving_examples`, built from eval examples (the
    client and requests tests/e2e/test_serving_clients.py sends to serve.py). It runs after the project's
    ServingCheck (which stops a model with missing ops before a container is started)."""
    from components.module_files.serving_signatures import CLASSIFY_SIGNATURE
    from components.release.serving_ops import load_serving_ops  # deferred: reads the op list file

    image = load_serving_ops().image
    repository, tag = image.rsplit(":", 1)
    validator = tfx.components.InfraValidator(
        model=candidate.outputs["model"],
        examples=example_gen.outputs["examples"],
        serving_spec=tfx.proto.ServingSpec(
            tensorflow_serving=tfx.proto.TensorFlowServing(image_name=repository, tags=[tag]),
            local_docker=tfx.proto.LocalDockerConfig(),
            model_name=config.model_name),
        request_spec=tfx.proto.RequestSpec(
            tensorflow_serving=tfx.proto.TensorFlowServingRequestSpec(signature_names=[
                CLASSIFY_SIGNATURE, "serving_examples"]),
            split_name="eval", num_examples=8),
    ).with_id(INFRA_VALIDATOR)
    validator.add_upstream_node(serving_check)
    return validator


def evaluator(config: PipelineConfig, data: DataStage, train: TrainingStage, after) -> Any:
    """TFX's Evaluator, except that a candidate whose classes differ from the model in service's is not compared with
    it (components/release/evaluator.py)."""
    executor = (class_aware_evaluator.AcceptNewClassesExecutor if config.evaluator.accept_new_classes
                else class_aware_evaluator.Executor)
    node = tfx.components.Evaluator(
        examples=data.example_gen.outputs["examples"], model=train.candidate.outputs["model"],
        baseline_model=train.model_in_service, example_splits=["eval"],
        eval_config=make_eval_config(config.evaluator, config.tasks)).with_id(EVALUATOR)
    node.executor_spec = executor_spec.BeamExecutorSpec(executor)  # the Evaluator takes no executor argument
    node.add_upstream_node(after)
    return node


def run_report(config: PipelineConfig, data: DataStage, text: PreprocessingStage, train: TrainingStage,
               evaluation, card, pusher, serving: Optional[dict] = None) -> Any:
    """Kubeflow has no local ML Metadata store to draw the run report from after the run: a step draws it, after the
    Pusher (whose output says whether and where the model was pushed). `serving`: with --serving-logs, the traffic's
    comparison (`serving_skew`) and the --retrain-if decision (`retrain_decision`), as output channels."""
    return RunReport(**(serving or {}),
        statistics=data.statistics_gen.outputs["statistics"],
        anomalies=data.example_validator.outputs["anomalies"],
        drift_anomalies=data.drift_validator.outputs["anomalies"],
        text_statistics=text.text_statistics_gen.outputs["statistics"],
        text_anomalies=text.text_statistics_gen.outputs["anomalies"],
        transformed_examples=text.transform.outputs["transformed_examples"], model=train.candidate.outputs["model"],
        evaluation=evaluation.outputs["evaluation"], blessing=evaluation.outputs["blessing"],
        card_model=card.outputs["card_model"], baseline_statistics=data.baselines.outputs["data_statistics"],
        baseline_model=train.model_in_service, pushed_model=pusher.outputs["pushed_model"],
        context=json.dumps({"pipeline_name": config.pipeline_name, "pipeline_root": config.pipeline_root,
                            "evaluator": to_custom_config(config.evaluator),
                            "setup": dataclasses.asdict(config.run_setup())}, sort_keys=True)).with_id(RUN_REPORT)


def release(config: PipelineConfig, data: DataStage, text: PreprocessingStage, train: TrainingStage,
            code_version: str, serving: Optional[dict] = None) -> List[Any]:
    """The release stage's nodes, in order: a model is pushed only when it is servable and blessed."""
    model = train.candidate.outputs["model"]
    # The model must load and answer its warm-up requests with only the ops of the stock TF Serving image before it
    # is evaluated (a model that fails stops the run: it is never blessed, so never the next run's baseline).
    serving_check = ServingCheck(model=model, code_version=code_version).with_id(SERVING_CHECK)
    infra = ([infra_validator(config, train.candidate, data.example_gen, serving_check)] if config.infra_validator
             else [])
    evaluation = evaluator(config, data, train, after=infra[0] if infra else serving_check)

    # The model as pushed: the candidate's, with its model card in assets.extra/ (components/release/model_card.py).
    card = ModelCardWriter(
        model=model, evaluation=evaluation.outputs["evaluation"], blessing=evaluation.outputs["blessing"],
        examples=data.example_gen.outputs["examples"], text_key=config.text_key, label_key=config.label_key,
        facts=json.dumps({"dataset": config.dataset, "data_root": config.data_root,
                          "pipeline_name": config.pipeline_name, "model_name": config.model_name},
                         sort_keys=True)).with_id(MODEL_CARD)
    pusher = tfx.components.Pusher(
        model=card.outputs["card_model"], model_blessing=evaluation.outputs["blessing"],
        infra_blessing=(infra[0] if infra else serving_check).outputs["blessing"],
        push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
            base_directory=serving_base(config))),  # where BaselineLookup finds the model in service
        # Copies into a hidden staging folder, then renames the version folder into place
        # (components/release/pusher.py).
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor)).with_id(PUSHER)
    report = [] if config.orchestrator == "local" else [run_report(config, data, text, train, evaluation, card,
                                                                   pusher, serving)]
    return [serving_check, *infra, evaluation, card, pusher, *report]
