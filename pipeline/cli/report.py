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
        baseline_statistics=record.artifact_uri(nodes.DRIFT_VALIDATOR, "baseline_statistics", output=False),
        transformed=record.artifact_uri(nodes.TRANSFORM, "transformed_examples"),
        baseline_text_statistics=record.artifact_uri(nodes.TEXT_STATISTICS_GEN, "baseline_statistics",
                                                     output=False))


def write_report(config, summary: dict) -> str:
    """Writes <pipeline_root>/report.html of a local run (`config`: its PipelineConfig); returns its path."""
    from pipeline.cli.summary import RunRecord

    context = context_of_run(config, RunRecord(config.metadata_path, config.pipeline_name))
    path = os.path.join(config.pipeline_root, REPORT_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(render(context, summary))
    os.replace(tmp, path)
    return path
