"""--retrain-if: the decision (components/validation/retrain_decision.py) from what BaselineLookup found and what the
checks said, the flag's refusals (components/settings/serving_loop.py), the condition TFX compiles around the steps
after the checks (pipeline/dag/retrain.py), and the line the console prints."""

import json

import pytest

from components.baselines import lookup
from components.runtime import versioned_folders
from components.settings.base import SettingsError
from components.settings.serving_loop import ServingLoopSettings
from components.validation import retrain_decision
from pipeline.dag import nodes


class _Artifact:
    def __init__(self, uri):
        self.uri = str(uri)


def accepted(tmp_path, produced_by=None):
    """BaselineLookup's data_statistics output: a found publication of `produced_by`, or nothing found."""
    folder = tmp_path / "accepted"
    folder.mkdir()
    record = {"found": False} if produced_by is None else {
        "found": True, "source": "/root/baselines/DataValidationGate/1", "published": {"produced_by": produced_by}}
    versioned_folders.write_record(str(folder), record)
    return _Artifact(folder)


def test_the_same_statistics_as_last_accepted_are_no_new_data_and_anything_else_is(tmp_path):
    stats = "/root/StatisticsGen/statistics/7"
    assert retrain_decision.new_data(stats, accepted(tmp_path, stats + "/")) is False
    assert lookup.found(accepted(tmp_path / "a", "/root/StatisticsGen/statistics/9"))
    assert retrain_decision.new_data(stats, accepted(tmp_path / "b", "/root/StatisticsGen/statistics/6")) is True
    assert retrain_decision.new_data(stats, accepted(tmp_path / "c")) is True  # nothing accepted yet: a first run


@pytest.fixture(autouse=True)
def _folders(tmp_path):
    for name in "abc":
        (tmp_path / name).mkdir()


def test_the_run_trains_when_an_asked_condition_holds_or_nothing_is_in_service():
    asked = ["new-data", "serving-skew"]
    quiet = retrain_decision.decide(asked, {"new-data": False, "serving-skew": False}, model_in_service=True)
    assert quiet["train"] is False
    assert quiet["why"] == ("no training: no new labelled data and no serving skew (--retrain-if "
                            "new-data,serving-skew): the model in service stays")
    skewed = retrain_decision.decide(asked, {"new-data": False, "serving-skew": True}, model_in_service=True)
    assert skewed == {**skewed, "train": True, "held": {"new-data": False, "serving-skew": True},
                      "why": "training: serving skew (--retrain-if new-data,serving-skew)"}
    # A condition not asked for does not count.
    assert retrain_decision.decide(["serving-skew"], {"new-data": True, "serving-skew": False}, True)["train"] is False
    first = retrain_decision.decide(asked, {"new-data": False, "serving-skew": False}, model_in_service=False)
    assert first["train"] is True and first["why"] == "training: there is no model in service yet"


def test_the_flag_refuses_an_unknown_condition_and_skew_without_logs():
    assert ServingLoopSettings(retrain_if="new-data, serving-skew", serving_logs="s3://b/l").conditions == (
        "new-data", "serving-skew")
    with pytest.raises(SettingsError, match=r"--retrain-if: 'skew' is not a condition; the conditions are "
                                            r"new-data, serving-skew\."):
        ServingLoopSettings(retrain_if="new-data,skew")
    with pytest.raises(SettingsError, match=r"pass --serving-logs PREFIX too"):
        ServingLoopSettings(retrain_if="serving-skew")


def test_everything_after_the_checks_runs_under_the_decision_and_the_checks_do_not(tmp_path):
    from tfx.dsl.compiler import compiler

    from components.settings.data import DataSettings
    from components.settings.trainer import TrainerSettings
    from components.settings.transform import TransformSettings
    from pipeline.dag.config import PipelineConfig
    from pipeline.dag.pipeline import create_pipeline

    config = PipelineConfig(
        pipeline_root=str(tmp_path / "root"), data_root=str(tmp_path / "data"), serving_dir=str(tmp_path / "serving"),
        data=DataSettings(vocab_file="/v.txt", label_names=("neg", "pos")), transform=TransformSettings(),
        trainer=TrainerSettings(), schema_file=str(tmp_path / "schema.pbtxt"), metadata_path=str(tmp_path / "m"),
        serving=ServingLoopSettings(serving_logs="/logs/", retrain_if="new-data,serving-skew"))
    ir = compiler.Compiler().compile(create_pipeline(config))
    conditional = {n.pipeline_node.node_info.id for n in ir.nodes if n.pipeline_node.inputs.conditionals}
    for node in (nodes.TRANSFORM, nodes.TEXT_GATE, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert node in conditional, node
    for node in (nodes.EXAMPLE_GEN, nodes.DATA_GATE, nodes.SERVING_SKEW_CHECK, nodes.SERVING_LOGS_COMMIT,
                 nodes.RETRAIN_DECISION):
        assert node not in conditional, node
    pusher = next(n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == nodes.PUSHER)
    assert "_RetrainDecision.decision" in str(pusher.inputs.conditionals) and '"train"' in str(
        pusher.inputs.conditionals)
    decision = next(n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == nodes.RETRAIN_DECISION)
    assert set(decision.inputs.inputs) == {"statistics", "data_statistics", "baseline_model", "skew"}


def test_the_console_says_in_one_line_whether_the_run_trained_and_why():
    from components.release.run_summary import RunSummary
    from pipeline.local.console import summary_lines

    record = retrain_decision.decide(["new-data"], {"new-data": False}, True)
    lines = summary_lines(RunSummary(dataset="d", model="m", retrain=record))
    assert lines[1] == "no training: no new labelled data (--retrain-if new-data): the model in service stays"
    assert json.loads(json.dumps(record)) == record
