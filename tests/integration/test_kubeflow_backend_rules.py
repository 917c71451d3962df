"""Every spec `run_kubeflow.py compile` writes, checked against what the open-source Kubeflow Pipelines v2 backend
refuses at run creation and at run time (tests/support/kfp_rules.py, each rule citing the backend file it was read
from): the default spec, --warm-start, --pretrain-epochs, --student-layers, --spans, several label columns (the
built-in drug_reviews), two text columns, and the Vertex AI multi-worker
Trainer (--trainer-workers, which runs its Trainer on Vertex AI Training, so it is meant for Vertex AI Pipelines only;
it is checked all the same), and the store of a stock open-source install (--pipeline-root s3://...), whose Kubernetes
platform spec gives the pods the store's keys (secretAsEnv) and is checked against what the API server, the compiler
and the driver drop or refuse (kfp_rules.PLATFORM_RULES). Each rule is also shown to catch the mistake it names, on a
spoiled copy of the default spec (the platform rules: of the s3:// variant's platform spec)."""

import copy
import json

import pytest
import yaml

from support import kfp_local, kfp_rules
from support.kubeflow import COMPILE_ARGS, process_state_kept

VARIANTS = {
    "default": [],
    "warm-start": ["--warm-start", "--model-config-file", "gs://bucket/serving/models.config"],
    "pretrain-epochs": ["--pretrain-epochs", "1"],
    "student-layers": ["--student-layers", "3"],
    "spans": ["--spans"],
    "several label columns": ["--dataset", "drug_reviews"],  # its schema's two label columns
    "two text columns": ["--text-column", "question,passage"],  # a pair of texts per example (issue 48)
    # The steps after the checks under a trigger condition on RetrainDecision's output (docs/serving_loop.md).
    "retrain-if": ["--serving-logs", "gs://bucket/logs/", "--retrain-if", "new-data,serving-skew"],
    "vertex-only multi-worker": ["--trainer-workers", "2", "--vertex-project", "my-project",
                                 "--vertex-region", "europe-west4"],
    "s3 store": ["--pipeline-root", "s3://mlpipeline/v2/bert", "--serving-dir", "s3://mlpipeline/serving",
                 "--data-root", "s3://mlpipeline/incoming", "--s3-endpoint", "http://seaweedfs.kubeflow:8333"],
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
        job = json.loads(output.read_text())
        found[name] = job["pipelineSpec"]
        if job.get("platformSpec"):
            PLATFORMS[name] = job["platformSpec"]
    return found


PLATFORMS = {}  # variant -> its platform spec (filled by `specs`)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_spec_breaks_a_rule_of_the_open_source_backend(specs, variant):
    assert kfp_rules.violations(specs[variant], PLATFORMS.get(variant)) == []
    assert (variant in PLATFORMS) == (variant == "s3 store")


def test_the_store_variant_gives_every_container_the_keys_as_kfp_kubernetes_writes_them(specs):
    """kfp-kubernetes' use_secret_as_env (kubernetes_platform/python/kfp/kubernetes/secret.py L44-63 at 2.17.0): the
    name as secretNameParameter, and as the deprecated secretName for older backends."""
    spec, platform = specs["s3 store"], PLATFORMS["s3 store"]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {label for label, e in spec["deploymentSpec"]["executors"].items() if "container" in e}
    assert spec["defaultPipelineRoot"] == "s3://mlpipeline/v2/bert"
    for label, config in executors.items():
        env = {e["name"]: e["value"] for e in spec["deploymentSpec"]["executors"][label]["container"]["env"]}
        assert env["S3_ENDPOINT"] == env["AWS_ENDPOINT_URL_S3"] == "http://seaweedfs.kubeflow:8333", label
        assert not any(k.startswith(("AWS_ACCESS", "AWS_SECRET")) for k in env), label  # never inline
        assert config == {"secretAsEnv": [{
            "secretNameParameter": {"runtimeValue": {"constant": "mlpipeline-minio-artifact"}},
            "secretName": "mlpipeline-minio-artifact", "optional": False,
            "keyToEnv": [{"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
                         {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}]}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_what_a_run_compares_with_comes_from_a_container_task_that_is_never_cached(specs, variant):
    from pipeline.dag import nodes

    spec = specs[variant]
    executors = spec["deploymentSpec"]["executors"]
    assert all(set(e) == {"container"} for e in executors.values())  # no resolver, no importer
    tasks = spec["root"]["dag"]["tasks"]
    uncached = {name for name, task in tasks.items() if not task.get("cachingOptions", {}).get("enableCache")}
    # The RunReport step appends the run's record to the run history (components/release/run_history.py).
    reads_logs = {nodes.SERVING_LOGS_GEN, nodes.SERVING_LOGS_COMMIT} if variant == "retrain-if" else set()
    assert uncached == {nodes.EXAMPLE_GEN, nodes.BASELINE_LOOKUP, nodes.RUN_REPORT, *reads_logs}
    for task, key, output in ((nodes.DRIFT_VALIDATOR, "baseline_statistics", "data_statistics"),
                              (nodes.TEXT_STATISTICS_GEN, "baseline_statistics", "text_statistics"),
                              (nodes.EVALUATOR, "baseline_model", "model")):
        source = tasks[task]["inputs"]["artifacts"][key]["taskOutputArtifact"]
        assert source == {"producerTask": nodes.BASELINE_LOOKUP, "outputArtifactKey": output}, task
    lookup = tasks[nodes.BASELINE_LOOKUP]["inputs"]["parameters"]
    root, serving = (("s3://mlpipeline/v2/bert", "s3://mlpipeline/serving") if variant == "s3 store" else
                     ("gs://bucket/root", "gs://bucket/serving"))
    assert lookup["data_baselines"]["runtimeValue"]["constant"] == f"{root}/baselines/DataValidationGate"
    assert lookup["serving_base"]["runtimeValue"]["constant"] == f"{serving}/bert_classifier"
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
        tasks["Pusher"]["iteratorPolicy"] = {"parallelismLimit": 2}
    elif rule == "trigger_conditions_the_driver_evaluates":
        tasks["Pusher"]["triggerPolicy"] = {"condition": "inputs.parameter_values['x'] == 'y'"}
    else:
        raise AssertionError(f"no spoiled spec for {rule}")
    return spec


@pytest.mark.parametrize("rule", [check.__name__ for check in kfp_rules.RULES])
def test_each_rule_catches_the_mistake_it_names(specs, rule):
    found = kfp_rules.violations(spoil(rule, specs["default"]))
    assert any(v.startswith(f"{rule}: ") for v in found), found
    assert all(kfp_rules.CITATIONS[rule] in v for v in found if v.startswith(f"{rule}: "))


def spoil_platform(rule, platform):
    """A copy of the s3:// variant's platform spec with the one mistake `rule` is about."""
    platform = copy.deepcopy(platform)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    trainer = executors["Trainer_executor"]["secretAsEnv"][0]
    if rule == "a_platform_spec_the_api_server_keeps":  # a misspelt field: the document is not taken at all
        platform["platforms"]["kubernetes"]["deploymentConfig"] = platform["platforms"]["kubernetes"].pop(
            "deploymentSpec")
    elif rule == "platform_executors_are_the_specs":  # keyed by task name instead of executor label
        executors["Trainer"] = executors.pop("Trainer_executor")
    elif rule == "kubernetes_config_fields_exist":
        trainer["keyToEnv"][0]["envVariable"] = trainer["keyToEnv"][0].pop("envVar")
    elif rule == "secret_as_env_names_a_secret_and_its_variables":
        del trainer["secretName"], trainer["secretNameParameter"]
    elif rule == "only_modelled_kubernetes_config":
        executors["Trainer_executor"]["nodeSelector"] = {"labels": {"pool": "gpu"}}
    else:
        raise AssertionError(f"no spoiled platform spec for {rule}")
    return platform


@pytest.mark.parametrize("rule", [check.__name__ for check in kfp_rules.PLATFORM_RULES])
def test_each_platform_rule_catches_the_mistake_it_names(specs, rule):
    found = kfp_rules.violations(specs["s3 store"], spoil_platform(rule, PLATFORMS["s3 store"]))
    assert any(v.startswith(f"{rule}: ") for v in found), found
    assert all(kfp_rules.CITATIONS[rule] in v for v in found if v.startswith(f"{rule}: "))


def test_the_secret_rules_catch_each_half_of_a_secret_as_env(specs):
    """secretNameParameter and secretName naming two secrets, a keyToEnv entry without its variable, a secretAsEnv
    without keyToEnv: each sets the wrong variable or none (driver/k8s.go L347-393)."""
    rule = "secret_as_env_names_a_secret_and_its_variables"
    for change in ("two names", "no variable", "no keyToEnv"):
        platform = copy.deepcopy(PLATFORMS["s3 store"])
        entry = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["Pusher_executor"][
            "secretAsEnv"][0]
        if change == "two names":
            entry["secretName"] = "mlpipeline-minio-artifact-old"
        elif change == "no variable":
            entry["keyToEnv"][1]["envVar"] = ""
        else:
            entry["keyToEnv"] = []
        found = [v for v in kfp_rules.violations(specs["s3 store"], platform) if v.startswith(f"{rule}: ")]
        assert len(found) == 1 and "Pusher_executor" in found[0], (change, found)


def test_retrain_if_puts_the_steps_after_the_checks_under_a_condition_the_driver_evaluates(specs):
    """--retrain-if: TFX compiles its Cond to one trigger condition on RetrainDecision's output, on every step after
    the checks; the harness evaluates it as the driver's CEL does, on the metadata as KFP's store hands it back (a
    number is a double), and a missing property fails the task."""
    tasks = specs["retrain-if"]["root"]["dag"]["tasks"]
    conditions = {name: t.get("triggerPolicy", {}).get("condition") for name, t in tasks.items()}
    for step in ("Transform", "TextStatisticsGen", "Trainer", "ServingCheck", "Evaluator", "Pusher", "RunReport"):
        # RunReport reads the decision as an input of its own, whose key the condition then names.
        key = "retrain_decision" if step == "RunReport" else "_RetrainDecision.decision"
        assert conditions[step] == f"(inputs.artifacts['{key}'].artifacts[0].metadata['train'] == 1.0)", step
    for step in ("CsvExampleGen", "DataValidationGate", "ServingLogsGen", "ServingSkewCheck", "ServingLogsCommit",
                 "RetrainDecision", "BaselineLookup"):
        assert conditions[step] is None, step
    # The run report (of a run that trains) draws the In service section and the decision too.
    report = tasks["RunReport"]["inputs"]["artifacts"]
    assert report["serving_skew"]["taskOutputArtifact"]["producerTask"] == "ServingSkewCheck"
    assert report["retrain_decision"]["taskOutputArtifact"]["producerTask"] == "RetrainDecision"

    def executor_input(metadata):
        return {"inputs": {"artifacts": {"_RetrainDecision.decision": {"artifacts": [{"metadata": metadata}]}}}}

    condition = conditions["Trainer"]
    assert kfp_rules.evaluate_condition(condition, executor_input({"train": 1.0})) is True
    assert kfp_rules.evaluate_condition(condition, executor_input({"train": 0.0})) is False
    with pytest.raises(kfp_rules.ConditionError, match="no such key: train"):
        kfp_rules.evaluate_condition(condition, executor_input({}))
    with pytest.raises(kfp_rules.ConditionError, match="does not model"):
        kfp_rules.evaluate_condition("inputs.parameter_values['x'] == 'y'", executor_input({}))


def test_the_executed_harness_refuses_what_the_backend_refuses(specs, tmp_path):
    spoiled = spoil("container_or_importer_executors_only", specs["default"])
    with pytest.raises(kfp_local.RefusedSpec, match="non-container and non-importer executor not implemented"):
        kfp_local.execute_spec(spoiled, "s3://bucket/root", scratch_root=tmp_path)
    job = {"pipelineSpec": specs["s3 store"],
           "platformSpec": spoil_platform("platform_executors_are_the_specs", PLATFORMS["s3 store"])}
    with pytest.raises(kfp_local.RefusedSpec, match="its Kubernetes config is ignored"):
        kfp_local.execute_spec(job, "s3://bucket/root", scratch_root=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before any task ran



def test_the_platform_spec_travels_as_the_kfp_sdk_and_the_backend_read_it(tmp_path):
    """The YAML file's second document (KFP's own compiler's form), read back by specs.load_platform_spec, parsed as
    the backend's PlatformSpec, and kept as the upload file's second document."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    from pipeline.kubeflow import cli as kfp_cli
    from pipeline.kubeflow import specs as kfp_specs

    output = tmp_path / "pipeline.yaml"
    with process_state_kept():
        assert kfp_cli.main(["compile", *COMPILE_ARGS, *VARIANTS["s3 store"], "--output", str(output)]) == 0
    platform = kfp_specs.load_platform_spec(str(output))
    message = json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    assert "kubernetes" in message.platforms
    assert kfp_rules.violations(kfp_specs.load_spec(str(output)), platform) == []
    upload = kfp_specs.write_upload_file(kfp_specs.load_spec(str(output)), str(tmp_path), "upload", platform)
    assert [d.get("platforms") is not None for d in yaml.safe_load_all(open(upload))] == [False, True]


def test_the_store_flags_are_checked():
    from pipeline.kubeflow import storage
    from pipeline.kubeflow.errors import UserError

    with pytest.raises(UserError, match="--s3-credentials-secret 'just-a-name' must be NAME:ACCESS_KEY_KEY:"):
        storage.secret_as_env("just-a-name")
    assert storage.secret_as_env("none") is None
    # A bare HOST:PORT would take its scheme from this machine's S3_USE_HTTPS, which is not the pods'.
    with pytest.raises(UserError, match="--s3-endpoint 'seaweedfs.kubeflow:8333' needs its scheme, as the pods "
                                        "reach the store: http://seaweedfs.kubeflow:8333"):
        storage.container_env("seaweedfs.kubeflow:8333")
    with pytest.raises(UserError, match="--s3-endpoint: S3 endpoint 'ftp://x:1' must be http"):
        storage.container_env("ftp://x:1")
    spec = {"deploymentSpec": {"executors": {"a": {"container": {"image": "x"}}, "b": {"importer": {}}}}}
    assert storage.apply(spec, "http://seaweedfs.kubeflow:8333", "none") is None  # env on containers, no platform
    assert "env" in spec["deploymentSpec"]["executors"]["a"]["container"] and "container" not in \
        spec["deploymentSpec"]["executors"]["b"]




def test_the_two_text_columns_reach_the_compiled_steps(specs):
    """The pair's columns are in the spec: ExampleGen reads both as text, Transform and the Trainer get them in their
    data settings, the text statistics and the model card their names."""
    import re

    spec = json.dumps(specs["two text columns"])
    # ExampleGen's custom_config (JSON in a string in the spec): the columns read as text
    read_as_text = re.search(r'text_columns[^\[]*\[([^\]]*)\]', spec).group(1)
    # each column one item (not "question,passage" as one column name)
    assert re.findall(r"\w[\w,]*", read_as_text.replace("\\n", " ")) == ["question", "passage", "label"]
    settings = re.findall(r'text_key[\\"]*: [\\"]*question,passage', spec)
    assert len(settings) >= 2, "Transform's and the Trainer's data settings"
    assert "question,passage" not in json.dumps(specs["default"])
