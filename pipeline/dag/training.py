"""Stage 3, the model: [Pretrainer (the masked-LM stage, with --pretrain-epochs)] -> Trainer (BERT), starting from the
checkpoint, the Pretrainer's adapted encoder, or the model in service (--warm-start) -> [Distiller (a smaller
student of the Trainer's model, with --student-layers), which is then the candidate the release stage sees]."""

from __future__ import annotations

import dataclasses
from typing import Any, List

from tfx import v1 as tfx

from components.module_files.trainer_executor import VertexTrainer
from components.settings.data import component_config
from pipeline.dag.config import DISTILL_RUN_FN, PRETRAIN_RUN_FN, RUN_FN, PipelineConfig, VertexTraining
from pipeline.dag.data_validation import DataStage
from pipeline.dag.nodes import DISTILLER, PRETRAINER, TRAINER
from pipeline.dag.preprocessing import PreprocessingStage


@dataclasses.dataclass(frozen=True)
class TrainingStage:
    """The training stage's nodes (in order) and what the release stage reads from it."""

    nodes: List[Any]
    model_in_service: Any  # BaselineLookup's copy of the served version (nothing on a first run)
    trainer: Any
    candidate: Any  # the node whose model is checked, evaluated and pushed: the Distiller's student, else the Trainer


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


def training(config: PipelineConfig, data: DataStage, text: PreprocessingStage, code_version: str) -> TrainingStage:
    """Trains the classifier once the text checks passed, after the optional masked-LM stage."""
    transformed = text.transform.outputs["transformed_examples"]
    graph = text.transform.outputs["transform_graph"]
    model_in_service = data.baselines.outputs["model"]

    # The masked-LM stage: a second Trainer whose run_fn adapts the encoder to the training split's texts (and
    # --unlabeled-data's); its Model artifact is the fine-tuning Trainer's starting checkpoint.
    pretrainer = []
    if config.pretrainer.enabled:
        pretrainer = [tfx.components.Trainer(
            run_fn=PRETRAIN_RUN_FN, examples=transformed, transform_graph=graph, schema=data.schema,
            train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
            eval_args=tfx.proto.EvalArgs(splits=["eval"]),  # measured on, never trained on
            custom_config=component_config(config.pretrainer, config.data, code_version)).with_id(PRETRAINER)]
        pretrainer[0].add_upstream_node(text.text_gate)
    if config.trainer.warm_start:
        start_from = model_in_service
    else:
        start_from = pretrainer[0].outputs["model"] if pretrainer else None

    # One process in the Trainer step, or (Kubeflow, --trainer-workers N) a multi-worker Vertex AI Training job that
    # the step launches and waits for: TFX's Google Cloud AI Platform Trainer, the same run_fn in every replica.
    trainer_class, vertex_config = tfx.components.Trainer, {}
    if config.vertex_training is not None:
        trainer_class = VertexTrainer  # TFX's, whose non-chief replicas need not write the model
        vertex_config = vertex_training_config(config.vertex_training)
    trainer = trainer_class(
        run_fn=RUN_FN, examples=transformed, transform_graph=graph, schema=data.schema,
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={**component_config(config.trainer, config.data, code_version), **vertex_config},
        base_model=start_from).with_id(TRAINER)
    trainer.add_upstream_node(text.text_gate)  # nothing is trained when the text checks fail

    # The distillation stage: a third Trainer whose run_fn trains a student of --student-layers layers from the
    # Trainer's model (its base_model, the teacher) on the same examples; the teacher is never pushed then.
    distiller = []
    if config.distiller.enabled:
        distiller = [tfx.components.Trainer(
            run_fn=DISTILL_RUN_FN, examples=transformed, transform_graph=graph, schema=data.schema,
            train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
            eval_args=tfx.proto.EvalArgs(splits=["eval"]),
            custom_config=config.distiller.to_custom_config(code_version),
            base_model=trainer.outputs["model"]).with_id(DISTILLER)]
    return TrainingStage(nodes=[*pretrainer, trainer, *distiller], model_in_service=model_in_service,
                         trainer=trainer, candidate=distiller[0] if distiller else trainer)
