"""Tests of pipeline/run_kubeflow.py's upload, run and schedule against tests/support/kfp_stub.py, a small stand-in for
the KFP v2beta1 REST API on 127.0.0.1 that records every request, on a spec compiled as a user would (the fixtures of
tests/integration/conftest.py); cron expressions, and the errors a user can cause, each in one line.
"""

import json
import socket

import kfp
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.kubeflow import client, cron, errors, parameters, specs
from support import assert_one_error

# The fixtures (compiled, stub, cli; _keep_process_state is autouse) are ./conftest.py's.
from support.kubeflow import NAME, PARAMETERS, run_cli

# ----------------------------------------------------------------------------------------------------------------
# upload / run / schedule against the stub

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
    # The backend takes the root from the run, else from kfp-launcher's defaultPipelineRoot, never from the spec's
    # (backend/src/v2/driver/root_dag.go L97-113 at 2.17.0): the compiled one is sent.
    assert run.body["runtime_config"]["pipeline_root"] == compiled.spec["defaultPipelineRoot"] == str(compiled.root)


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
    assert body["runtime_config"]["pipeline_root"] == str(compiled.root)  # the compiled root (see run's test)
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
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


