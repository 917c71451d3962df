"""k8s/serving-request-logging.yaml: the model server with request logging, in place of TF Serving's Deployment.

Checked with the real tools as the other manifests are (tests/integration/test_k8s.py), and as the set a cluster
gets: k8s/ rendered by kustomize with this file's Deployment in place of TF Serving's must validate against the
Kubernetes schemas and pass checkov. Its command line is parsed by serve.py's own parser, so a flag it does not have
fails here rather than in a crash-looping pod; and the image (k8s/Dockerfile) must install what the server imports
beyond TFX's own dependencies, at the versions this checkout was tested with.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from support.k8s_tools import (
    DOCKERFILE,
    K8S,
    KUBERNETES_VERSIONS,
    MODEL_NAME,
    NAMESPACE,
    OPTIONAL_MANIFESTS,
    PIPELINE_IMAGE,
    REPO,
    checkov_env,
    failed_summary,
    manifest_docs,
    one_resource,
    pod_spec,
    resources,
    run_tool,
    tool,
    validate,
)

FILE = K8S / "serving-request-logging.yaml"


def documents() -> dict:
    return {d["kind"]: d for d in manifest_docs(FILE)}


def server() -> dict:
    (container,) = pod_spec(documents()["Deployment"])["containers"]
    return container


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifest_validates_against_kubernetes_schema(version):
    report = validate(version, [FILE])
    assert len([line for line in report.splitlines() if " passed for resource " in line]) == 2, report


def test_it_replaces_tf_serving_and_keeps_its_service_and_network_policy():
    assert FILE.name in OPTIONAL_MANIFESTS  # applied after `kubectl apply -k k8s/`, not with it
    mine, theirs = documents()["Deployment"], one_resource("Deployment")
    assert set(documents()) == {"Deployment", "PersistentVolumeClaim"}
    assert (mine["metadata"]["name"], mine["metadata"]["namespace"]) == (theirs["metadata"]["name"], NAMESPACE)
    assert mine["spec"]["selector"] == theirs["spec"]["selector"]
    labels = mine["spec"]["template"]["metadata"]["labels"]
    service = one_resource("Service")
    assert set(service["spec"]["selector"].items()) <= set(labels.items())
    assert any(set(p["spec"]["podSelector"].get("matchLabels", {}).items()) <= set(labels.items())
               for p in resources() if p["kind"] == "NetworkPolicy")
    container, tf_serving = server(), pod_spec(theirs)["containers"][0]
    assert container["ports"] == tf_serving["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe] == tf_serving[probe], probe
    assert pod_spec(mine)["securityContext"] == pod_spec(theirs)["securityContext"]


def test_the_server_runs_from_the_pipeline_image_and_logs_to_its_own_claim():
    from components.settings import base as contract
    from pipeline.serve import parse_args
    from pipeline.serving.server import ServerSettings

    container = server()
    cronjob = pod_spec(one_resource("CronJob"))["containers"][0]
    assert container["image"] == cronjob["image"] == PIPELINE_IMAGE  # the image k8s/Dockerfile builds
    assert container["command"] == ["python", "pipeline/serve.py"] and (REPO / "pipeline" / "serve.py").is_file()
    settings = contract.from_args(ServerSettings, parse_args(container["args"]))  # serve.py's own flags, checked
    assert (settings.serving_dir, settings.model_name, settings.host, settings.port, settings.grpc_port) == (
        "/models", MODEL_NAME, "0.0.0.0", 8501, 8500)
    pod = pod_spec(documents()["Deployment"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    # the models as TF Serving reads them: the serving claim, read-only
    assert mounts["/models"]["readOnly"] is True
    assert claims[mounts["/models"]["name"]] == {"claimName": "bert-serving-models", "readOnly": True}
    # the logs on a claim of their own, written by the server and by nothing else of k8s/
    log_mount = next(m for path, m in mounts.items() if settings.request_log.startswith(path.rstrip("/") + "/"))
    assert not log_mount.get("readOnly")
    claim = documents()["PersistentVolumeClaim"]
    assert claims[log_mount["name"]]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["metadata"]["name"] not in {v.get("persistentVolumeClaim", {}).get("claimName")
                                             for d in resources() if d["kind"] in ("Deployment", "CronJob")
                                             for v in pod_spec(d)["volumes"]}
    size_gib = int(re.fullmatch(r"(\d+)Gi", claim["spec"]["resources"]["requests"]["storage"]).group(1))
    assert 0 < settings.request_log_keep_mb < size_gib * 1024  # old files go before the claim fills
    assert 0 < settings.request_log_sampling <= 1
    assert "/tmp" in mounts and not pod.get("hostNetwork")
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and pod["automountServiceAccountToken"] is False


def test_the_set_a_cluster_gets_validates_and_passes_checkov(tmp_path):
    """k8s/ as kustomize renders it, with this file's Deployment in place of TF Serving's, and its claim."""
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", K8S]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", K8S]
    else:
        pytest.skip("neither kustomize nor kubectl is installed to render k8s/kustomization.yaml")
    import yaml

    proc = run_tool(cmd)
    assert proc.returncode == 0, proc.stderr
    rendered = [d for d in yaml.safe_load_all(proc.stdout) if d]
    applied = [d for d in rendered if (d["kind"], d["metadata"]["name"]) != ("Deployment", "bert-serving")]
    assert len(applied) == len(rendered) - 1
    folder = tmp_path / "cluster"
    folder.mkdir()
    (folder / "k8s.yaml").write_text(yaml.safe_dump_all(applied), encoding="utf-8")
    shutil.copy(FILE, folder / FILE.name)
    for version in KUBERNETES_VERSIONS:
        validate(version, sorted(folder.iterdir()))
    proc = run_tool([tool("checkov"), "--directory", folder, "--framework", "kubernetes", "--output", "json",
                     "--compact", "--skip-download"], env=checkov_env())
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 0
    assert report["summary"]["failed"] == 0, failed_summary(report)
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped <= {"CKV_K8S_43"}, skipped  # the image digest, as on every other workload (test_k8s.py)


def test_the_image_installs_what_the_server_imports_at_the_locked_versions():
    locked = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        found = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if found:
            locked[re.sub(r"[-_.]+", "-", found.group(1)).lower()] = found.group(2)
    text = DOCKERFILE.read_text(encoding="utf-8")
    for package in ("starlette", "uvicorn", "prometheus-client", "anyio", "sniffio", "h11"):
        pinned = re.search(rf"(?<![\w-]){re.escape(package)}==(\S+)", text)
        assert pinned, f"k8s/Dockerfile does not install {package}, which pipeline/serve.py imports"
        assert pinned.group(1) == locked[package], (package, pinned.group(1), locked[package])
    # the rest of what the server imports comes with TFX (its own dependencies), checked in this environment
    from importlib.metadata import requires

    tfx_needs = {re.split(r"[ ;<>=!\[~(]", r)[0].lower() for r in requires("tfx") or [] if "extra" not in r}
    assert {"grpcio", "tensorflow-serving-api", "click"} <= tfx_needs, tfx_needs
