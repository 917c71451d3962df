"""Every spec `run_kubeflow.py compile` writes, checked against what the open-source Kubeflow Pipelines v2 backend
refuses at run creation and at run time (tests/support/kfp_rules.py, each rule citing the backend file it was read
from): the default spec, --warm-start, --pretrain-epochs, --student-layers, --spans, several label columns (the
built-in drug_reviews), and the Vertex AI multi-worker
Trainer (--trainer-workers, which runs its Trainer on Vertex AI Training, so it is meant for Vertex AI Pipelines only;
it is checked all the same). Each rule is also shown to catch the mistake it names, on a spoiled copy of the default
spec."""

import copy
import json

import pytest

from support import kfp_local, kfp_rules
from support.kubeflow import COMPILE_ARGS, process_state_kept

VARIANTS = {
    "default": [],
    "warm-start": ["--warm-start", "--model-config-file", "gs://bucket/serving/models.config"],
    "pretrain-epochs": ["--pretrain-epochs", "1"],
    "student-layers": ["--student-layers", "3"],
    "spans": ["--spans"],
    "several label columns": ["--dataset", "drug_reviews"],  # its schema's two label columns
    "vertex-only multi-worker": ["--trainer-workers", "2", "--vertex-project", "my-project",
                                 "--vertex-region", "europe-west4"],
}


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    from pipeline.kubeflow import cli as kfp_cli

    base = tmp_path_factory.mktemp("variants")
    found = {}
    for name, flags in VARIANTS.items():
        output = base / f"{name.replace(' ', '-')}.json"
        with process_state_kept():
            assert kfp_cli.main(["compile", *COMPILE_ARGS, "--pipeline-root", "gs://bucket/root", *flags,
                                 "--output", str(output)]) == 0, name
        found[name] = json.loads(output.read_text())["pipelineSpec"]
    return found


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_spec_breaks_a_rule_of_the_open_source_backend(specs, variant):
    assert kfp_rules.violations(specs[variant]) == []


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_what_a_run_compares_with_comes_from_a_container_task_that_is_never_cached(specs, variant):
    from pipeline.dag import nodes

    spec = specs[variant]
    executors = spec["deploymentSpec"]["executors"]
    assert all(set(e) == {"container"} for e in executors.values())  # no resolver, no importer
    tasks = spec["root"]["dag"]["tasks"]
    uncached = {name for name, task in tasks.items() if not task.get("cachingOptions", {}).get("enableCache")}
    assert uncached == {nodes.EXAMPLE_GEN, nodes.BASELINE_LOOKUP}
    for task, key, output in ((nodes.DRIFT_VALIDATOR, "baseline_statistics", "data_statistics"),
                              (nodes.TEXT_STATISTICS_GEN, "baseline_statistics", "text_statistics"),
                              (nodes.EVALUATOR, "baseline_model", "model")):
        source = tasks[task]["inputs"]["artifacts"][key]["taskOutputArtifact"]
        assert source == {"producerTask": nodes.BASELINE_LOOKUP, "outputArtifactKey": output}, task
    lookup = tasks[nodes.BASELINE_LOOKUP]["inputs"]["parameters"]
    assert lookup["data_baselines"]["runtimeValue"]["constant"] == "gs://bucket/root/baselines/DataValidationGate"
    assert lookup["serving_base"]["runtimeValue"]["constant"] == "gs://bucket/serving/bert_classifier"
    assert lookup["model_config_file"]["runtimeValue"]["constant"] == (
        "gs://bucket/serving/models.config" if variant == "warm-start" else "")
    if variant == "warm-start":
        assert tasks[nodes.TRAINER]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"] == {
            "producerTask": nodes.BASELINE_LOOKUP, "outputArtifactKey": "model"}


def _task_with_a_number(spec):
    for name, task in spec["root"]["dag"]["tasks"].items():
        declared = spec["components"][task["componentRef"]["name"]].get("inputDefinitions", {}).get("parameters", {})
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if declared.get(key, {}).get("parameterType") == "NUMBER_INTEGER" and "runtimeValue" in source:
                return name, key
    raise AssertionError("no integer parameter in the spec")


def _required_parameter(spec, task_name):
    task = spec["root"]["dag"]["tasks"][task_name]
    declared = spec["components"][task["componentRef"]["name"]]["inputDefinitions"]["parameters"]
    return next(k for k in task["inputs"]["parameters"] if not declared[k].get("isOptional"))


def spoil(rule, spec):
    """A copy of `spec` with the one mistake `rule` is about."""
    spec = copy.deepcopy(spec)
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    if rule == "schema_version_2_1_0":
        spec["schemaVersion"] = "2.0.0"
    elif rule == "a_pipeline_spec_without_unknown_fields":
        tasks["Trainer"]["retryPolicyz"] = {}
    elif rule == "pipeline_name_uploadable":
        spec["pipelineInfo"]["name"] = "BERT_classifier"
    elif rule == "a_root_dag_with_tasks":
        spec["root"]["dag"]["tasks"] = {}
    elif rule == "container_or_importer_executors_only":  # what TFX compiles a tfx.dsl.Resolver into
        executors["BaselineLookup_executor"] = {"resolver": {"outputArtifactQueries": {"model": {
            "filter": 'schema_title="tfx.Model" AND state=LIVE'}}}}
    elif rule == "components_and_executors_exist":
        tasks["Trainer"]["componentRef"]["name"] = "Missing"
    elif rule == "producers_and_dependencies_are_sibling_tasks":
        tasks["Evaluator"]["dependentTasks"] = ["Ghost"]
    elif rule == "upstream_outputs_exist":
        tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"]["outputArtifactKey"] = "x"
    elif rule == "task_keys_are_argo_names":
        tasks["latest_blessed_model_resolver"] = tasks.pop("BaselineLookup")
    elif rule == "task_info_names":
        tasks["Trainer"]["taskInfo"]["name"] = ""
    elif rule == "no_artifact_iterators_or_importer_conditions":
        tasks["Trainer"]["artifactIterator"] = {"itemInput": "examples", "items": {"inputArtifact": "examples"}}
    elif rule == "every_component_input_has_a_value":
        del tasks["Trainer"]["inputs"]["parameters"][_required_parameter(spec, "Trainer")]
    elif rule == "parameter_values_match_their_types":
        name, key = _task_with_a_number(spec)
        tasks[name]["inputs"]["parameters"][key]["runtimeValue"]["constant"] = "64"
    elif rule == "placeholders_the_driver_substitutes":
        tasks["BaselineLookup"]["inputs"]["parameters"]["serving_base"]["runtimeValue"]["constant"] = \
            "gs://bucket/{{$.pipeline_job_uuid}}/serving"
    elif rule == "container_placeholders_resolve":
        executors["Trainer_executor"]["container"]["args"].append("{{$.inputs.parameters['ghost']}}")
    elif rule == "output_artifact_types_have_a_title":
        spec["components"]["BaselineLookup"]["outputDefinitions"]["artifacts"]["model"]["artifactType"] = {
            "instanceSchema": "type: object\n"}
    elif rule == "no_unmodelled_features":
        tasks["Pusher"]["triggerPolicy"] = {"condition": "inputs.parameter_values['x'] == 'y'"}
    else:
        raise AssertionError(f"no spoiled spec for {rule}")
    return spec


@pytest.mark.parametrize("rule", [check.__name__ for check in kfp_rules.RULES])
def test_each_rule_catches_the_mistake_it_names(specs, rule):
    found = kfp_rules.violations(spoil(rule, specs["default"]))
    assert any(v.startswith(f"{rule}: ") for v in found), found
    assert all(kfp_rules.CITATIONS[rule] in v for v in found if v.startswith(f"{rule}: "))


def test_the_executed_harness_refuses_what_the_backend_refuses(specs, tmp_path):
    spoiled = spoil("container_or_importer_executors_only", specs["default"])
    with pytest.raises(kfp_local.RefusedSpec, match="non-container and non-importer executor not implemented"):
        kfp_local.execute_spec(spoiled, tmp_path)
    assert not list(tmp_path.iterdir())  # refused before any task ran

