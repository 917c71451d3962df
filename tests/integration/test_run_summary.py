"""One run summary (components/release/run_summary.py), built by one function from a run's artifacts, whoever found
them: the local runner in ML Metadata, the Kubeflow RunReport step as its inputs. On the real Evaluator's output
(stand-in models, tests/support/evaluator_run.py): a candidate whose classes differ from the model in service's is
not comparable, and the summary, its JSON and the report page say why, on both runners (the RunReport step's summary
used not to say it)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from components.release.run_summary import RunArtifacts, RunSetup, RunSummary, summarize
from components.tasks import Task
from support.evaluator_run import evaluate

REPO = Path(__file__).resolve().parents[2]
SETUP = RunSetup(dataset="custom", data_root="/data", schema=None, schema_source="none", model="stand-in",
                 student_layers=0, model_size="stand-in", max_seq_length=64, text_key="text", label_key="label")


@pytest.fixture(scope="module")
def not_comparable(tmp_path_factory):
    """The candidate answers three classes, the model in service was trained on two of them."""
    base = tmp_path_factory.mktemp("grown")
    rows = [{"text": f"text {i}", "label": "abc"[i % 3], "answer_label": "abc"[i % 3], "served_label": "ab"[i % 2]}
            for i in range(30)]
    blessed, _, _ = evaluate(base, (Task("label", ("a", "b", "c")),), rows, with_baseline=True,
                             baseline_tasks=(Task("label", ("a", "b")),))
    return base, blessed


def test_a_model_not_comparable_with_the_one_in_service_is_said_so_first(not_comparable):
    base, blessed = not_comparable
    summary = summarize(RunArtifacts(evaluation=str(base / "evaluation"), blessed=blessed,
                                     baseline_model=str(base / "baseline")), SETUP)
    assert blessed is False and summary.blessed is False
    assert summary.not_comparable["candidate_classes"] == ["a", "b", "c"]
    assert summary.not_comparable["baseline_classes"] == ["a", "b"]
    reason = summary.not_blessed_because[0]
    assert reason.startswith("not comparable with the model in service, whose classes differ (new: c)"), reason
    assert summary.baseline_eval_metrics is None  # it was not evaluated: there is nothing to compare
    written = summary.to_json()
    assert written["not_comparable"] == summary.not_comparable and written["baseline_model"] == str(base / "baseline")
    assert json.loads(json.dumps(written)) == written


def test_the_kubeflow_run_report_summarises_its_inputs_as_a_local_run_is_summarised(not_comparable, tmp_path):
    """The RunReport step's artifacts (TFX artifacts, as KFP's launcher hands them) give the summary a local run's
    artifacts give: the same builder, so the page says why too."""
    from tfx.types import standard_artifacts

    from components.release.model_card import blessing_facts
    from components.release.report_page import ReportContext, evaluation_section
    from components.release.run_report import report_artifacts
    from components.settings.evaluator import EvaluatorSettings

    base, blessed = not_comparable

    def artifact(kind, folder, **properties):
        made = kind()
        made.uri = str(folder)
        for name, value in properties.items():
            setattr(made, name, value)
        Path(folder).mkdir(parents=True, exist_ok=True)
        return made

    blessing = artifact(standard_artifacts.ModelBlessing, base / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    empty = dict(split_names=json.dumps([]))
    anomalies = {name: artifact(standard_artifacts.ExampleAnomalies, tmp_path / name, **empty)
                 for name in ("anomalies", "drift_anomalies", "text_anomalies")}
    given = report_artifacts(
        statistics=artifact(standard_artifacts.ExampleStatistics, tmp_path / "statistics", **empty),
        text_statistics=artifact(standard_artifacts.ExampleStatistics, tmp_path / "text_statistics", **empty),
        model=artifact(standard_artifacts.Model, base / "candidate"),
        evaluation=artifact(standard_artifacts.ModelEvaluation, base / "evaluation"), blessing=blessing,
        card_model=artifact(standard_artifacts.Model, tmp_path / "card"),
        baseline_model=artifact(standard_artifacts.Model, base / "baseline"), **anomalies)
    assert (given.blessed, given.baseline_model) == (blessing_facts(blessing)[0], str(base / "baseline"))
    local = RunArtifacts(statistics=given.statistics, anomalies=given.anomalies, text_statistics=given.text_statistics,
                         evaluation=str(base / "evaluation"), blessed=blessed, baseline_model=str(base / "baseline"),
                         model=str(base / "candidate"), card_model=str(tmp_path / "card"))
    kubeflow_summary, local_summary = summarize(given, SETUP), summarize(local, SETUP)
    assert kubeflow_summary == local_summary and kubeflow_summary.not_comparable is not None
    page = evaluation_section(ReportContext("p", "label", 64, EvaluatorSettings()), kubeflow_summary)
    assert "Not blessed: not comparable with the model in service" in page


def test_only_summarize_builds_a_run_summary_and_both_runners_call_it():
    """Read with ast: RunSummary is constructed in run_summary.py alone, and the local runner's reports and the
    Kubeflow RunReport step build theirs with summarize."""
    constructed, callers = [], set()
    for path in sorted([*(REPO / "components").rglob("*.py"), *(REPO / "pipeline").rglob("*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        imported = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.module == "components.release.run_summary" for a in node.names}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
                name = node.func.attr if node.func.value.id == "run_summary" else ""
            else:
                name = getattr(node.func, "id", "")
                name = name if name in imported or path.name == "run_summary.py" else ""
            if name == RunSummary.__name__:
                constructed.append(path.relative_to(REPO).as_posix())
            if name == summarize.__name__:
                callers.add(path.relative_to(REPO).as_posix())
    assert set(constructed) == {"components/release/run_summary.py"}
    assert callers == {"components/release/run_report.py", "pipeline/local/reports.py"}
