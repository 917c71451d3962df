"""What a run compares with, from earlier runs: one BaselineLookup step (components/baselines/lookup.py) that reads
the model in service from the push destination and the statistics each gate last accepted from the baselines folder
under the pipeline root, where the gates publish them. No resolver node and no ML Metadata query: the same step runs
locally, on open-source Kubeflow Pipelines and on Vertex AI."""

from __future__ import annotations

import os
import posixpath

from components.baselines.lookup import BaselineLookup
from pipeline.dag.config import PipelineConfig
from pipeline.dag.nodes import BASELINE_LOOKUP, DATA_GATE, TEXT_GATE

BASELINES_DIR = "baselines"  # under the pipeline root: one folder of versions per gate


def baselines_dir(config: PipelineConfig, gate_id: str) -> str:
    """Where gate `gate_id` publishes what it accepts: relative to the pipeline root on a local run (so a moved or
    copied root keeps its cache, as the frozen schema does), the full location on Kubeflow."""
    if config.orchestrator == "local":
        return os.path.join(BASELINES_DIR, gate_id)
    return posixpath.join(config.pipeline_root, BASELINES_DIR, gate_id)


def serving_base(config: PipelineConfig) -> str:
    """The push destination: the folder of versions TF Serving serves (the Pusher's base_directory)."""
    return os.path.join(config.serving_dir, config.model_name)


def baseline_lookup(config: PipelineConfig):
    """The step that hands the run the model in service (under the model config file's policy, when there is one)
    and the last accepted statistics of both gates. Never
    cached (nodes.NEVER_CACHED): its inputs do not change when what is in service does."""
    return BaselineLookup(serving_base=serving_base(config), data_baselines=baselines_dir(config, DATA_GATE),
                          text_baselines=baselines_dir(config, TEXT_GATE), model_name=config.model_name,
                          model_config_file=config.model_config_file).with_id(BASELINE_LOOKUP)
