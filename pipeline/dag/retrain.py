"""--retrain-if in the DAG: RetrainDecision after the checks, and a TFX Cond around everything after them (Transform
to Pusher), so a run whose data is the one last accepted and whose traffic is not skewed ends after the checks
(components/validation/retrain_decision.py). TFX compiles the Cond for both runners: the local runner skips the
steps, and Kubeflow's spec carries it as each step's trigger condition."""

from __future__ import annotations

import contextlib
from typing import Optional

from tfx import v1 as tfx

from components.validation.retrain_decision import TRAIN_PROPERTY, RetrainDecision
from pipeline.dag.config import PipelineConfig
from pipeline.dag.nodes import RETRAIN_DECISION


def retrain_decision(config: PipelineConfig, data, traffic) -> Optional[object]:
    """The decision node of `config`, None without --retrain-if. `data`: the data stage; `traffic`: the serving-logs
    stage (None without --serving-logs)."""
    if not config.serving.conditions:
        return None
    extra = {"skew": traffic.skew_check.outputs["skew"]} if traffic is not None else {}
    return RetrainDecision(statistics=data.statistics_gen.outputs["statistics"],
                           data_statistics=data.baselines.outputs["data_statistics"],
                           baseline_model=data.baselines.outputs["model"],
                           conditions=",".join(config.serving.conditions), **extra).with_id(RETRAIN_DECISION)


def only_if_training(decision):
    """The context in which the steps after the checks are built: under the decision's condition, or plain."""
    if decision is None:
        return contextlib.nullcontext()
    return tfx.dsl.Cond(decision.outputs["decision"].future()[0].custom_property(TRAIN_PROPERTY) == 1)
