"""The run report (pipeline/local/reports.py) and the model card (components/release/model_card.py) of the quick run,
opened in a real headless browser; a stopped run's report is checked in support/retraining.py."""

from __future__ import annotations

import json
from pathlib import Path

from components.release.model_card import CARD_HTML, CARD_JSON
from components.release.report_page import SECTIONS
from support import QUICK_CHECKPOINT
from support.browser import ARTIFACTS, open_page


def test_the_pushed_model_carries_its_model_card(first_run):
    paths, summary, _ = first_run
    extra = Path(summary["pushed_dir"]) / "assets.extra"
    assert summary["model_card"] == str(extra / CARD_JSON)
    card = json.loads((extra / CARD_JSON).read_text())
    assert card["classes"] == ["fresh", "rotten"] and card["blessed"] is True and card["baseline_model"] is None
    assert card["checkpoint"].startswith(str(QUICK_CHECKPOINT.resolve()))  # the runner resolves the folder
    assert card["settings"]["epochs"] == 2 and card["settings"]["pretrained_dir"] == str(QUICK_CHECKPOINT.resolve())
    assert card["data"]["dataset"] == "rotten_tomatoes" and card["data"]["text_column"] == "text"
    metrics = summary["eval_metrics"]
    assert card["metrics"]["eval accuracy"] == metrics["sparse_categorical_accuracy"]
    assert card["metrics"]["test accuracy"] == summary["test_metrics"]["accuracy"]
    assert card["metrics"]["test examples"] == summary["examples_per_split"]["test"]
    assert card["training"]["epochs_run"] == 2 and card["date"].startswith("20")
    assert "<h2>Metrics</h2>" in (extra / CARD_HTML).read_text()


def test_the_report_shows_every_section_with_loaded_plots_in_a_real_browser(first_run, browser):
    paths, summary, _ = first_run
    report = paths["pipeline_root"] / "report.html"
    assert summary["report"] == str(report)
    page, errors = open_page(browser, report.as_uri())
    assert page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)") == list(SECTIONS)
    images = page.eval_on_selector_all("img", "is => is.map(i => [i.alt, i.complete, i.naturalWidth])")
    titles = [alt for alt, _, _ in images]
    for expected in ("Examples per split", "Label distribution per split", "Token lengths", "Loss per epoch",
                     "Accuracy per epoch", "Learning-rate schedule", "Confusion matrix, test (counts)",
                     "Confusion matrix, test (row shares)", "Seconds per component"):
        assert expected in titles, titles
    assert all(complete and width > 0 for _, complete, width in images), images
    assert "src=\"http" not in report.read_text()  # self-contained: nothing to fetch
    text = page.inner_text("body")
    assert "No anomaly and no warning" in text and "Blessed: every threshold passed." in text
    assert "Most confident mistakes (test split)" in text and "Early stopping on eval accuracy kept epoch" in text
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert errors == []


def test_on_kubeflow_the_run_report_step_draws_the_same_report_from_the_artifacts(first_run, browser, tmp_path):
    """components/release/run_report.py (the RunReport step of the Kubeflow spec) on the quick run's real artifacts."""
    from components.release.report_page import ReportContext, render
    from components.release.run_summary import RunArtifacts, RunSetup, summarize
    from components.settings.evaluator import EvaluatorSettings
    from pipeline.dag import nodes
    from pipeline.dag.config import PIPELINE_NAME
    from pipeline.local.record import RunRecord

    paths, summary, _ = first_run
    record = RunRecord(str(paths["pipeline_root"] / "metadata.sqlite"), PIPELINE_NAME)
    uri = record.artifact_uri
    split_names = lambda node: record.artifacts(node, "anomalies")[0].properties["split_names"].string_value  # noqa
    # What the RunReport step is handed (components/release/run_report.py's report_artifacts): no serving check, no
    # push (it runs beside the Pusher), no examples.
    given = RunArtifacts(
        statistics=uri(nodes.STATISTICS_GEN, "statistics"),
        anomalies=tuple((node, uri(node, "anomalies"), split_names(node)) for node in nodes.VALIDATORS),
        text_statistics=uri(nodes.TEXT_STATISTICS_GEN, "statistics"), model=uri(nodes.TRAINER, "model"),
        evaluation=uri(nodes.EVALUATOR, "evaluation"), blessed=True, card_model=uri(nodes.MODEL_CARD, "card_model"))
    setup = RunSetup(**{key: summary[key] for key in ("dataset", "data_root", "schema", "schema_source", "model",
                                                     "student_layers", "model_size", "max_seq_length")},
                     text_key="text", label_key="label")
    built = summarize(given, setup)
    for key in ("examples_per_split", "eval_metrics", "anomalies", "warnings", "text_statistics", "blessed",
                "model_uri", "dataset", "max_seq_length"):
        assert built.to_json()[key] == summary[key], key
    assert built.anomalies == [] and built.not_comparable is None and built.components == {}
    assert built.test_metrics["accuracy"] == summary["test_metrics"]["accuracy"]
    page_file = tmp_path / "report.html"
    page_file.write_text(render(ReportContext(
        PIPELINE_NAME, "label", 64, EvaluatorSettings(), statistics=uri(nodes.STATISTICS_GEN, "statistics"),
        transformed=uri(nodes.TRANSFORM, "transformed_examples")), built))
    page, errors = open_page(browser, page_file.as_uri())
    assert page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)") == list(SECTIONS)
    images = page.eval_on_selector_all("img", "is => is.map(i => i.naturalWidth)")
    assert len(images) == 8 and all(width > 0 for width in images)  # no timings plot: the KFP graph has them
    assert "Each step's timing is in the Kubeflow run's graph." in page.inner_text("body") and errors == []
