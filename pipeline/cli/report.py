"""The run report of a local run: components/release/report_page.py's page, drawn from the run's ML Metadata store
after the run (so a stopped run, and every step's timing, is covered) into `<pipeline_root>/report.html`."""

from __future__ import annotations

import os

from components.release.report_page import REPORT_FILE, ReportContext, render
from pipeline.dag import nodes


def context_of_run(config, record) -> ReportContext:
    """For a local run: the config, and the artifacts of its latest execution in ML Metadata."""
    return ReportContext(
        config.pipeline_name, config.label_key, config.transform.max_seq_length, config.evaluator,
        statistics=record.artifact_uri(nodes.STATISTICS_GEN, "statistics"),
        baseline_statistics=_baseline(record, nodes.DRIFT_VALIDATOR),
        transformed=record.artifact_uri(nodes.TRANSFORM, "transformed_examples"),
        baseline_text_statistics=_baseline(record, nodes.TEXT_STATISTICS_GEN))


def _baseline(record, node_id: str):
    """The statistics `node_id` compared with, when BaselineLookup found any (None on a first run)."""
    from components.baselines import lookup

    found = [a for a in record.artifacts(node_id, "baseline_statistics", output=False) if lookup.found(a)]
    return found[0].uri if found else None


def write_report(config, summary: dict) -> str:
    """Writes <pipeline_root>/report.html of a local run (`config`: its PipelineConfig); returns its path."""
    from components.runtime import storage
    from pipeline.cli.summary import RunRecord

    context = context_of_run(config, RunRecord(config.metadata_path, config.pipeline_name))
    path = os.path.join(config.pipeline_root, REPORT_FILE)
    storage.write_file(path, render(context, summary))
    return path
