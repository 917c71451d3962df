"""What a local run did, read back from ML Metadata and the artifacts it recorded.

Used by run_local.py for the key figure of each step as it ends, the on-screen summary and `--summary-json`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from components.features import PRETRAINING_HISTORY_FILE, TRAINING_HISTORY_FILE
from components.release.model_metrics import (  # noqa: F401  (re-exported)
    classes_averaged,
    evaluator_metrics,
    headline_text,
    read_split,
    test_metrics,
)
from components.release.run_facts import anomalies_and_warnings, split_counts, validation_failures  # noqa: F401
from components.runtime import storage
from pipeline.dag import nodes
from pipeline.dag.config import PipelineConfig

ANOMALIES_REPORT = "anomalies.json"  # in the pipeline root: what stopped (or was tolerated in) the last run


def _store(metadata_path: str) -> mlmd.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return mlmd.MetadataStore(config)


_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


class RunRecord:
    """The executions of the latest pipeline run and their input/output artifacts, by node id."""

    def __init__(self, metadata_path: str, pipeline_name: str):
        self.store = _store(metadata_path)
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


def read_json(path: str):
    import tensorflow as tf

    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def write_json(path: str, summary: dict) -> None:
    storage.write_file(path, json.dumps(summary, indent=2, sort_keys=False))


# ----------------------------------------------------------------------------------------------------------------
# One step's key figure, as it ends

def execution_state(metadata_path: str, execution_id: int) -> str:
    execution = _store(metadata_path).get_executions_by_id([execution_id])
    return _STATES.get(execution[0].last_known_state, "UNKNOWN") if execution else "UNKNOWN"


def _outputs(store, execution_id: int) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    by_key: Dict[str, List[int]] = {}
    for event in store.get_events_by_execution_ids([execution_id]):
        if event.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT):
            for step in event.path.steps:
                if step.HasField("key"):
                    by_key.setdefault(step.key, []).append(event.artifact_id)
    return {key: list(store.get_artifacts_by_id(ids)) for key, ids in by_key.items()}


def _anomaly_figure(artifacts) -> str:
    from components.validation.gates import anomaly_problems, is_warning, load_anomalies

    problems = [p for a in artifacts for p in anomaly_problems(
        load_anomalies(a.uri, a.properties["split_names"].string_value))]
    errors = [p for p in problems if not is_warning(p)]
    warnings = len(problems) - len(errors)
    figure = f"{len(errors)} anomal{'y' if len(errors) == 1 else 'ies'}"
    if errors:
        figure += " (" + ", ".join(sorted({f"{p['feature']}: {p['kind']}" for p in errors})) + ")"
    return figure + (f", {warnings} warning(s)" if warnings else "")


def lookup_figure(outputs) -> str:
    """What BaselineLookup found: the served version, and the versions of the statistics the gates last accepted."""
    from components.baselines import lookup

    def version(key: str) -> str:
        found = [a for a in outputs.get(key, []) if lookup.found(a)]
        return os.path.basename(lookup.source(found[0]).rstrip("/")) if found else "none"

    return (f"model in service {version('model')}; last accepted statistics: data {version('data_statistics')}, "
            f"text {version('text_statistics')}")


def step_figure(metadata_path: str, node_id: str, execution_id: int) -> str:
    """The one figure that says how a step went: examples per split, anomalies found, blessed or not, pushed where."""
    store = _store(metadata_path)
    outputs = _outputs(store, execution_id)
    if node_id == nodes.STATISTICS_GEN and outputs.get("statistics"):
        counts = split_counts(outputs["statistics"][0].uri)
        return "examples " + ", ".join(f"{k} {v}" for k, v in counts.items())
    if node_id in (nodes.EXAMPLE_VALIDATOR, nodes.DRIFT_VALIDATOR) and outputs.get("anomalies"):
        return _anomaly_figure(outputs["anomalies"])
    if node_id == nodes.TEXT_STATISTICS_GEN and outputs.get("anomalies"):
        figure = _anomaly_figure(outputs["anomalies"])
        from components.validation.text_stats import SUMMARY_FILE

        train = read_json(os.path.join(outputs["statistics"][0].uri, SUMMARY_FILE)).get("train") or {}
        if train.get("examples"):
            figure += f"; train: {train['tokens_mean']} tokens on average, {train['truncated_share']:.1%} truncated"
        return figure
    if node_id == nodes.BASELINE_LOOKUP and outputs.get("model"):
        return lookup_figure(outputs)
    if node_id in (nodes.DATA_GATE, nodes.TEXT_GATE):
        return "passed"
    if node_id == nodes.PRETRAINER and outputs.get("model"):
        record = read_json(os.path.join(outputs["model"][0].uri, PRETRAINING_HISTORY_FILE))
        history, before = record.get("history") or {}, record.get("before") or {}
        if history.get("val_mlm_accuracy"):
            return (f"eval masked-LM accuracy {before.get('mlm_accuracy', float('nan')):.3f} -> "
                    f"{history['val_mlm_accuracy'][-1]:.3f}, loss {before.get('loss', float('nan')):.3f} -> "
                    f"{history['val_loss'][-1]:.3f}")
    if node_id == nodes.DISTILLER and outputs.get("model"):
        block = read_json(os.path.join(outputs["model"][0].uri, TRAINING_HISTORY_FILE)).get("distillation") or {}
        if block:
            return (f"student of {block['student_layers']} of the teacher's {block['teacher_layers']} layers: eval "
                    f"accuracy {block['student_eval_accuracy']:.3f} (teacher {block['teacher_eval_accuracy']:.3f})")
    if node_id == nodes.SERVING_CHECK and outputs.get("blessing"):
        from components.release.serving_check import read_report

        report = read_report(outputs["blessing"][0].uri)
        return (f"servable by {report.get('image')}: {report.get('ops')} ops, {report.get('warmup_requests')} warm-up "
                "requests answered")
    if node_id == nodes.EVALUATOR and outputs.get("blessing"):
        blessed = outputs["blessing"][0].custom_properties["blessed"].int_value == 1
        metrics = evaluator_metrics(outputs["evaluation"][0].uri) if outputs.get("evaluation") else {}
        accuracy = metrics.get("sparse_categorical_accuracy")
        per_task = ", ".join(f"{k.split('/')[0]} {v}" for k, v in metrics.items()
                             if k.endswith("/sparse_categorical_accuracy"))
        figure = (f"eval accuracy {accuracy}, " if accuracy is not None else
                  f"eval accuracy {per_task}, " if per_task else "")
        return figure + ("blessed" if blessed else "NOT blessed")
    if node_id == nodes.MODEL_CARD and outputs.get("card_model"):
        from components.release.model_card import CARD_JSON

        card = read_json(os.path.join(outputs["card_model"][0].uri, CARD_JSON))
        return headline_text(card["metrics"])
    if node_id == nodes.PUSHER and outputs.get("pushed_model"):
        pushed = outputs["pushed_model"][0].custom_properties
        if pushed["pushed"].int_value == 1:
            return f"pushed to {pushed['pushed_destination'].string_value}"
        return "not pushed (the model was not blessed)"
    return ""


# ----------------------------------------------------------------------------------------------------------------
# The run summary

def _span(artifact) -> int:
    """TFX records the span as a property or a custom property."""
    if "span" in artifact.properties:
        return artifact.properties["span"].int_value
    return artifact.custom_properties["span"].int_value


def _data_facts(record: RunRecord, config: PipelineConfig) -> dict:
    """Examples per split, spans, the validators' anomalies and warnings, the text statistics."""
    from components.validation.text_stats import SUMMARY_FILE

    result = {}
    stats_uri = record.artifact_uri(nodes.STATISTICS_GEN, "statistics")
    if stats_uri:
        result["examples_per_split"] = split_counts(stats_uri)
    ingested = record.artifacts(nodes.EXAMPLE_GEN, "examples")
    if config.use_spans and ingested:
        result["ingested_span"] = _span(ingested[0])
        result["training_spans"] = sorted(_span(a) for a in record.artifacts(nodes.TRANSFORM, "examples", output=False))
    anomalies, found_warnings = anomalies_and_warnings(
        [(node, a.uri, a.properties["split_names"].string_value)
         for node in nodes.VALIDATORS for a in record.artifacts(node, "anomalies")])
    result["anomalies"] = anomalies
    result["warnings"] = found_warnings
    text_stats_uri = record.artifact_uri(nodes.TEXT_STATISTICS_GEN, "statistics")
    if text_stats_uri:
        result["text_statistics"] = read_json(os.path.join(text_stats_uri, SUMMARY_FILE))
    return result


def _evaluation_facts(record: RunRecord) -> dict:
    """The serving check, the eval metrics, the blessing and why not, the model in service."""
    result = {}
    serving_check = record.artifact_uri(nodes.SERVING_CHECK, "blessing")
    if serving_check:
        from components.release.serving_check import read_report

        result["serving_check"] = read_report(serving_check)
    evaluation_uri = record.artifact_uri(nodes.EVALUATOR, "evaluation")
    if evaluation_uri:
        result["eval_metrics"] = evaluator_metrics(evaluation_uri)
    blessing = record.artifacts(nodes.EVALUATOR, "blessing")
    blessed = bool(blessing and blessing[0].custom_properties["blessed"].int_value == 1)
    result["blessed"] = blessed
    if evaluation_uri:
        from components.release.evaluator import not_comparable_reason

        apart = not_comparable_reason(evaluation_uri)
        if apart:
            result["not_comparable"] = apart
    if blessing and not blessed and evaluation_uri:
        result["not_blessed_because"] = validation_failures(evaluation_uri, result.get("eval_metrics"))
        if result.get("not_comparable"):
            result["not_blessed_because"].insert(0, not_comparable_text(result["not_comparable"]))
    from components.baselines import lookup

    # The model in service it was compared with: the served version folder BaselineLookup copied.
    baseline = [m for m in record.artifacts(nodes.EVALUATOR, "baseline_model", output=False) if lookup.found(m)]
    result["baseline_model"] = (lookup.source(baseline[0]) or baseline[0].uri) if baseline else None
    if baseline and evaluation_uri and not result.get("not_comparable"):
        result["baseline_eval_metrics"] = evaluator_metrics(evaluation_uri, "baseline")  # the model in service
    return result


def _model_facts(record: RunRecord, config: PipelineConfig) -> dict:
    """The frozen schema, the push, the model and its test-split scores."""
    result = {}
    frozen = record.artifacts(nodes.SCHEMA_FREEZER, "frozen_schema")
    if frozen:
        from components.validation.frozen_files import frozen_schema_file

        result["frozen_schema"] = frozen_schema_file(config.pipeline_root)
    pushed = record.artifacts(nodes.PUSHER, "pushed_model")
    pushed_dir = None
    if pushed and pushed[0].custom_properties["pushed"].int_value == 1:
        pushed_dir = pushed[0].custom_properties["pushed_destination"].string_value
    result["pushed"] = pushed_dir is not None
    result["pushed_dir"] = pushed_dir
    # The model the release stage judged: the Distiller's student when there is one, else the Trainer's.
    model_uri = record.artifact_uri(nodes.DISTILLER, "model") or record.artifact_uri(nodes.TRAINER, "model")
    result["model_uri"] = model_uri
    examples_uri = record.artifact_uri(nodes.EXAMPLE_GEN, "examples")
    model_dir = pushed_dir or (os.path.join(model_uri, "Format-Serving") if model_uri else None)
    from components.release.model_card import CARD_JSON

    card_uri = record.artifact_uri(nodes.MODEL_CARD, "card_model")
    card_file = os.path.join(card_uri, CARD_JSON) if card_uri else None
    if card_file and storage.exists(card_file):  # the model card scored the test split already
        result["model_card"] = os.path.join(pushed_dir, "assets.extra", CARD_JSON) if pushed_dir else card_file
        result["test_metrics"] = {**read_json(card_file)["test_metrics"], "model_dir": model_dir}
    elif model_dir and examples_uri:
        texts, labels = read_split(examples_uri, "test", config.text_key, config.label_key)
        result["test_metrics"] = {**test_metrics(model_dir, texts, labels, columns=[t.column for t in config.tasks]),
                                  "model_dir": model_dir}
    return result


def collect_summary(config: PipelineConfig, wall_seconds: float, warnings: List[str],
                    error: Optional[str] = None) -> dict:
    """The run summary from ML Metadata: counts, timings, anomalies, text statistics, metrics, blessing, push,
    test-split scores."""
    record = RunRecord(config.metadata_path, config.pipeline_name)
    pretrained = config.trainer.pretrained_dir
    result = {
        "dataset": config.dataset,
        "data_root": config.data_root,
        "schema": config.schema_origin or config.schema_file,
        "schema_source": config.schema_source,
        "model": (f"pretrained:{Path(pretrained).name}" if pretrained else config.trainer.model_size)
        + (f", student of {config.distiller.student_layers} layers" if config.distiller.enabled else ""),
        "student_layers": config.distiller.student_layers,
        "model_size": config.trainer.model_size if not pretrained else Path(pretrained).name,
        "max_seq_length": config.transform.max_seq_length,
        "wall_seconds": round(wall_seconds, 1),
        "components": record.seconds(),
    }
    data = _data_facts(record, config)
    result.update(data, warnings=list(warnings) + data["warnings"])
    result.update(_evaluation_facts(record))
    result.update(_model_facts(record, config))
    if error:
        result["error"] = error
    return result


def not_comparable_text(note: dict) -> str:
    added = [c for c in note["candidate_classes"] if c not in note["baseline_classes"]]
    dropped = [c for c in note["baseline_classes"] if c not in note["candidate_classes"]]
    change = "; ".join(part for part in (f"new: {', '.join(added)}" if added else "",
                                         f"gone: {', '.join(dropped)}" if dropped else "") if part) or "reordered"
    if note.get("accepted"):
        return (f"the model in service has other classes ({change}): judged on the absolute gates alone "
                "(--accept-new-classes)")
    return (f"not comparable with the model in service, whose classes differ ({change}); if the schema gained a "
            "class on purpose, run again with --accept-new-classes")


def summary_lines(summary: dict) -> List[str]:
    """The summary for people, one fact a line."""
    lines = [f"dataset: {summary['dataset']}  model: {summary['model']}  wall: {summary['wall_seconds']} s"]
    if "examples_per_split" in summary:
        lines.append("examples: " + ", ".join(f"{k} {v}" for k, v in summary["examples_per_split"].items()))
    cached = [k for k, v in summary["components"].items() if v["state"] == "CACHED"]
    if cached:
        lines.append(f"from the cache: {', '.join(cached)}")
    train_text = summary.get("text_statistics", {}).get("train")
    if train_text and train_text.get("examples"):
        t = train_text
        lines.append(f"text (train): {t['examples']} texts, {t['tokens_mean']} tokens on average (95% up to "
                     f"{t['tokens_p95']}), {t['truncated']} truncated to {t['max_seq_length']}, {t['empty']} empty, "
                     f"[UNK] {t['unk_share']:.2%} of tokens")
    for warning in summary.get("warnings", []):
        lines.append(f"warning: {warning}")
    if summary.get("anomalies"):
        lines.append(f"anomalies: {len(summary['anomalies'])} (see {ANOMALIES_REPORT} in the pipeline root)")
    metrics = summary.get("eval_metrics", {})
    keys = ["sparse_categorical_accuracy", "macro_f1_score", "macro_auc", "example_count"]
    tasks = [k.split("/")[0] for k in metrics if k.endswith("/sparse_categorical_accuracy")]
    for task in tasks or ([""] if metrics else []):  # one line per task with several label columns
        prefix = f"{task}/" if task else ""
        over = classes_averaged(metrics, task)  # which classes macro F1 averaged: those with an eval example
        lines.append(f"eval{f' ({task})' if task else ''}: " + ", ".join(
            f"{k} {metrics[prefix + k]}" + (f" (over {over})" if k == "macro_f1_score" and over else "")
            for k in keys if prefix + k in metrics))
    if "test_metrics" in summary:
        t = summary["test_metrics"]
        for name, scores in (t.get("tasks") or {"": t}).items():
            lines.append(f"test{f' ({name})' if name else ''}: accuracy {scores.get('accuracy')}, macro F1 "
                         f"{scores.get('macro_f1')} on {scores.get('examples')} examples")
    if summary.get("frozen_schema"):
        lines.append(f"schema: frozen to {summary['frozen_schema']}; later runs check their data against it (edit it "
                     "when the data changes on purpose, e.g. a new class: see docs/protections.md)")
    if summary.get("not_comparable", {}).get("accepted"):
        lines.append(f"note: {not_comparable_text(summary['not_comparable'])}")
    lines.append(f"blessed: {summary['blessed']}" + (
        f" ({'; '.join(summary['not_blessed_because'])})" if summary.get("not_blessed_because") else ""))
    lines.append(f"pushed: {summary['pushed_dir'] or 'no'}")
    if summary.get("model_card"):
        lines.append(f"model card: {summary['model_card']}")
    if summary.get("report"):
        lines.append(f"report: {summary['report']}")
    return lines
