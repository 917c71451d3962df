"""Each step's key figure as it ends, for the local runner's console line (pipeline/local/console.py's
StepReporter): examples per split, anomalies found, what BaselineLookup found, blessed or not, pushed where. Read from
the step's outputs in ML Metadata."""

from __future__ import annotations

import json
import os
from typing import Dict, List

from ml_metadata.proto import metadata_store_pb2

from components.features import PRETRAINING_HISTORY_FILE, TRAINING_HISTORY_FILE
from components.release.model_metrics import evaluator_metrics, headline_text
from components.release.run_facts import split_counts
from components.runtime import storage
from pipeline.dag import nodes
from pipeline.local.record import open_store


def read_json(path: str):
    return json.loads(storage.read_text(path))


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
    store = open_store(metadata_path)
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
    if node_id == nodes.SERVING_LOGS_GEN and outputs.get("examples"):
        from components.ingestion.serving_logs import no_new_traffic, read_summary

        read = read_summary(outputs["examples"][0].uri)
        if not read.get("new_traffic"):
            return no_new_traffic(read.get("prefix", "the prefix"))
        return (f"{read['examples']} texts of {read['requests']} requests from {len(read['files'])} new log files, "
                f"versions {', '.join(read['versions']) or 'none'}")
    if node_id == nodes.SERVING_SKEW_CHECK and outputs.get("skew"):
        from components.validation.serving_skew import read_report

        report = read_report(outputs["skew"][0].uri) or {}
        crossed = sorted({c["check"] for c in report.get("crossed") or []})
        return (f"skew: {', '.join(crossed)}" if crossed else
                "no skew" if report.get("compared") else "nothing compared")
    if node_id == nodes.RETRAIN_DECISION and outputs.get("decision"):
        from components.validation.retrain_decision import read_decision

        return (read_decision(outputs["decision"][0].uri) or {}).get("why", "")
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
