"""The TFX pipeline as a pure function of a `PipelineConfig`; it knows nothing about the runner.

create_pipeline() reads like the diagram, one builder per stage:
  data_validation.py  ExampleGen -> StatisticsGen -> schema -> ExampleValidator + DriftValidator -> DataValidationGate
  preprocessing.py    Transform (in-graph WordPiece) -> TextStatisticsGen -> TextValidationGate [-> SchemaFreezer]
  training.py         [Pretrainer (masked-LM stage)] -> Trainer (BERT) -> [Distiller (a smaller student)]
  release.py          ServingCheck -> [InfraValidator] -> Evaluator -> ModelCardWriter -> Pusher [-> RunReport]
With --serving-logs, serving_logs.py reads the traffic and compares it beside stage 1 (ServingLogsGen ->
ServingSkewCheck -> ServingLogsCommit); with --retrain-if, retrain.py's RetrainDecision follows the checks and the
stages after stage 1 run only under its condition.
What a run reads from earlier runs (the model in service, the statistics each gate last accepted) comes from one
BaselineLookup step (baselines.py), never from the cache (nodes.NEVER_CACHED, local_ir below). Node ids are in
nodes.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tfx import v1 as tfx

from pipeline.dag.config import PipelineConfig
from pipeline.dag.data_validation import data_validation
from pipeline.dag.preprocessing import preprocessing
from pipeline.dag.release import release
from pipeline.dag.retrain import only_if_training, retrain_decision
from pipeline.dag.serving_logs import serving_logs
from pipeline.dag.training import training

COMPONENTS_DIR = Path(__file__).resolve().parents[2] / "components"


def code_fingerprint(root: Path = COMPONENTS_DIR) -> str:
    """A digest of the user code under components/ (every sub-package, and its data: the serving op list). It goes
    into the Transform, Trainer and ServingCheck exec properties so TFX's cache is invalidated when that code changes
    (module paths alone carry no version). Paths are hashed relative to `root`, so a moved file changes it too."""
    digest = hashlib.sha256()
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.json")]):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    """The pipeline of `config`: the four stages in order, each gated by the one before."""
    code_version = code_fingerprint()
    data = data_validation(config)
    traffic = serving_logs(config, data.baselines)  # --serving-logs: what the model in service was asked lately
    decision = retrain_decision(config, data, traffic)  # --retrain-if: whether the steps after the checks run
    with only_if_training(decision):
        text = preprocessing(config, data, code_version)
        train = training(config, data, text, code_version)
        released = release(config, data, text, train, code_version, {
            **({"serving_skew": traffic.skew_check.outputs["skew"]} if traffic else {}),
            **({"retrain_decision": decision.outputs["decision"]} if decision else {})})
    metadata = (tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
                if config.metadata_path else None)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[*data.nodes, *(traffic.nodes if traffic else []), *([decision] if decision else []),
                    *text.nodes, *train.nodes, *released],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(config.beam_pipeline_args))


def local_ir(pipeline: tfx.dsl.Pipeline):
    """`pipeline` compiled for TFX's LocalDagRunner (`run_with_ir`), with TFX's cache off for the steps of
    nodes.NEVER_CACHED. TFX has no per-node cache switch (its compiler copies the pipeline's setting to every node),
    so the compiled IR is changed; everything else is what LocalDagRunner.run would compile."""
    from tfx.dsl.compiler import compiler

    from pipeline.dag.nodes import NEVER_CACHED

    for component in pipeline.components:
        if hasattr(component, "_resolve_pip_dependencies"):  # as TFX's runner does before compiling
            component._resolve_pip_dependencies(pipeline.pipeline_info.pipeline_root)  # noqa: SLF001
    ir = compiler.Compiler().compile(pipeline)
    for node in ir.nodes:
        if node.pipeline_node.node_info.id in NEVER_CACHED:
            node.pipeline_node.execution_options.caching_options.enable_cache = False
    return ir
