"""A local run read back from its ML Metadata store: the executions of its latest run by node id, their artifacts,
and the `RunArtifacts` the run summary is built from (components/release/run_summary.py).

The Kubeflow RunReport step is handed the same artifacts as its inputs (components/release/run_report.py).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from components.release.run_summary import RunArtifacts
from pipeline.dag import nodes
from pipeline.dag.config import PipelineConfig


def open_store(metadata_path: str) -> mlmd.MetadataStore:
    """The run's ML Metadata store (SQLite), read-only."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return mlmd.MetadataStore(config)


_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


class RunRecord:
    """The executions of the latest pipeline run and their input/output artifacts, by node id."""

    def __init__(self, metadata_path: str, pipeline_name: str):
        self.store = open_store(metadata_path)
        runs = self.store.get_contexts_by_type("pipeline_run")
        runs = [c for c in runs if any(
            p.name == pipeline_name for p in self.store.get_parent_contexts_by_context(c.id))] or runs
        if not runs:
            raise LookupError(f"no pipeline run recorded in {metadata_path}")
        self.run = max(runs, key=lambda c: c.create_time_since_epoch)
        self.nodes: Dict[str, metadata_store_pb2.Execution] = {}
        prefix = f"{pipeline_name}."
        for execution in self.store.get_executions_by_context(self.run.id):
            for ctx in self.store.get_contexts_by_execution(execution.id):
                if ctx.name.startswith(prefix) and ctx.type == "node" or (
                        ctx.name.startswith(prefix) and self._is_node_context(ctx)):
                    node_id = ctx.name[len(prefix):]
                    previous = self.nodes.get(node_id)
                    if previous is None or execution.id > previous.id:
                        self.nodes[node_id] = execution

    def _is_node_context(self, ctx) -> bool:
        return self.store.get_context_types_by_id([ctx.type_id])[0].name == "node"

    def state(self, node_id: str) -> Optional[str]:
        execution = self.nodes.get(node_id)
        return _STATES.get(execution.last_known_state) if execution else None

    def seconds(self) -> Dict[str, dict]:
        result = {}
        for node_id, e in sorted(self.nodes.items(), key=lambda kv: kv[1].create_time_since_epoch):
            result[node_id] = {"state": _STATES.get(e.last_known_state, "UNKNOWN"),
                               "seconds": round((e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000, 1)}
        return result

    def artifacts(self, node_id: str, key: str, output: bool = True) -> List[metadata_store_pb2.Artifact]:
        execution = self.nodes.get(node_id)
        if execution is None:
            return []
        kind = metadata_store_pb2.Event.OUTPUT if output else metadata_store_pb2.Event.INPUT
        ids = []
        for event in self.store.get_events_by_execution_ids([execution.id]):
            if event.type in (kind, metadata_store_pb2.Event.DECLARED_OUTPUT if output else kind) and any(
                    s.HasField("key") and s.key == key for s in event.path.steps):
                ids.append(event.artifact_id)
        return list(self.store.get_artifacts_by_id(ids)) if ids else []

    def artifact_uri(self, node_id: str, key: str, output: bool = True) -> Optional[str]:
        found = self.artifacts(node_id, key, output)
        return found[0].uri if found else None


def execution_state(metadata_path: str, execution_id: int) -> str:
    execution = open_store(metadata_path).get_executions_by_id([execution_id])
    return _STATES.get(execution[0].last_known_state, "UNKNOWN") if execution else "UNKNOWN"


def _span(artifact) -> int:
    """TFX records the span as a property or a custom property."""
    if "span" in artifact.properties:
        return artifact.properties["span"].int_value
    return artifact.custom_properties["span"].int_value


def run_artifacts(record: RunRecord, config: PipelineConfig) -> RunArtifacts:
    """The run's artifacts as the summary reads them, found in ML Metadata."""
    from components.baselines import lookup
    from components.validation.frozen_files import frozen_schema_file

    blessing = record.artifacts(nodes.EVALUATOR, "blessing")
    # The model in service it was compared with: the served version folder BaselineLookup copied.
    baseline = record.artifacts(nodes.EVALUATOR, "baseline_model", output=False)
    pushed = record.artifacts(nodes.PUSHER, "pushed_model")
    pushed = pushed[0].custom_properties if pushed else None
    ingested = record.artifacts(nodes.EXAMPLE_GEN, "examples")
    spans = config.use_spans and ingested
    return RunArtifacts(
        statistics=record.artifact_uri(nodes.STATISTICS_GEN, "statistics"),
        anomalies=tuple((node, a.uri, a.properties["split_names"].string_value)
                        for node in nodes.VALIDATORS for a in record.artifacts(node, "anomalies")),
        text_statistics=record.artifact_uri(nodes.TEXT_STATISTICS_GEN, "statistics"),
        serving_check=record.artifact_uri(nodes.SERVING_CHECK, "blessing"),
        evaluation=record.artifact_uri(nodes.EVALUATOR, "evaluation"),
        blessed=blessing[0].custom_properties["blessed"].int_value == 1 if blessing else None,
        baseline_model=lookup.baseline_folder(baseline[0]) if baseline else None,
        # The model the release stage judged: the Distiller's student when there is one, else the Trainer's.
        model=record.artifact_uri(nodes.DISTILLER, "model") or record.artifact_uri(nodes.TRAINER, "model"),
        card_model=record.artifact_uri(nodes.MODEL_CARD, "card_model"),
        pushed_dir=(pushed["pushed_destination"].string_value
                    if pushed is not None and pushed["pushed"].int_value == 1 else None),
        examples=record.artifact_uri(nodes.EXAMPLE_GEN, "examples"),
        ingested_span=_span(ingested[0]) if spans else None,
        training_spans=sorted(_span(a) for a in record.artifacts(nodes.TRANSFORM, "examples", output=False))
        if spans else None,
        frozen_schema=(frozen_schema_file(config.pipeline_root)
                       if record.artifacts(nodes.SCHEMA_FREEZER, "frozen_schema") else None),
        serving_skew=record.artifact_uri(nodes.SERVING_SKEW_CHECK, "skew"),
        retrain_decision=record.artifact_uri(nodes.RETRAIN_DECISION, "decision"))
