"""Tests of pipeline/run_kubeflow.py: the compiled KFP v2 spec, and upload/run/schedule against a stub KFP API.

No cluster is needed: `compile` really runs (once as a user would, in a fresh interpreter, and again in-process to
check the output is identical), and the client commands talk to tests/kfp_stub.py, a small stand-in for the KFP
v2beta1 REST API on 127.0.0.1 that records every request.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

import contextlib
import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import absl.logging
import kfp
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.kubeflow import cli as kfp_cli
from pipeline.kubeflow import options as kfp_options
from pipeline.kubeflow import client, cron, errors, parameters, specs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import assert_one_error  # noqa: E402
from kfp_stub import KfpStub  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RUN_KUBEFLOW = REPO / "pipeline" / "run_kubeflow.py"
IMAGE = "registry.example.com/ml/bert-tfx-pipeline:1.2.3"
NAME = "bert-text-classifier"
ENTRYPOINT = ["python", "-m", "pipeline.kubeflow.entrypoint"]  # TFX's run_executor, inputs typed (entrypoint.py)
COMPILE_ARGS = ["--image", IMAGE, "--data-root", "gs://bucket/reviews", "--serving-dir", "gs://bucket/serving",
                "--epochs", "2", "--train-steps", "50", "--learning-rate", "3e-5", "--min-accuracy", "0.7"]
PARAMETERS = {"data_root", "train_args", "trainer_config", "eval_config"}


@contextlib.contextmanager
def process_state_kept():
    """run_kubeflow's main() quiets TensorFlow (an environment variable) and absl logging for the CLI; in-process
    calls must not leave that behind for the rest of the test session."""
    level, verbosity = os.environ.get("TF_CPP_MIN_LOG_LEVEL"), absl.logging.get_verbosity()
    try:
        yield
    finally:
        if level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = level
        absl.logging.set_verbosity(verbosity)


@pytest.fixture(autouse=True)
def _keep_process_state():
    with process_state_kept():
        yield


def run_cli(*args, env=None, timeout=300):
    """pipeline/run_kubeflow.py in a fresh interpreter, as a user runs it."""
    full_env = {k: v for k, v in os.environ.items() if k not in (client.ENV_ENDPOINT, client.ENV_TOKEN, client.ENV_COOKIE)}
    full_env.update(TF_USE_LEGACY_KERAS="1", **(env or {}))
    return subprocess.run([sys.executable, str(RUN_KUBEFLOW), *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------------------------------------------
# compile

@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    base = tmp_path_factory.mktemp("kfp")
    root = base / "pipeline_root"  # given to compile, which must leave it alone
    args = ["compile", *COMPILE_ARGS, "--pipeline-root", str(root)]
    proc = run_cli(*args, "--output", base / "cli.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with process_state_kept():
        assert kfp_cli.main([*args, "--output", str(base / "again.json")]) == 0
        assert kfp_cli.main([*args, "--output", str(base / "spec.yaml")]) == 0
    job = json.loads((base / "cli.json").read_text())
    from pipeline.pipeline import create_pipeline

    config = kfp_options.kubeflow_config(kfp_cli.build_parser().parse_args([*args, "--output", "unused.json"]))
    return SimpleNamespace(base=base, root=root, path=base / "cli.json", job=job, spec=job["pipelineSpec"],
                           components=create_pipeline(config).components, stdout=proc.stdout)


def test_compiled_spec_parses_as_kfp_protos(compiled):
    job = json_format.ParseDict(compiled.job, pipeline_spec_pb2.PipelineJob())
    spec = json_format.ParseDict(compiled.spec, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == NAME == job.display_name
    assert spec.schema_version == "2.1.0" and spec.sdk_version.startswith("tfx-")
    assert f"wrote {compiled.path}" in compiled.stdout and "runtime parameters: data_root" in compiled.stdout


def _upstream(task: dict) -> set:
    deps = set(task.get("dependentTasks", []))
    inputs = task.get("inputs", {})
    for artifact in inputs.get("artifacts", {}).values():
        deps.add(artifact["taskOutputArtifact"]["producerTask"])
    for parameter in inputs.get("parameters", {}).values():
        if "taskOutputParameter" in parameter:
            deps.add(parameter["taskOutputParameter"]["producerTask"])
    return deps


def test_one_task_per_component_in_dependency_order(compiled):
    tasks = compiled.spec["root"]["dag"]["tasks"]
    expected = set()
    for component in compiled.components:
        strategy = component.exec_properties.get("resolver_class") if type(component).__name__ == "Resolver" else None
        if strategy is not None and strategy.__name__ == "LatestBlessedModelStrategy":
            # compiled into two queries: latest blessing, then its model
            expected |= {f"{component.id}-model-blessing-resolver", f"{component.id}-model-resolver"}
        else:  # components, and the LatestArtifactStrategy resolvers of the drift baselines (one query each)
            expected.add(component.id)
    assert set(tasks) == expected

    upstream = {name: _upstream(task) for name, task in tasks.items()}
    level = {}

    def depth(name, seen=()):
        assert name not in seen, f"cycle through {name}"
        if name not in level:
            level[name] = 1 + max((depth(u, seen + (name,)) for u in upstream[name]), default=-1)
        return level[name]

    order = sorted(tasks, key=lambda name: (depth(name), name))
    for position, name in enumerate(order):
        assert upstream[name] <= set(order[:position]), f"{name} depends on a later or unknown task"
    assert order[0] == "CsvExampleGen" and not upstream["CsvExampleGen"]
    last = max(level.values())
    assert {name for name, v in level.items() if v == last} == {"Pusher", "RunReport"}  # both after the card
    assert upstream["StatisticsGen"] == {"CsvExampleGen"}
    assert {"DataValidationGate", "CsvExampleGen", "ImportSchemaGen"} <= upstream["Transform"]
    assert "Transform" in upstream["Trainer"]
    assert {"Trainer", "latest_blessed_model_resolver-model-resolver", "ServingCheck"} <= upstream["Evaluator"]
    assert upstream["ServingCheck"] == {"Trainer"}
    assert upstream["ModelCardWriter"] == {"Trainer", "Evaluator", "CsvExampleGen"}
    assert upstream["Pusher"] == {"Evaluator", "ServingCheck", "ModelCardWriter"}
    assert {"ModelCardWriter", "Evaluator", "Trainer", "Transform", "TextStatisticsGen", "DriftValidator",
            "ExampleValidator", "StatisticsGen"} <= upstream["RunReport"]
    report = tasks["RunReport"]
    assert report["inputs"]["artifacts"]["baseline_statistics"]["taskOutputArtifact"]["producerTask"].startswith(
        "DataValidationGate_baseline_resolver")
    context = json.loads(report["inputs"]["parameters"]["context"]["runtimeValue"]["constant"])
    assert context["label_key"] == "label" and {"min_accuracy", "max_macro_f1_drop"} <= set(context["evaluator"])


def test_every_executor_runs_the_image_and_code_is_referenced_by_module_path(compiled):
    spec = compiled.spec
    executors = spec["deploymentSpec"]["executors"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        executor = executors[spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        if "resolver" in name:  # the model in service, the drift baselines: metadata queries, no container
            assert "resolver" in executor
            continue
        assert executor["container"]["image"] == IMAGE, name
        assert executor["container"]["command"] == ENTRYPOINT, name
        assert not {"module_file", "module_path"} & set(task.get("inputs", {}).get("parameters", {})), name
    tasks = spec["root"]["dag"]["tasks"]
    constant = lambda task, key: tasks[task]["inputs"]["parameters"][key]["runtimeValue"]["constant"]  # noqa: E731
    assert constant("Trainer", "run_fn") == "components.trainer.run_fn"
    assert constant("Transform", "preprocessing_fn") == "components.preprocessing.preprocessing_fn"
    assert constant("ImportSchemaGen", "schema_file") == "/pipeline/schema/rotten_tomatoes/schema.pbtxt"
    gate_args = executors["DataValidationGate_executor"]["container"]["args"]
    assert gate_args[gate_args.index("--executor_class_path") + 1].startswith("components.gates.")


def test_runtime_parameters_are_root_inputs_with_the_compiled_defaults(compiled):
    spec = compiled.spec
    declared = spec["root"]["inputDefinitions"]["parameters"]
    assert set(declared) == PARAMETERS
    assert all(p["parameterType"] == "STRING" and p["isOptional"] and p["description"] for p in declared.values())
    defaults = {name: p["defaultValue"] for name, p in declared.items()}
    assert defaults["data_root"] == "gs://bucket/reviews"
    assert json.loads(defaults["train_args"]) == {"splits": ["train"], "num_steps": 50}
    trainer = json.loads(defaults["trainer_config"])
    assert trainer["epochs"] == 2 and trainer["learning_rate"] == 3e-5
    assert trainer["pretrained_dir"] == "/pipeline/data/checkpoints/all-MiniLM-L6-v2"
    assert trainer["vocab_file"] == "/pipeline/data/checkpoints/all-MiniLM-L6-v2/vocab.txt"
    accuracy = json.loads(defaults["eval_config"])["metrics_specs"][0]["metrics"][1]
    assert accuracy["class_name"] == "SparseCategoricalAccuracy"
    assert accuracy["threshold"]["value_threshold"]["lower_bound"] == 0.7
    # The same defaults for a PipelineJob consumer (Vertex), and the tasks read the parameters.
    assert compiled.job["runtimeConfig"]["parameterValues"] == defaults
    tasks = spec["root"]["dag"]["tasks"]
    reads = lambda task, key: tasks[task]["inputs"]["parameters"][key]["componentInputParameter"]  # noqa: E731
    assert reads("CsvExampleGen", "input_base") == "data_root"
    assert reads("Trainer", "train_args") == "train_args"
    assert reads("Trainer", "custom_config") == "trainer_config"
    assert reads("Evaluator", "eval_config") == "eval_config"
    assert spec["defaultPipelineRoot"] == str(compiled.root)
    # ExampleGen's output depends on files KFP's cache key does not see: never served from the cache.
    assert tasks["CsvExampleGen"]["cachingOptions"] == {}
    assert tasks["Trainer"]["cachingOptions"] == {"enableCache": True}


def test_compiling_twice_gives_the_same_spec_and_yaml_holds_the_same(compiled):
    first, again = compiled.path.read_text(), (compiled.base / "again.json").read_text()
    if again != first:
        # The spec carries a digest of components/*.py (code_version, for TFX's cache); only an edit of that code
        # between the two compiles may change it, and nothing else may differ.
        versions = re.compile(r'(code_version\\?": \\?")([0-9a-f]{16})')
        assert versions.sub(r"\1-", again) == versions.sub(r"\1-", first), "compiling twice gave different specs"
        assert len({m.group(2) for m in versions.finditer(first + again)}) == 2
    text = (compiled.base / "spec.yaml").read_text()
    assert text.startswith("# PIPELINE DEFINITION")
    assert yaml.safe_load(text) == json.loads(again)["pipelineSpec"]


def test_compiling_touches_no_pipeline_root(compiled):
    assert not compiled.root.exists()
    text = compiled.path.read_text()
    assert "_wheels" not in text and ".whl" not in text
    assert sorted(p.name for p in compiled.base.iterdir()) == ["again.json", "cli.json", "spec.yaml"]


@pytest.mark.parametrize("args, fragments", [
    (["--name", "Bad_Name"], ["--name 'Bad_Name'"]),
    (["--dataset", "custom"], ["needs --data-root"]),
    (["--data-root", "relative/folder"], ["--data-root 'relative/folder'", "absolute path"]),
    (["--dataset", "custom", "--data-root", "gs://b/d"], ["--labels"]),
    (["--input-splits", "train,test"], ["'eval' split"]),
])
def test_compile_input_errors(tmp_path, capsys, compiled, args, fragments):
    assert kfp_cli.main(["compile", "--output", str(tmp_path / "x.json"), "--pipeline-root", "gs://b/r", *args]) == 2
    assert_one_error(capsys.readouterr().err, *fragments)
    assert not (tmp_path / "x.json").exists()


def test_compile_custom_data_in_span_folders(tmp_path, capsys, compiled):
    output = tmp_path / "spans.yaml"
    args = ["compile", "--output", str(output), "--dataset", "custom", "--data-root", "gs://b/incoming", "--spans",
            "--labels", "neg,pos", "--text-column", "review", "--serving-dir", "gs://b/serving", "--image", IMAGE]
    # Without a schema the pipeline freezes one under the pipeline root: it needs to know where that is.
    assert kfp_cli.main(args) == 2
    assert_one_error(capsys.readouterr().err, "pass --pipeline-root (or --schema)")
    assert kfp_cli.main([*args, "--pipeline-root", "gs://b/root"]) == 0
    spec = yaml.safe_load(output.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    example_gen = tasks["CsvExampleGen"]
    patterns = json.loads(example_gen["inputs"]["parameters"]["input_config"]["runtimeValue"]["constant"])
    assert patterns == {"splits": [{"name": "all", "pattern": "span-{SPAN}/*.csv"}]}
    assert example_gen["cachingOptions"] == {}  # the same data_root brings a new span each time
    # No curated schema: SchemaGen's, curated, validates the first span and is frozen once accepted; later runs use
    # the frozen one (SchemaCurator reads it from the pipeline root when it is there).
    assert "ImportSchemaGen" not in tasks
    constant = lambda task, key: tasks[task]["inputs"]["parameters"][key]["runtimeValue"]["constant"]  # noqa: E731
    assert constant("SchemaCurator", "frozen_dir") == constant("SchemaFreezer", "frozen_dir") == "gs://b/root/schema"
    assert json.loads(constant("SchemaCurator", "label_names")) == ["neg", "pos"]
    assert "TextValidationGate" in tasks["SchemaFreezer"].get("dependentTasks", [])
    assert json.loads(spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])[
        "text_key"] == "review"


def test_help_of_every_subcommand(capsys):
    for command in ("compile", "upload", "run", "schedule"):
        with pytest.raises(SystemExit) as exit_info:
            kfp_cli.main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"run_kubeflow.py {command}" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------------------
# upload / run / schedule against the stub

@pytest.fixture
def stub(monkeypatch, tmp_path):
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    for key in (client.ENV_ENDPOINT, client.ENV_TOKEN, client.ENV_COOKIE):
        monkeypatch.delenv(key, raising=False)
    server = KfpStub().start()
    yield server
    server.stop()


@pytest.fixture
def cli(capsys):
    def call(*args):
        status = kfp_cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return SimpleNamespace(status=status, out=out, err=err)
    return call


def _parameters(request) -> dict:
    return request.body["runtime_config"]["parameters"]


def test_upload_new_pipeline(stub, cli, compiled, monkeypatch):
    monkeypatch.setenv(client.ENV_TOKEN, "secret-token")
    result = cli("upload", "--host", stub.url, "--description", "BERT text classifier", compiled.path)
    assert result.status == 0, result.err
    assert [(r.method, r.path) for r in stub.requests] == [
        ("GET", "/apis/v2beta1/healthz"), ("GET", "/apis/v2beta1/pipelines"),
        ("POST", "/apis/v2beta1/pipelines/upload"), ("GET", "/apis/v2beta1/pipelines/pipeline-1/versions")]
    assert all(r.headers.get("authorization") == "Bearer secret-token" for r in stub.requests)
    lookup = json.loads(stub.requests[1].query["filter"])["predicates"][0]
    assert lookup["key"] == "display_name" and lookup["stringValue"] == NAME
    upload = stub.requests[2]
    assert upload.query == {"name": NAME, "description": "BERT text classifier"}
    assert upload.body["uploadfile"]["filename"].endswith(".yaml")
    uploaded = yaml.safe_load(upload.body["uploadfile"]["content"])
    json_format.ParseDict(uploaded, pipeline_spec_pb2.PipelineSpec())
    assert uploaded == compiled.spec  # the bare PipelineSpec, defaults and pipeline root included
    version = stub.versions["pipeline-1"][0]["pipeline_version_id"]
    assert "pipeline-1" in result.out and version in result.out
    assert f"{stub.url}/#/pipelines/details/pipeline-1/version/{version}" in result.out


def test_upload_existing_name_adds_a_version(stub, cli, compiled):
    pipeline = stub.add_pipeline(NAME)
    result = cli("upload", "--host", stub.url, "--version", "v2", compiled.path)
    assert result.status == 0, result.err
    assert not stub.calls("POST", "/apis/v2beta1/pipelines/upload")
    (upload,) = stub.calls("POST", "/apis/v2beta1/pipelines/upload_version")
    assert upload.query == {"name": "v2", "pipelineid": pipeline["pipeline_id"]}
    assert yaml.safe_load(upload.body["uploadfile"]["content"]) == compiled.spec
    version = stub.versions[pipeline["pipeline_id"]][-1]["pipeline_version_id"]
    assert f"/#/pipelines/details/{pipeline['pipeline_id']}/version/{version}" in result.out
    # The default version name is unique per upload; a repeated explicit one is refused by the server.
    assert cli("upload", "--host", stub.url, compiled.path).status == 0
    assert stub.calls("POST", "/apis/v2beta1/pipelines/upload_version")[-1].query["name"].startswith(NAME + "-")
    again = cli("upload", "--host", stub.url, "--version", "v2", compiled.path)
    assert again.status == 1
    assert_one_error(again.err, "already has a version named 'v2'", "HTTP 409")


def test_upload_name_taken_in_another_namespace(stub, compiled):
    stub.names_elsewhere.add(NAME)
    proc = run_cli("upload", "--host", stub.url, "--namespace", "team-a", compiled.path)
    assert proc.returncode == 1
    assert_one_error(proc.stderr, f"a pipeline named '{NAME}' already exists outside namespace team-a",
                     "another namespace", "--name")
    (upload,) = stub.calls("POST", "/apis/v2beta1/pipelines/upload")
    assert upload.query["namespace"] == "team-a"
    assert stub.calls("GET", "/apis/v2beta1/pipelines")[0].query["namespace"] == "team-a"


def test_upload_refuses_a_pipeline_listed_under_another_namespace(stub, cli, compiled):
    stub.add_pipeline(NAME, namespace="team-b")
    stub.list_ignores_namespace = True
    result = cli("upload", "--host", stub.url, "--namespace", "team-a", compiled.path)
    assert result.status == 1
    assert_one_error(result.err, f"'{NAME}' already exists in namespace team-b, not team-a", "--name")
    assert not stub.calls("POST", "/apis/v2beta1/pipelines/upload_version")
    assert not stub.calls("POST", "/apis/v2beta1/pipelines/upload")


def test_run_spec_file_with_parameters(stub, cli, compiled):
    result = cli("run", "--host", stub.url, "--experiment", "nightly", "--run-name", "try-1",
                 "--param", "data_root=gs://bucket/span-7", "--param", "epochs=5", "--param", "train_steps=100",
                 "--param", "learning_rate=1e-4", "--param", "min_accuracy=0.75", "--pipeline-root", "gs://b/r2",
                 compiled.path)
    assert result.status == 0, result.err
    (create_experiment,) = stub.calls("POST", "/apis/v2beta1/experiments")
    assert create_experiment.body["display_name"] == "nightly"
    (run,) = stub.calls("POST", "/apis/v2beta1/runs")
    assert run.body["display_name"] == "try-1"
    assert run.body["experiment_id"] == next(iter(stub.experiments))
    assert run.body["pipeline_spec"] == compiled.spec and "pipeline_version_reference" not in run.body
    assert run.body["runtime_config"]["pipeline_root"] == "gs://b/r2"
    params = _parameters(run)
    assert set(params) == PARAMETERS
    assert params["data_root"] == "gs://bucket/span-7"
    assert json.loads(params["train_args"]) == {"splits": ["train"], "num_steps": 100}
    trainer = json.loads(params["trainer_config"])
    defaults = json.loads(compiled.spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    assert trainer == {**defaults, "epochs": 5, "learning_rate": 1e-4}  # merged: the other settings are kept
    accuracy = json.loads(params["eval_config"])["metrics_specs"][0]["metrics"][1]["threshold"]
    assert accuracy["value_threshold"]["lower_bound"] == 0.75 and accuracy["change_threshold"]["absolute"] == -0.01
    assert f"{stub.url}/#/runs/details/{next(iter(stub.runs))}" in result.out


def test_run_uploaded_pipeline_by_id(stub, cli, compiled):
    pipeline = stub.add_pipeline(NAME, spec=specs.load_spec(str(compiled.path)))
    version = stub.versions[pipeline["pipeline_id"]][-1]["pipeline_version_id"]
    result = cli("run", "--host", stub.url, "--pipeline-id", pipeline["pipeline_id"], "--param", "epochs=4",
                 "--no-cache")
    assert result.status == 0, result.err
    (listing,) = stub.calls("GET", f"/apis/v2beta1/pipelines/{pipeline['pipeline_id']}/versions")
    assert listing.query["sort_by"] == "created_at desc"
    (run,) = stub.calls("POST", "/apis/v2beta1/runs")
    assert run.body["pipeline_version_reference"] == {"pipeline_id": pipeline["pipeline_id"],
                                                      "pipeline_version_id": version}
    assert "pipeline_spec" not in run.body
    assert json.loads(_parameters(run)["trainer_config"])["epochs"] == 4


@pytest.mark.parametrize("param, fragments", [
    ("epochs=many", ["--param epochs=many", "not an integer"]),
    ("no_such=1", ["unknown parameter 'no_such'", "data_root"]),
    ("data_root=relative/dir", ["data_root 'relative/dir'"]),
    ("trainer_config=[1]", ["trainer_config", "JSON object"]),
    ("missing-equals", ["is not NAME=VALUE"]),
])
def test_run_rejects_bad_parameters_before_connecting(stub, cli, compiled, param, fragments):
    result = cli("run", "--host", stub.url, "--param", param, compiled.path)
    assert result.status == 2
    assert_one_error(result.err, *fragments)
    assert stub.requests == []


def test_schedule_creates_a_recurring_run(stub, cli, compiled):
    result = cli("schedule", "--host", stub.url, "--cron", "0 3 * * 1", "--experiment", "weekly",
                 "--param", "epochs=2", compiled.path)
    assert result.status == 0, result.err
    (create,) = stub.calls("POST", "/apis/v2beta1/recurringruns")
    body = create.body
    assert body["display_name"] == f"{NAME}-retraining"
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * 1"}}
    assert int(body["max_concurrency"]) == 1 and body["no_catchup"] is True and body["mode"] == "ENABLE"
    assert body["experiment_id"] == next(iter(stub.experiments))
    assert body["pipeline_spec"] == compiled.spec
    assert json.loads(_parameters(create)["trainer_config"])["epochs"] == 2
    assert f"/#/recurringrun/details/{next(iter(stub.recurring_runs))}" in result.out
    # A second schedule of the same name is refused rather than doubling the retraining.
    again = cli("schedule", "--host", stub.url, "--cron", "0 3 * * 1", compiled.path)
    assert again.status == 1
    assert_one_error(again.err, f"'{NAME}-retraining' already exists", "--delete")
    assert len(stub.calls("POST", "/apis/v2beta1/recurringruns")) == 1


def test_schedule_an_uploaded_pipeline_by_name(stub, cli, compiled):
    pipeline = stub.add_pipeline(NAME, spec=specs.load_spec(str(compiled.path)))
    result = cli("schedule", "--host", stub.url, "--cron", "0 0 3 ? * MON", "--pipeline", NAME, "--name", "weekly",
                 "--paused")
    assert result.status == 0, result.err
    (create,) = stub.calls("POST", "/apis/v2beta1/recurringruns")
    assert create.body["display_name"] == "weekly" and create.body["mode"] == "DISABLE"
    assert create.body["trigger"]["cron_schedule"]["cron"] == "0 0 3 ? * MON"
    assert create.body["pipeline_version_reference"]["pipeline_id"] == pipeline["pipeline_id"]


@pytest.mark.parametrize("flag, by_id, method, suffix", [
    ("--pause", False, "POST", ":disable"),
    ("--resume", True, "POST", ":enable"),
    ("--delete", False, "DELETE", ""),
])
def test_schedule_pause_resume_delete(stub, cli, flag, by_id, method, suffix):
    job = stub.add_recurring_run("weekly-bert")
    target = job["recurring_run_id"] if by_id else "weekly-bert"
    result = cli("schedule", "--host", stub.url, flag, target)
    assert result.status == 0, result.err
    assert stub.calls(method, f"/apis/v2beta1/recurringruns/{job['recurring_run_id']}{suffix}")
    assert job["recurring_run_id"] in result.out
    missing = cli("schedule", "--host", stub.url, flag, "no-such-schedule")
    assert missing.status == 1
    assert_one_error(missing.err, "no recurring run named or with id 'no-such-schedule'")


@pytest.mark.parametrize("expression, expected", [
    ("0 3 * * 1", "0 0 3 * * 1"),
    ("*/15  * * * *", "0 */15 * * * *"),
    ("30 0 3 ? * MON-FRI", "30 0 3 ? * MON-FRI"),
    ("0 3 1,15 jan-jun *", "0 0 3 1,15 jan-jun *"),
    ("@weekly", "@weekly"),
])
def test_cron_accepted(expression, expected):
    assert cron.normalize_cron(expression) == expected


@pytest.mark.parametrize("expression, fragment", [
    ("0 3 * *", "4 fields"),
    ("0 0 3 * * 1 2026", "7 fields"),
    ("60 3 * * 1", "minute field '60'"),
    ("0 24 * * 1", "hour field '24'"),
    ("0 3 * * 7", "0 is Sunday"),
    ("0 3 0 * *", "day-of-month field '0'"),
    ("0 3 * 13 *", "month field '13'"),
    ("0 3 * * MOX", "'MOX'"),
    ("*/0 3 * * 1", "step"),
    ("0 5-3 * * *", "backwards"),
    ("0 ? * * *", "'?'"),
    ("@fortnightly", "unknown descriptor"),
    ("", "empty"),
])
def test_cron_rejected(expression, fragment):
    with pytest.raises(errors.UserError, match="cron expression") as error:
        cron.normalize_cron(expression)
    assert fragment in str(error.value)


def test_bad_cron_is_one_line_and_no_request(stub, compiled):
    proc = run_cli("schedule", "--host", stub.url, "--cron", "0 3 * * 8", compiled.path)
    assert proc.returncode == 2
    assert_one_error(proc.stderr, "invalid cron expression '0 3 * * 8'", "day-of-week")
    assert stub.requests == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["upload"], ["run"], ["schedule", "--cron", "0 3 * * 1"]])
def test_unreachable_host(compiled, command):
    host = f"http://127.0.0.1:{_closed_port()}"
    proc = run_cli(*command, "--host", host, compiled.path)
    assert proc.returncode == 1
    assert_one_error(proc.stderr, f"cannot reach the Kubeflow Pipelines API at {host}", "Connection refused")


@pytest.mark.parametrize("status, fragments", [
    (401, ["unauthenticated (HTTP 401", client.ENV_TOKEN]),
    (403, ["denied access in namespace team-a (HTTP 403", "PermissionDenied"]),
])
def test_authentication_refused(stub, compiled, status, fragments):
    stub.deny = status
    proc = run_cli("run", "--host", stub.url, "--namespace", "team-a", compiled.path)
    assert proc.returncode == 1
    assert_one_error(proc.stderr, *fragments)
    assert [r.path for r in stub.requests] == ["/apis/v2beta1/healthz"]  # one try, no retry loop


def test_host_that_is_not_the_kfp_api(cli, monkeypatch, tmp_path, compiled):
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    class LoginPage(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body>Sign in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), LoginPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = cli("upload", "--host", f"http://127.0.0.1:{server.server_address[1]}", compiled.path)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == 1
    assert_one_error(result.err, "not as the Kubeflow Pipelines API", "text/html")


def test_missing_or_invalid_spec_file(stub, cli, tmp_path):
    missing = tmp_path / "missing.json"
    proc = run_cli("upload", "--host", stub.url, missing)
    assert proc.returncode == 2
    assert_one_error(proc.stderr, f"spec file {missing} does not exist")
    (tmp_path / "broken.json").write_text('{"pipelineSpec": ')
    (tmp_path / "other.json").write_text('{"hello": "world"}')
    (tmp_path / "broken.yaml").write_text("root: [\n")
    (tmp_path / "empty.yaml").write_text("")
    for name, fragment in [("broken.json", "is not a pipeline spec"), ("other.json", "is not a KFP pipeline spec"),
                           ("broken.yaml", "is not a pipeline spec"), ("empty.yaml", "is not a pipeline spec")]:
        for command in (["upload"], ["run"], ["schedule", "--cron", "@daily"]):
            result = cli(*command, "--host", stub.url, tmp_path / name)
            assert result.status == 2, (name, command)
            assert_one_error(result.err, str(tmp_path / name), fragment)
    assert stub.requests == []  # nothing is sent for a spec that cannot be read


def test_json_parameter_and_its_fields_are_not_mixed(compiled):
    with pytest.raises(errors.UserError, match="one or the other"):
        parameters.resolve_parameters(compiled.spec, ["trainer_config={}", "epochs=3"])
    assert "num_steps" not in json.loads(parameters.resolve_parameters(compiled.spec, ["train_steps=0"])["train_args"])
    assert parameters.resolve_parameters(compiled.spec, []) == {}


# ----------------------------------------------------------------------------------------------------------------
# The settings contract, through the compiled spec

def test_every_trainer_setting_is_in_the_runtime_parameter_and_settable_per_run(compiled):
    """Each TrainerSettings field reaches the spec's trainer_config with the value compile was given (its default
    unless a flag set it), and each hyperparameter can be changed per run with --param; what results is a config
    run_fn reads (strictly)."""
    import dataclasses

    from components.trainer_settings import TrainerSettings, hyperparameters

    declared = compiled.spec["root"]["inputDefinitions"]["parameters"]
    default = json.loads(declared["trainer_config"]["defaultValue"])
    given = {"epochs": 2, "learning_rate": 3e-5}  # COMPILE_ARGS
    for field in dataclasses.fields(TrainerSettings):
        assert field.name in default, field.name
        if field.metadata["flag"]:
            assert default[field.name] == given.get(field.name, field.default), field.name
    assert TrainerSettings.from_custom_config(default).epochs == 2
    for field in hyperparameters():
        value = {bool: "true", int: "7", float: "0.25", str: None}[type(field.default)]
        if value is None:
            value = next(c for c in field.metadata["choices"] if c != field.default)
        if field.name == "warm_start":
            continue  # needs a spec compiled with --warm-start: test_warm_start_is_compiled_in
        merged = json.loads(parameters.resolve_parameters(compiled.spec, [f"{field.name}={value}"])["trainer_config"])
        expected = {"true": True, "7": 7, "0.25": 0.25}.get(value, value)
        assert merged == {**default, field.name: expected}, field.name
        assert getattr(TrainerSettings.from_custom_config(merged), field.name) == expected


def test_a_partial_trainer_config_is_refused_before_connecting(stub, cli, compiled):
    declared = compiled.spec["root"]["inputDefinitions"]["parameters"]
    partial = json.loads(declared["trainer_config"]["defaultValue"])
    del partial["pretrained_dir"], partial["epochs"]
    result = cli("run", "--host", stub.url, "--param", f"trainer_config={json.dumps(partial)}", compiled.path)
    assert result.status == 2
    assert_one_error(result.err, "trainer_config", "missing key(s) pretrained_dir, epochs")
    assert stub.requests == []
    for bad, fragment in [("dropout=1.5", "between 0 and 1"), ("pooling=max", "one of cls, mean"),
                          ("epochs=0", "not a positive integer"), ("warm_start=maybe", "not true or false")]:
        with pytest.raises(errors.UserError, match=fragment):
            parameters.resolve_parameters(compiled.spec, [bad])


def test_local_options_the_compiler_allows(tmp_path, compiled):
    """--vocab learn and --warm-start compile (a rolling span window does not: no span-range resolver in TFX's V2
    compiler, refused in one line by test_settings.py)."""
    learned = tmp_path / "learned.json"
    assert kfp_cli.main(["compile", "--output", str(learned), "--pipeline-root", "gs://b/r", "--pretrained", "none",
                         "--vocab", "learn", "--vocab-size", "3000"]) == 0
    tasks = json.loads(learned.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]
    transform = json.loads(tasks["Transform"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert transform["vocab_mode"] == "learn" and transform["learned_vocab_size"] == 3000
    assert transform["vocab_file"] == ""

    warm = tmp_path / "warm.json"
    assert kfp_cli.main(["compile", "--output", str(warm), "--pipeline-root", "gs://b/r", "--warm-start"]) == 0
    spec = json.loads(warm.read_text())["pipelineSpec"]
    trainer = spec["root"]["dag"]["tasks"]["Trainer"]
    assert trainer["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]["producerTask"] == \
        "latest_blessed_model_resolver-model-resolver"
    off = json.loads(parameters.resolve_parameters(spec, ["warm_start=false"])["trainer_config"])
    assert off["warm_start"] is False
    # Without --warm-start the Trainer has no model in service to start from: turning it on per run is refused.
    assert "base_model" not in compiled.spec["root"]["dag"]["tasks"]["Trainer"]["inputs"].get("artifacts", {})
    with pytest.raises(errors.UserError, match="compile with --warm-start"):
        parameters.resolve_parameters(compiled.spec, ["warm_start=true"])


# ----------------------------------------------------------------------------------------------------------------
# The Trainer as a multi-worker Vertex AI Training job (--trainer-workers N)

VERTEX_ARGS = ["--trainer-workers", "3", "--trainer-machine-type", "n1-highmem-16", "--vertex-project", "my-project",
               "--vertex-region", "europe-west4"]
PLAIN_TRAINER = "tfx.components.trainer.executor.GenericExecutor"
VERTEX_TRAINER = "components.trainer_executor.VertexTrainerExecutor"


def _trainer_executor(spec: dict) -> dict:
    component = spec["root"]["dag"]["tasks"]["Trainer"]["componentRef"]["name"]
    return spec["deploymentSpec"]["executors"][spec["components"][component]["executorLabel"]]["container"]


def _class_path(container: dict) -> str:
    return container["args"][container["args"].index("--executor_class_path") + 1]


@pytest.fixture(scope="module")
def vertex_spec(tmp_path_factory):
    output = tmp_path_factory.mktemp("kfp-vertex") / "vertex.json"
    with process_state_kept():
        assert kfp_cli.main(["compile", *COMPILE_ARGS, *VERTEX_ARGS, "--pipeline-root", "gs://bucket/root",
                             "--output", str(output)]) == 0
    return json.loads(output.read_text())["pipelineSpec"]


def test_one_trainer_worker_keeps_the_plain_trainer(compiled):
    assert _class_path(_trainer_executor(compiled.spec)) == PLAIN_TRAINER
    default = json.loads(compiled.spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    assert not [key for key in default if key.startswith("ai_platform_")]


def test_trainer_workers_run_the_trainer_as_a_vertex_job(vertex_spec, compiled):
    from components.trainer_settings import TrainerSettings

    tasks = vertex_spec["root"]["dag"]["tasks"]
    assert set(tasks) == set(compiled.spec["root"]["dag"]["tasks"])  # the same DAG, the node id still Trainer
    container = _trainer_executor(vertex_spec)
    assert _class_path(container) == VERTEX_TRAINER and container["image"] == IMAGE
    assert tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["componentInputParameter"] == "trainer_config"
    config = json.loads(vertex_spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    assert config["ai_platform_enable_vertex"] is True
    assert config["ai_platform_vertex_region"] == "europe-west4"
    job = config["ai_platform_training_args"]
    assert job["project"] == "my-project"
    pools = job["job_spec"]["worker_pool_specs"]
    machine = {"machine_type": "n1-highmem-16"}
    # Vertex AI: the first pool is the chief (one replica), the second the other workers; every replica runs the
    # pipeline's image (TFX's executor sets the command).
    assert pools == [{"machine_spec": machine, "replica_count": 1, "container_spec": {"image_uri": IMAGE}},
                     {"machine_spec": machine, "replica_count": 2, "container_spec": {"image_uri": IMAGE}}]
    # run_fn reads the same settings as from the plain Trainer's config (the ai_platform_* keys are TFX's).
    assert TrainerSettings.from_custom_config(config).epochs == 2
    plain = json.loads(compiled.spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    assert {k: v for k, v in config.items() if not k.startswith("ai_platform_")} == plain


def test_vertex_trainer_config_per_run_keeps_the_worker_pools(vertex_spec):
    default = json.loads(vertex_spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    merged = json.loads(parameters.resolve_parameters(vertex_spec, ["epochs=5"])["trainer_config"])
    assert merged == {**default, "epochs": 5}
    # A whole trainer_config without the compiled ai_platform_* keys would fail in the Trainer step: refused now.
    bare = {k: v for k, v in default.items() if not k.startswith("ai_platform_")}
    with pytest.raises(errors.UserError, match="ai_platform_enable_vertex, ai_platform_training_args, "
                                               "ai_platform_vertex_region"):
        parameters.resolve_parameters(vertex_spec, [f"trainer_config={json.dumps(bare)}"])
    assert parameters.resolve_parameters(vertex_spec, [f"trainer_config={json.dumps(default)}"])


@pytest.mark.parametrize("args, fragments", [
    (["--trainer-workers", "2"], ["--trainer-workers 2", "needs --vertex-project"]),
    (["--trainer-workers", "4", "--vertex-project", "p"], ["--trainer-workers 4", "needs --vertex-region"]),
    (["--trainer-workers", "2", "--vertex-region", "r"], ["needs --vertex-project"]),
    (["--trainer-workers", "0"], ["--trainer-workers must be 1 or more, not 0"]),
    (["--trainer-workers", "-3"], ["--trainer-workers must be 1 or more, not -3"]),
    (["--vertex-project", "p"], ["--vertex-project applies only with --trainer-workers above 1"]),
    (["--trainer-machine-type", "n1-standard-4"], ["--trainer-machine-type applies only with --trainer-workers"]),
])
def test_trainer_workers_errors(tmp_path, capsys, args, fragments):
    output = tmp_path / "x.json"
    assert kfp_cli.main(["compile", "--output", str(output), "--pipeline-root", "gs://b/r", *args]) == 2
    assert_one_error(capsys.readouterr().err, *fragments)
    assert not output.exists()


def test_vertex_workers_need_a_cloud_storage_pipeline_root(tmp_path, capsys):
    output = tmp_path / "x.json"
    assert kfp_cli.main(["compile", "--output", str(output), *VERTEX_ARGS, "--pipeline-root", "/mnt/pipeline"]) == 2
    assert_one_error(capsys.readouterr().err, "--pipeline-root must be on Cloud Storage", "/mnt/pipeline")
