"""The Kubeflow harness's own model of the backend (tests/support/kfp_local.py, kfp_storage.py), checked against the
backend's own tests and against what an administrator configures, on small specs that run in seconds:

- the cache key and its fingerprint are the backend's: the expected values of kubeflow/pipelines' Go tests
  (backend/src/v2/cacheutils/cache_test.go at 2.17.0, tests/fixtures/kfp_cache_keys.json);
- the launcher's store session is the backend's: every s3:// and minio:// case of its Go tests
  (backend/src/v2/config/env_test.go at 2.17.0, tests/fixtures/kfp_launcher_sessions.json);
- the launcher reaches the store through the kfp-launcher ConfigMap that docs/kubeflow.md tells an administrator to
  write, with its own secret, and through nothing the spec hands the pods: a spec that carries the endpoint and the
  keys for its pods (as `run_kubeflow.py compile` writes them) still fails on an install whose ConfigMap has no
  `providers.s3`, as a stock 2.17.0 install's has none (manifests/kustomize/base/pipeline/kfp-launcher-configmap.yaml);
- the pods' secretAsEnv is read as the driver reads it (secretNameParameter first, `optional`).

The tasks here are two `python -c` steps that write and read a file through the launcher's local paths (the
launcher's copies are the point, not TFX), on the tests' S3 server (support/s3_server.py)."""

import json
import re
from pathlib import Path

import pytest

from support import REPO, kfp_local, kfp_storage
from support.kubeflow import SECRETS, documented_launcher_config
from support.s3_server import ACCESS_KEY, SECRET_KEY

FIXTURES = REPO / "tests" / "fixtures"
BUCKET = "kfp-launcher-tests"

WRITE = ("import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.mkdir(parents=True); "
         "(p / 'data.txt').write_text('x' * 42)")
READ = ("import sys, pathlib; n = len((pathlib.Path(sys.argv[1]) / 'data.txt').read_text()); "
        "pathlib.Path(sys.argv[2]).write_text(str(n))")


def small_spec() -> dict:
    """Two container tasks: `write` leaves a folder at its output's local path, `read` reads it back from its input's
    local path and reports its size as an output parameter."""
    dataset = {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}
    return {
        "schemaVersion": "2.1.0", "sdkVersion": "handwritten", "pipelineInfo": {"name": "launcher-check"},
        "components": {
            "comp-write": {"executorLabel": "exec-write",
                           "outputDefinitions": {"artifacts": {"data": {"artifactType": dataset}}}},
            "comp-read": {"executorLabel": "exec-read",
                          "inputDefinitions": {"artifacts": {"data": {"artifactType": dataset}}},
                          "outputDefinitions": {"parameters": {"size": {"parameterType": "NUMBER_INTEGER"}}}}},
        "deploymentSpec": {"executors": {
            "exec-write": {"container": {"image": "python:3.11", "command": ["python", "-c", WRITE],
                                         "args": ["{{$.outputs.artifacts['data'].path}}"]}},
            "exec-read": {"container": {"image": "python:3.11", "command": ["python", "-c", READ],
                                        "args": ["{{$.inputs.artifacts['data'].path}}",
                                                 "{{$.outputs.parameters['size'].output_file}}"]}}}},
        "root": {"dag": {"tasks": {
            "write": {"taskInfo": {"name": "write"}, "componentRef": {"name": "comp-write"}},
            "read": {"taskInfo": {"name": "read"}, "componentRef": {"name": "comp-read"}, "dependentTasks": ["write"],
                     "inputs": {"artifacts": {"data": {"taskOutputArtifact": {"producerTask": "write",
                                                                             "outputArtifactKey": "data"}}}}}}}},
    }


@pytest.fixture(scope="module")
def store(s3_server):
    s3_server.bucket(BUCKET)
    return s3_server


def run(spec, tmp_path, *, launcher, secrets=SECRETS, env=None, platform=None, run_id="run-1"):
    if platform:
        spec = {"pipelineSpec": spec, "platformSpec": platform}
    return kfp_local.execute_spec(spec, f"s3://{BUCKET}/{tmp_path.name}", env or {}, launcher=launcher,
                                  secrets=secrets, scratch_root=tmp_path / "pods", run_id=run_id)


# -- the backend's own expectations ------------------------------------------------------------------------------

CACHE = json.loads((FIXTURES / "kfp_cache_keys.json").read_text())


@pytest.mark.parametrize("case", CACHE["generateCacheKey"], ids=lambda c: c["test"])
def test_the_cache_key_is_the_backends(case):
    key = kfp_local.cache_key(case["executorInput"], case["outputParametersTypeMap"], case["cmdArgs"], case["image"],
                              case["pvcNames"])
    assert key == case["want"]


@pytest.mark.parametrize("case", CACHE["generateFingerPrint"], ids=lambda c: c["test"])
def test_the_fingerprint_is_the_backends(case):
    assert kfp_local.fingerprint(case["cacheKey"]) == case["fingerPrint"]


def test_the_drivers_fingerprint_of_a_task_is_the_backends():
    """From an ExecutorInput and a container, as the driver computes it: the Go test's second key (no input
    parameters, no output artifacts: fields protojson leaves out)."""
    executor_input = {"inputs": {"artifacts": {"dataset": {"artifacts": [{"name": "10", "uri": "s3://b/r/t/d"}]}}},
                      "outputs": {"parameters": {"output_parameter": {"outputFile": "/tmp/kfp/outputs/x"}},
                                  "outputFile": "/s3/b/r/t/output_metadata.json"}}
    outputs = {"parameters": {"output_parameter": {"parameterType": "DOUBLE"}}}
    container = {"image": "python:3.11", "command": ["sh", "ec"], "args": ["run"]}
    expected = CACHE["generateFingerPrint"][1]
    assert expected["cacheKey"]["containerSpec"]["cmdArgs"] == ["sh", "ec", "run"]
    assert kfp_local.cache_fingerprint(executor_input, outputs, container) == expected["fingerPrint"]


SESSIONS = json.loads((FIXTURES / "kfp_launcher_sessions.json").read_text())


@pytest.mark.parametrize("case", SESSIONS["cases"], ids=lambda c: f"L{c['line']}")
def test_the_launchers_store_session_is_the_backends(case):
    config = {"providers": case["providers"]} if case["providers"] else {}
    if "error" in case:
        with pytest.raises(kfp_storage.LauncherError, match=re.escape(case["error"])):
            kfp_storage.store_session(config, case["pipelineRoot"])
    else:
        session = kfp_storage.store_session(config, case["pipelineRoot"])
        assert {"Provider": session.provider, "Params": session.params} == case["session"]


# -- the launcher's store, configured by an administrator ---------------------------------------------------------

def test_the_launcher_reaches_the_store_through_the_documented_configmap_alone(store, tmp_path):
    """The pods have no store settings at all; the launcher copies the artifact up and down with the ConfigMap's
    endpoint and its secret's keys, and records that session on the artifact."""
    config = documented_launcher_config(store.endpoint.split("://", 1)[1])
    results = run(small_spec(), tmp_path, launcher=config)
    assert [r.status for r in results.values()] == ["SUCCEEDED", "SUCCEEDED"], [r.log_tail() for r in
                                                                                results.values()]
    uri = results["write"].artifacts["data"][0]["uri"]
    assert uri.startswith(f"s3://{BUCKET}/{tmp_path.name}/launcher-check/run-1/write/")
    assert results["write"].uploads == {"data": "uploaded 1 files"}
    key = uri.split(f"s3://{BUCKET}/", 1)[1] + "/data.txt"
    assert store.read(BUCKET, key) == b"x" * 42  # uploaded by the launcher, from the pod's disk
    assert results["read"].downloaded == [key] and results["read"].parameters == {"size": 42.0}
    given = results["read"].executor_input["inputs"]["artifacts"]["data"]["artifacts"][0]
    session = json.loads(given["metadata"]["store_session_info"])
    assert session["Provider"] == "s3" and session["Params"]["endpoint"] == store.endpoint.split("://", 1)[1]
    assert session["Params"]["secretName"] == "mlpipeline-minio-artifact" and session["Params"]["disableSSL"] == "true"
    opened = kfp_storage.Launcher(f"s3://{BUCKET}/x", kfp_storage.Session(session["Provider"], session["Params"]),
                                  SECRETS, {}).default
    assert (opened.endpoint, opened.access_key, opened.secret_key) == (store.endpoint, ACCESS_KEY, SECRET_KEY)


def _pods_given_the_store(spec, endpoint):
    """The spec as `run_kubeflow.py compile --s3-endpoint ENDPOINT` shapes it: the endpoint in every container's env,
    the default secret's keys through the platform spec."""
    from pipeline.kubeflow import storage

    return storage.apply(spec, endpoint, storage.DEFAULT_SECRET)


STOCK_2_17 = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kfp-launcher"},
              "data": {"defaultPipelineRoot": ""}}  # kfp-launcher-configmap.yaml at 2.17.0, its root left empty


@pytest.mark.parametrize("launcher", [STOCK_2_17, None, "misnamed"], ids=["stock 2.17.0", "none", "misnamed"])
def test_a_spec_that_hands_its_pods_the_store_fails_where_the_launcher_has_no_providers(store, tmp_path, launcher):
    if launcher == "misnamed":  # the driver reads kfp-launcher by name: a ConfigMap of another name is never read
        launcher = documented_launcher_config(store.endpoint.split("://", 1)[1])
        launcher["metadata"]["name"] = "kfp-launcher-s3"
    spec = small_spec()
    platform = _pods_given_the_store(spec, store.endpoint)
    assert platform and spec["deploymentSpec"]["executors"]["exec-write"]["container"]["env"]
    results = run(spec, tmp_path, launcher=launcher, platform=platform)
    write = results["write"]
    assert write.status == "FAILED" and write.returncode is None  # the launcher stopped before the command
    assert "no providers.s3 in the kfp-launcher ConfigMap" in write.launcher_error
    assert results["read"].status == "SKIPPED"
    assert store.keys(BUCKET, tmp_path.name) == []


def test_the_launcher_reads_the_secret_its_configmap_names(store, tmp_path):
    """Not the pods' keys, nor the default secret: the one `providers.s3` names, through the Kubernetes API."""
    config = documented_launcher_config(store.endpoint.split("://", 1)[1])
    config["data"]["providers"] = config["data"]["providers"].replace("secretName: mlpipeline-minio-artifact",
                                                                      "secretName: kfp-store-keys")
    spec = small_spec()
    platform = _pods_given_the_store(spec, store.endpoint)
    results = run(spec, tmp_path, launcher=config, platform=platform)
    assert results["write"].status == "FAILED"
    assert "failed to get Bucket credentials from secret name='kfp-store-keys'" in results["write"].launcher_error
    results = run(spec, tmp_path, launcher=config, platform=platform, run_id="run-2",
                  secrets={**SECRETS, "kfp-store-keys": {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY}})
    assert [r.status for r in results.values()] == ["SUCCEEDED", "SUCCEEDED"]


def test_a_local_folder_is_no_pipeline_root(tmp_path):
    """The root DAG's driver makes the run's store session from the root: a path is no bucket (config.go L130-134)."""
    with pytest.raises(kfp_local.RunFailed, match="unrecognized pipeline root format"):
        kfp_local.execute_spec(small_spec(), str(tmp_path / "root"), {}, scratch_root=tmp_path / "pods")
    assert not (tmp_path / "root").exists() and not (tmp_path / "pods").exists()


# -- the pods' secretAsEnv ----------------------------------------------------------------------------------------

def test_secret_as_env_is_read_as_the_driver_reads_it():
    container = {"env": [{"name": "A", "value": "1"}]}
    secrets = {"new": {"k": "from-new"}, "old": {"k": "from-old"}}
    both = {"secretAsEnv": [{"secretNameParameter": {"runtimeValue": {"constant": "new"}}, "secretName": "old",
                             "keyToEnv": [{"secretKey": "k", "envVar": "V"}]}]}
    assert kfp_storage.container_env(container, both, secrets, {}, "t") == {"A": "1", "V": "from-new"}
    from_root = {"secretAsEnv": [{"secretNameParameter": {"componentInputParameter": "secret"},
                                  "keyToEnv": [{"secretKey": "k", "envVar": "V"}]}]}
    assert kfp_storage.container_env({}, from_root, secrets, {"secret": "old"}, "t") == {"V": "from-old"}
    missing = {"secretAsEnv": [{"secretName": "absent", "keyToEnv": [{"secretKey": "k", "envVar": "V"}]}]}
    with pytest.raises(kfp_storage.LauncherError, match="secret 'absent' not found"):
        kfp_storage.container_env({}, missing, secrets, {}, "t")
    missing["secretAsEnv"][0]["optional"] = True
    assert kfp_storage.container_env({}, missing, secrets, {}, "t") == {}


def test_a_pod_whose_secret_is_missing_fails_its_task(store, tmp_path):
    config = documented_launcher_config(store.endpoint.split("://", 1)[1])
    spec = small_spec()
    platform = _pods_given_the_store(spec, store.endpoint)
    results = run(spec, tmp_path, launcher=config, platform=platform,
                  secrets={"kfp-store-keys": {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY}})
    assert results["write"].status == "FAILED"
    assert "secret 'mlpipeline-minio-artifact' not found (CreateContainerConfigError)" in \
        results["write"].launcher_error
    assert Path(results["write"].log).read_text().strip().startswith("launcher:")


def test_a_new_runs_output_folder_does_not_change_the_key():
    """The key wipes output URIs; it changes with an input's store id, a parameter's value or the command."""
    container = {"image": "i", "command": ["python", "-m", "x"], "args": ["{{$}}"]}
    out = {"name": "out", "uri": "s3://b/run-1/t/out", "type": {"schemaTitle": "t"}}
    outputs = {"artifacts": {"out": {"artifacts": [out]}}, "parameters": {}, "outputFile": "/s3/b/run-1/t/meta.json"}

    def key(artifact_id="7", value="a", uri="s3://b/run-1/t/out", command=("python", "-m", "x")):
        given = {"inputs": {"parameterValues": {"p": value},
                            "artifacts": {"in": {"artifacts": [{"name": artifact_id, "uri": "s3://b/u"}]}}},
                 "outputs": json.loads(json.dumps(outputs))}
        given["outputs"]["artifacts"]["out"]["artifacts"][0]["uri"] = uri
        return kfp_local.cache_fingerprint(given, {}, {**container, "command": list(command)})

    assert key() == key(uri="s3://b/run-2/t/out")
    assert len({key(), key(artifact_id="8"), key(value="b"), key(command=("python", "-m", "y"))}) == 4
