"""RunReport: the run report as a pipeline step, for Kubeflow, where no local ML Metadata store is at hand.

A local run draws `report.html` after the run from its ML Metadata store (pipeline/local/reports.py), which covers
stopped runs and every step's timing. On Kubeflow the pipeline itself draws it: this step, after the ModelCardWriter
and the Pusher, is handed the artifacts the run produced, summarises them as a local run's summary is summarised
(components/release/run_summary.py) and writes the same page (components/release/report_page.py) into its `report`
artifact (a `File`, report.html). The timings are the KFP run graph's. A run stopped by a gate has no report there
(the step never runs); its reason is in the failed step's log.

It also appends the run's record to the run history under the pipeline root (components/release/run_history.py), as
the local runner does, and the page plots that history. So the step is never taken from KFP's cache
(pipeline/dag/nodes.py, NEVER_CACHED): a run whose every other step was cached is still a run of the history.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import json
import os

from tfx import v1 as tfx
from tfx.types.experimental.simple_artifacts import File

from components.baselines import lookup
from components.release.report_page import REPORT_FILE


def report_artifacts(statistics, anomalies, drift_anomalies, text_statistics, text_anomalies, model, evaluation,
                     blessing, card_model, baseline_model=None, pushed_model=None, serving_skew=None,
                     retrain_decision=None):
    """The RunArtifacts of the step's inputs (TFX artifacts); the ones it is not handed (the serving check, the
    examples) are None."""
    from components.release.model_card import blessing_facts
    from components.release.run_summary import RunArtifacts

    blessed, _ = blessing_facts(blessing)
    return RunArtifacts(
        statistics=statistics.uri,
        anomalies=tuple((node, artifact.uri, artifact.split_names) for node, artifact in (
            ("ExampleValidator", anomalies), ("DriftValidator", drift_anomalies),
            ("TextStatisticsGen", text_anomalies))),
        text_statistics=text_statistics.uri, evaluation=evaluation.uri, blessed=blessed,
        baseline_model=lookup.baseline_folder(baseline_model),
        model=model.uri, card_model=card_model.uri,
        pushed_dir=(pushed_model.get_string_custom_property("pushed_destination")
                    if pushed_model is not None and pushed_model.get_int_custom_property("pushed") == 1 else None),
        serving_skew=serving_skew.uri if serving_skew is not None else None,
        retrain_decision=retrain_decision.uri if retrain_decision is not None else None)


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
        baseline_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
        baseline_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
        pushed_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel] = None,
        serving_skew: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
        retrain_decision: tfx.dsl.components.InputArtifact[File] = None):
    """Writes report.html into `report` and the run's record into the run history. `context`: JSON of the pipeline
    name, the pipeline root, the Evaluator's settings and the run's setup (run_summary.RunSetup's fields)."""
    import tensorflow as tf

    from components.release.report_page import ReportContext, render
    from components.release.run_history import label_distance, record_run
    from components.release.run_summary import RunSetup, summarize
    from components.settings.base import from_custom_config
    from components.settings.evaluator import EvaluatorSettings

    given = json.loads(context)
    setup = RunSetup(**given["setup"])
    summary = summarize(report_artifacts(statistics, anomalies, drift_anomalies, text_statistics, text_anomalies,
                                         model, evaluation, blessing, card_model, baseline_model, pushed_model,
                                         serving_skew, retrain_decision), setup)
    baseline = baseline_statistics.uri if lookup.found(baseline_statistics) else None
    history = record_run(given["pipeline_root"], summary, label_distance(statistics.uri, baseline, setup.label_key))
    page = render(ReportContext(
        given["pipeline_name"], setup.label_key, setup.max_seq_length,
        from_custom_config(EvaluatorSettings, given["evaluator"]), statistics=statistics.uri,
        baseline_statistics=baseline, transformed=transformed_examples.uri), summary, history)
    tf.io.gfile.makedirs(report.uri)  # TFX's local runner creates output folders; KFP's launcher does not
    with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE), "w") as f:
        f.write(page)
