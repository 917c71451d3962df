"""The run report's page: one self-contained `report.html` in the pipeline root, plots embedded, readable without network.

Sections: the run (and, for a failed or refused run, the reason first), data (examples and labels per split against
the drift checks' baseline, token lengths with the `max_seq_length` cut), validation (every anomaly and warning),
training (loss and accuracy per epoch, the learning-rate schedule, the epoch kept), evaluation (the metrics against
their thresholds, the blessing in words, the test split's confusion matrix, per-class scores and most confident
mistakes) and timings (a bar per component, the cached ones marked). A section whose step did not run says so.
Plots are matplotlib's Agg backend, PNG, base64-embedded.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

from components.settings.evaluator import EvaluatorSettings

REPORT_FILE = "report.html"
SECTIONS = ("Run", "Data", "Validation", "Training", "Evaluation", "Timings")  # the page's h2 headings, in order


@dataclass(frozen=True)
class ReportContext:
    """What the report needs besides the summary: names and settings, and where the data artifacts are."""

    pipeline_name: str
    label_key: str
    max_seq_length: int
    evaluator: EvaluatorSettings
    statistics: Optional[str] = None  # StatisticsGen's output
    baseline_statistics: Optional[str] = None  # the statistics the drift checks compared with
    transformed: Optional[str] = None  # Transform's transformed examples
    baseline_text_statistics: Optional[str] = None  # the text statistics the length-drift check compared with


_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem;color:#1d1d1f}
img{max-width:100%;display:block;margin:.5rem 0}table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
.error{background:#fdecea;color:#8a1c12;padding:.75rem;border-radius:4px}"""


def render(context: ReportContext, summary: dict) -> str:
    bodies = {
        "Run": run_section(summary),
        "Data": data_section(context, summary),
        "Validation": validation_section(summary),
        "Training": training_section(summary),
        "Evaluation": evaluation_section(context, summary),
        "Timings": timings_section(summary),
    }
    error = summary.get("error")
    top = f'<p class="error">This run stopped: {html.escape(error)}</p>' if error else ""
    sections = "".join(f'<h2 id="{name.lower()}">{name}</h2>{bodies[name]}' for name in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>Run report: {html.escape(context.pipeline_name)}'
            f'</title><style>{_STYLE}</style></head><body><h1>Run report: {html.escape(context.pipeline_name)}</h1>'
            f'{top}{sections}</body></html>')
