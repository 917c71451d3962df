"""components/module_files/trainer_executor.py: on a multi-worker job's non-chief replica the Trainer succeeds without
the model (only the chief keeps it); on the chief, and in one process, TFX's check that run_fn wrote the model still
holds.
"""

import json
import os

import pytest
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components.module_files.trainer_executor import TrainerExecutor, VertexTrainer, VertexTrainerExecutor

CALLS = []


def recording_run_fn(fn_args):
    """A run_fn that writes nothing: what a non-chief replica leaves behind."""
    CALLS.append((fn_args.serving_model_dir, fn_args.custom_config))


def _artifacts(tmp_path):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(tmp_path / "graph")
    model, run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, run.uri = str(tmp_path / "model"), str(tmp_path / "run")
    exec_properties = {
        "run_fn": f"{__name__}.recording_run_fn",
        "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=["train"])),
        "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=["eval"])),
        "custom_config": json.dumps({"epochs": 1}),
    }
    return {"examples": [examples], "transform_graph": [graph]}, {"model": [model], "model_run": [run]}, \
        exec_properties


def _tf_config(task_type):
    return json.dumps({"cluster": {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]},
                       "task": {"type": task_type, "index": 0}})


def test_a_worker_replica_succeeds_without_writing_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _tf_config("worker"))
    CALLS.clear()
    TrainerExecutor().Do(*_artifacts(tmp_path))
    assert CALLS == [(os.path.join(str(tmp_path / "model"), "Format-Serving"), {"epochs": 1})]
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("tf_config", [None, "chief"])
def test_the_chief_and_a_single_process_must_write_it(tmp_path, monkeypatch, tf_config):
    if tf_config:
        monkeypatch.setenv("TF_CONFIG", _tf_config(tf_config))
    else:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    CALLS.clear()
    with pytest.raises(RuntimeError, match="run_fn failed to generate model"):
        TrainerExecutor().Do(*_artifacts(tmp_path))
    assert len(CALLS) == 1


def test_the_vertex_trainer_runs_its_replicas_with_this_executor():
    assert VertexTrainer.EXECUTOR_SPEC.executor_class is VertexTrainerExecutor
    assert VertexTrainerExecutor()._GetExecutorClass() is TrainerExecutor
