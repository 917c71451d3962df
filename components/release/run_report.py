"""RunReport: the run report as a pipeline step, for Kubeflow, where no local ML Metadata store is at hand.

A local run draws `report.html` after the run from its ML Metadata store (pipeline/cli/report.py), which covers stopped
runs and every step's timing. On Kubeflow the pipeline itself draws it: this step, after the ModelCardWriter, reads
the artifacts the run produced and writes the same page (components/release/report_page.py) into its `report` artifact
(a `File`, report.html). The timings are the KFP run graph's. A run stopped by a gate has no report there (the step
never runs); its reason is in the failed step's log.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import json
import os

from tfx import v1 as tfx
from tfx.types.experimental.simple_artifacts import File

from components.baselines import lookup
from components.release.report_page import REPORT_FILE


def summary_from_artifacts(statistics: str, anomalies: dict, text_statistics: str, model: str, evaluation: str,
                           blessed: bool, baseline: str, card_model: str, facts: dict) -> dict:
    """The fields of the run summary the report shows, read from artifact URIs (`anomalies`: found_by -> (uri,
    split names))."""
    import tensorflow as tf

    from components.release.model_card import CARD_JSON
    from components.release.model_metrics import evaluator_metrics
    from components.release.run_facts import anomalies_and_warnings, split_counts
    from components.validation.text_stats import SUMMARY_FILE

    def read(path):
        return json.loads(tf.io.gfile.GFile(path).read()) if tf.io.gfile.exists(path) else {}

    found, warnings = anomalies_and_warnings([(node, uri, names) for node, (uri, names) in anomalies.items()])
    summary = {**facts, "examples_per_split": split_counts(statistics), "anomalies": found, "warnings": warnings,
               "text_statistics": read(os.path.join(text_statistics, SUMMARY_FILE)),
               "model_uri": model, "eval_metrics": evaluator_metrics(evaluation), "blessed": blessed,
               "baseline_model": baseline or None, "components": {},
               "timings_note": "Each step's timing is in the Kubeflow run's graph."}
    if baseline:
        try:  # the model in service's metrics (none when its classes differ: it was not evaluated)
            summary["baseline_eval_metrics"] = evaluator_metrics(evaluation, "baseline")
        except Exception:  # noqa: BLE001 - the report then shows the candidate alone
            pass
    if not blessed:
        from components.release.run_facts import validation_failures

        summary["not_blessed_because"] = validation_failures(evaluation, summary["eval_metrics"])
    card = read(os.path.join(card_model, CARD_JSON))
    if card:
        summary["test_metrics"] = card.get("test_metrics")
    return summary


@tfx.dsl.components.component
def RunReport(
        statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
        drift_anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
        text_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        text_anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
        transformed_examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
        blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        card_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        report: tfx.dsl.components.OutputArtifact[File],
        context: tfx.dsl.components.Parameter[str],
        baseline_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None):
    """Writes report.html into `report`. `context`: JSON of the pipeline name, label column, max_seq_length, the
    Evaluator's settings, and the dataset and model names."""
    import tensorflow as tf

    from components.release.model_card import blessing_facts
    from components.release.report_page import ReportContext, render
    from components.settings.base import from_custom_config
    from components.settings.evaluator import EvaluatorSettings

    given = json.loads(context)
    blessed, baseline = blessing_facts(blessing)
    summary = summary_from_artifacts(
        statistics.uri,
        {"ExampleValidator": (anomalies.uri, anomalies.split_names),
         "DriftValidator": (drift_anomalies.uri, drift_anomalies.split_names),
         "TextStatisticsGen": (text_anomalies.uri, text_anomalies.split_names)},
        text_statistics.uri, model.uri, evaluation.uri, blessed, baseline, card_model.uri,
        {"dataset": given["dataset"], "model": given["model"], "wall_seconds": "see the Kubeflow run"})
    page = render(ReportContext(
        given["pipeline_name"], given["label_key"], given["max_seq_length"],
        from_custom_config(EvaluatorSettings, given["evaluator"]), statistics=statistics.uri,
        baseline_statistics=baseline_statistics.uri if lookup.found(baseline_statistics) else None,
        transformed=transformed_examples.uri), summary)
    tf.io.gfile.makedirs(report.uri)  # TFX's local runner creates output folders; KFP's launcher does not
    with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE), "w") as f:
        f.write(page)
