"""The Trainer's executor for multi-worker jobs: TFX's, except that a replica other than the chief succeeds without
writing the model.

TFX's GenericExecutor fails a Trainer whose run_fn left no serving model. Under MultiWorkerMirroredStrategy only the
chief keeps the model (components/model/distribution.py: the other replicas write to temporary folders), so on every
other replica of a Vertex AI Training job that check would fail the replica, and with it the job, depending only on
whether the chief happened to finish writing first. Here a non-chief replica runs run_fn and returns; the chief is
checked as before."""

from __future__ import annotations

from typing import Any, Dict, List

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.components.util import udf_utils
from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform.trainer import component as vertex_component
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor

from components.model import distribution


class TrainerExecutor(trainer_executor.GenericExecutor):
    """TFX's Trainer executor; on a non-chief replica (TF_CONFIG), run_fn alone, without the model-written check."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        if distribution.is_chief():
            super().Do(input_dict, output_dict, exec_properties)
            return
        fn_args = self._GetFnArgs(input_dict, output_dict, exec_properties)
        udf_utils.get_fn(exec_properties, "run_fn")(fn_args)


class VertexTrainerExecutor(vertex_executor.GenericExecutor):
    """TFX's Vertex AI Training launcher, whose replicas run TrainerExecutor."""

    def _GetExecutorClass(self):
        return TrainerExecutor


class VertexTrainer(vertex_component.Trainer):
    """TFX's Google Cloud AI Platform (Vertex AI Training) Trainer with VertexTrainerExecutor."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(VertexTrainerExecutor)
