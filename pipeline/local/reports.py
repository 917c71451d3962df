"""What a local run leaves besides its artifacts, stopped or finished: the run summary (components/release/
run_summary.py) built from ML Metadata, written to --summary-json, `<pipeline_root>/anomalies.json` (what stopped, or
was tolerated in, the last run: for whatever watches the pipeline) and `<pipeline_root>/report.html`
(components/release/report_page.py's page; drawn after the run, so a stopped run and every step's timing are covered)
and the run's record in `<pipeline_root>/history/` (components/release/run_history.py), which the report plots;
for a run the front door refused, its summary and anomalies.json alone (`write_refusal`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import List, Optional

from components.release import run_history, run_summary
from components.release.report_page import REPORT_FILE, ReportContext, render
from components.release.run_summary import RunSummary
from components.runtime import storage
from pipeline.cli.errors import InputError
from pipeline.cli.locations import pipeline_root_of
from pipeline.dag import nodes
from pipeline.dag.config import PipelineConfig
from pipeline.local.record import RunRecord, run_artifacts

ANOMALIES_REPORT = "anomalies.json"  # in the pipeline root


def summary_of_run(config: PipelineConfig, wall_seconds: float, warnings: List[str],
                   error: Optional[str] = None) -> RunSummary:
    """The summary of the run that just ended (or stopped), from its ML Metadata store."""
    record = RunRecord(config.metadata_path, config.pipeline_name)
    return run_summary.summarize(run_artifacts(record, config), config.run_setup(), components=record.seconds(),
                                 wall_seconds=wall_seconds, warnings=warnings, error=error)


def _baseline(record: RunRecord, node_id: str) -> Optional[str]:
    """The statistics `node_id` compared with, when BaselineLookup found any (None on a first run)."""
    from components.baselines import lookup

    found = [a for a in record.artifacts(node_id, "baseline_statistics", output=False) if lookup.found(a)]
    return found[0].uri if found else None


def _context(config: PipelineConfig) -> ReportContext:
    record = RunRecord(config.metadata_path, config.pipeline_name)
    return ReportContext(
        config.pipeline_name, config.label_key, config.transform.max_seq_length, config.evaluator,
        statistics=record.artifact_uri(nodes.STATISTICS_GEN, "statistics"),
        baseline_statistics=_baseline(record, nodes.DRIFT_VALIDATOR),
        transformed=record.artifact_uri(nodes.TRANSFORM, "transformed_examples"),
        baseline_text_statistics=_baseline(record, nodes.TEXT_STATISTICS_GEN))


def record_history(config: PipelineConfig, summary: RunSummary, err) -> None:
    """Appends the run's record to the run history. A failure to write it is a warning on `err`: the run's outcome
    stays what it was (the record of a run is not the run)."""
    try:
        context = _context(config)
        drift = run_history.label_distance(context.statistics, context.baseline_statistics, config.label_key)
        run_history.record_run(config.pipeline_root, summary, drift)
    except Exception as e:  # noqa: BLE001 - reported in one line
        print(f"warning: the run's record could not be added to {run_history.history_folder(config.pipeline_root)} "
              f"({type(e).__name__}: {str(e)[:200]})", file=err, flush=True)


def write_report(config: PipelineConfig, summary: RunSummary) -> str:
    """Writes <pipeline_root>/report.html, with the run history as it is now; returns its path."""
    try:
        history = run_history.read(config.pipeline_root)
    except (OSError, ValueError):  # unreadable: the section says so, the rest of the report stands
        history = []
    path = os.path.join(config.pipeline_root, REPORT_FILE)
    storage.write_file(path, render(_context(config), summary, history))
    return path


def write_json(path: str, document: dict) -> None:
    storage.write_file(path, json.dumps(document, indent=2, sort_keys=False))


def write_summaries(summary: RunSummary, summary_json: Optional[str], pipeline_root: Optional[str]) -> None:
    """The summary to `summary_json` (--summary-json), and its anomalies and warnings to
    <pipeline_root>/anomalies.json (empty lists when the data passed every check; no root: not written)."""
    document = summary.to_json()
    if summary_json:
        write_json(summary_json, document)
    if pipeline_root is not None:
        write_json(os.path.join(pipeline_root, ANOMALIES_REPORT),
                   {key: document.get(key) for key in ("dataset", "data_root", "error", "anomalies", "warnings")})


def write_refusal(args: argparse.Namespace, error: Exception) -> None:
    """The reports of a run the input checks refused before anything ran."""
    problem = error.as_problem() if isinstance(error, InputError) else {
        "split": "", "feature": "(input)", "kind": "ASSET_UNAVAILABLE", "description": str(error)}
    summary = run_summary.refused(
        args.dataset if args.data_root is None else "custom",
        str(args.data_root.resolve()) if isinstance(args.data_root, Path) else args.data_root, problem, str(error))
    # Into an existing pipeline root only (retraining: the report sits with the earlier runs); a refused first
    # command leaves nothing behind. --summary-json gets the record either way.
    root = pipeline_root_of(args)
    stores_answered = getattr(error, "kind", "") != "STORAGE_UNAVAILABLE"  # else a URI is the problem: none is used
    if root is not None and storage.is_uri(root):  # the pipeline root's folder exists on a store that answered
        usable = stores_answered and storage.is_dir(root)
    else:
        usable = root is not None and root.is_dir()
    summary_json = None if not stores_answered and storage.is_uri(args.summary_json or "") else args.summary_json
    write_summaries(summary, summary_json and str(summary_json), str(root) if usable else None)
