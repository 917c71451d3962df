"""What tests/integration/test_k8s.py and test_k8s_tfjob.py share: the manifests' paths and constants, the linters in
.venv-tools (made from requirements-tools.lock by `make test` or `make tools`; without it these tests fail and say
so), and readers of k8s/*.yaml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from support.ci import missing_tool

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
DOCKERFILE = K8S / "Dockerfile"
KUSTOMIZATION = K8S / "kustomization.yaml"
# Manifests applied on their own, not through kustomization.yaml (each with the reason).
OPTIONAL_MANIFESTS = {
    "trainer-tfjob.yaml": "a TFJob needs the Kubeflow Training Operator's CRD, and is a one-off run, not a standing "
                          "workload: `kubectl apply -k k8s/` must not fail on clusters without the operator",
    "serving-request-logging.yaml": "the model server with request logging replaces TF Serving's Deployment (the same "
                                    "name): a choice made by applying it after the rest, not a second server "
                                    "(tests/integration/test_k8s_request_logging.py)",
}
TFJOB_FILE = K8S / "trainer-tfjob.yaml"
TFJOB_SCHEMA = K8S / "schemas" / "tfjob-v1.json"
TOOLS_VENV = Path(os.environ.get("BERT_TFX_TOOLS_VENV") or REPO / ".venv-tools")

NAMESPACE = "bert-tfx"
MODEL_NAME = "bert_classifier"
SERVING_IMAGE = "tensorflow/serving:2.16.1"
PIPELINE_IMAGE = "ghcr.io/your-org/bert-tfx-pipeline:0.1.0"
# Kubernetes versions to validate against: an older release still widely run, and the newest the pinned
# kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
# Checks deliberately skipped (each on its resource, with the reason next to it). A new skip must be added here.
ALLOWED_CHECKOV_SKIPS = {
    "kubernetes": {"CKV_K8S_43"},  # image by digest: tags are pinned; digest pinning via kustomize images
    "dockerfile": {"CKV_DOCKER_2"},  # HEALTHCHECK: Kubernetes ignores it, the image runs batch steps
}
TOOL_TIMEOUT_S = 120


def tool(name: str) -> Path:
    path = TOOLS_VENV / "bin" / name
    if not path.is_file():
        pytest.fail(
            f"{path} not found: the linters these tests run live in their own virtual environment. "
            f"Run `make test` (or `make tools`) to create {TOOLS_VENV} from requirements-tools.lock.",
            pytrace=False,
        )
    return path


# kustomize reads kustomization.yaml's `labels:` from v4.1 on, kubectl's built-in one from kubectl 1.22 (Debian 12's
# kubernetes-client, kubectl 1.20, refuses it: 'json: unknown field "labels"').
KUSTOMIZE_HINT = ("neither kustomize nor kubectl is installed to render k8s/kustomization.yaml (each manifest file is "
                  "still validated on its own): install kubectl 1.22 or later (kubernetes.io/docs/tasks/tools) or "
                  "kustomize 4.1 or later; Debian 12's kubernetes-client (kubectl 1.20) is too old")


def kustomize_build() -> list:
    """The command that renders k8s/ as `kubectl apply -k k8s/` would: kustomize's, else kubectl's. Without either,
    the test is skipped with KUSTOMIZE_HINT, or fails with it under CI=true (support/ci.py)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build", K8S]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", K8S]
    missing_tool(KUSTOMIZE_HINT)


def run_tool(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
                          cwd=REPO, **kwargs)


def manifest_files(optional: bool = False) -> list[Path]:
    """The manifests kustomization.yaml applies (with `optional`, also those applied on their own)."""
    return sorted(p for p in K8S.glob("*.yaml")
                  if p.name != KUSTOMIZATION.name and (optional or p.name not in OPTIONAL_MANIFESTS))


def manifest_docs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def resources(optional: bool = False) -> list[dict]:
    return [d for p in manifest_files(optional) for d in manifest_docs(p)]


def one_resource(kind: str) -> dict:
    found = [d for d in resources() if d["kind"] == kind]
    assert len(found) == 1, f"expected exactly one {kind} in k8s/, found {len(found)}"
    return found[0]


def pod_spec(resource: dict) -> dict:
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return resource["spec"]["template"]["spec"]


def workloads() -> list[dict]:
    return [d for d in resources() if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")]


def validate(version: str, files: list[Path]) -> str:
    proc = run_tool([tool("kubernetes-validate"), "--kubernetes-version", version, "--strict", *files])
    report = (proc.stdout + proc.stderr).strip()
    # A resource whose apiVersion/kind has no schema is only a WARN with exit status 0: count that as a failure.
    problems = [line for line in report.splitlines() if not line.startswith("INFO")]
    assert proc.returncode == 0 and not problems, \
        f"kubernetes-validate {version} --strict (exit {proc.returncode}):\n" + "\n".join(problems)
    return report


def failed_summary(report: dict) -> str:
    return "\n".join(f"{c['check_id']} {c['check_name']} -- {c['resource']} ({c['file_path']}:"
                     f"{c['file_line_range']})" for c in report["results"]["failed_checks"])


def checkov_env() -> dict:
    return dict(os.environ, CKV_SKIP_PACKAGE_UPDATE_CHECK="true", BC_SKIP_MAPPING="TRUE", LOG_LEVEL="WARNING")


def tfjob() -> dict:
    (job,) = [d for d in manifest_docs(TFJOB_FILE) if d["kind"] == "TFJob"]
    return job
