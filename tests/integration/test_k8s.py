"""The container image (k8s/Dockerfile) and the Kubernetes manifests (k8s/*.yaml), checked with the real tools.

- kubernetes-validate: every manifest against the Kubernetes OpenAPI schemas, strict (unknown fields fail);
- checkov: the manifests (framework kubernetes) and the Dockerfile (framework dockerfile), no failed check, and
  every skipped check skipped on the resource itself with a reason;
- hadolint: nothing above `info` in the Dockerfile;
- plus the project's own contract: base image = the TFX version installed, Keras 2, non-root numeric user, ...

The TFJob (k8s/trainer-tfjob.yaml) has its own file, test_k8s_tfjob.py. The linters are not in .venv
(checkov's dependencies clash with the TFX pins): they live in .venv-tools (tests/support/k8s_tools.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from support.k8s_tools import (
    ALLOWED_CHECKOV_SKIPS,
    DOCKERFILE,
    K8S,
    KUBERNETES_VERSIONS,
    KUSTOMIZATION,
    MODEL_NAME,
    NAMESPACE,
    OPTIONAL_MANIFESTS,
    PIPELINE_IMAGE,
    REPO,
    SERVING_IMAGE,
    checkov_env,
    failed_summary,
    kustomize_build,
    manifest_files,
    one_resource,
    pod_spec,
    resources,
    run_tool,
    tfjob,
    tool,
    validate,
    workloads,
)

# -------------------------------------------------------------------------------------- kubernetes-validate


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_against_kubernetes_schema(version):
    files = manifest_files()
    assert files, "no manifests in k8s/"
    report = validate(version, files)
    passed = [line for line in report.splitlines() if " passed for resource " in line]
    assert len(passed) == len(resources()), report


@pytest.fixture
def render_command():
    """kustomize's or kubectl's command rendering k8s/; without either the test is skipped, or fails under CI=true (a
    fixture, so that the skip's line names the test)."""
    return kustomize_build()


def test_rendered_kustomization_validates(tmp_path, render_command):
    """The set `kubectl apply -k k8s/` would send, rendered offline by kustomize or kubectl."""
    cmd = render_command
    proc = run_tool(cmd)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}: {proc.stderr}"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(proc.stdout, encoding="utf-8")
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert len(docs) == len(resources())
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == NAMESPACE
    validate(KUBERNETES_VERSIONS[0], [rendered])


def test_kustomization_lists_every_manifest():
    kust = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    assert kust["kind"] == "Kustomization"
    assert kust["namespace"] == NAMESPACE
    assert sorted(kust["resources"]) == sorted(p.name for p in manifest_files())
    assert not set(kust["resources"]) & set(OPTIONAL_MANIFESTS)
    assert all((K8S / name).is_file() for name in OPTIONAL_MANIFESTS)
    assert "commonLabels" in kust or "labels" in kust
    image_names = {i["name"] for i in kust.get("images", [])}
    assert PIPELINE_IMAGE.split(":")[0] in image_names, "the placeholder image must be replaceable via images:"
    for doc in resources(optional=True):  # the files are consistent with the kustomization even when applied alone
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]


# --------------------------------------------------------------------------------------------------- checkov


@pytest.fixture(scope="module")
def checkov_reports() -> dict[str, dict]:
    """One checkov run over k8s/ for both frameworks (checkov's start-up is the slow part)."""
    env = checkov_env()
    proc = run_tool([tool("checkov"), "--directory", K8S, "--framework", "kubernetes", "dockerfile",
                 "--output", "json", "--compact", "--skip-download"], env=env)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report JSON (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)
    reports = {r["check_type"]: r for r in (data if isinstance(data, list) else [data])}
    return reports


@pytest.mark.parametrize("framework", ["kubernetes", "dockerfile"])
def test_checkov_reports_no_failed_checks(checkov_reports, framework):
    assert framework in checkov_reports, f"checkov scanned nothing for {framework}: {list(checkov_reports)}"
    report = checkov_reports[framework]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, report["results"].get("parsing_errors")
    assert summary["passed"] > 0 and summary["resource_count"] > 0, summary
    assert summary["failed"] == 0, f"checkov {framework} failed checks:\n{failed_summary(report)}"


@pytest.mark.parametrize("framework", ["kubernetes", "dockerfile"])
def test_checkov_skips_are_deliberate_and_explained(checkov_reports, framework):
    skipped = checkov_reports[framework]["results"]["skipped_checks"]
    unexpected = {c["check_id"] for c in skipped} - ALLOWED_CHECKOV_SKIPS[framework]
    assert not unexpected, f"checks skipped without being listed in ALLOWED_CHECKOV_SKIPS: {unexpected}"
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        assert len(reason) > 20, f"{check['check_id']} on {check['resource']} is skipped without a reason"
    if framework == "kubernetes":  # skipped on the resource itself, through its checkov.io/skipN annotation
        annotated = {(d["kind"], d["metadata"]["name"], v.split("=", 1)[0])
                     for d in resources(optional=True)
                     for k, v in (d["metadata"].get("annotations") or {}).items()
                     if k.startswith("checkov.io/skip")}
        for check in skipped:
            kind, _namespace, name = check["resource"].split(".", 2)
            assert (kind, name, check["check_id"]) in annotated, check["resource"]


# -------------------------------------------------------------------------------------------------- hadolint


def test_hadolint_reports_nothing_above_info():
    proc = run_tool([tool("hadolint"), "--no-color", "--format", "json", "--failure-threshold", "warning",
                 DOCKERFILE])
    findings = json.loads(proc.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert proc.returncode == 0 and not serious, "hadolint:\n" + "\n".join(
        f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings) + proc.stderr


def test_hadolint_ignores_carry_a_reason():
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[i - 1].strip() if i else ""
            assert above.startswith("#") and "hadolint" not in above and len(above) > 10, \
                f"line {i + 1}: put the reason for `{line.strip()}` in a comment on the line above"


# ----------------------------------------------------------------------------------- the image's own contract


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and backslash continuations joined."""
    out, buf = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):  # comment lines inside a continued instruction are dropped by Docker
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        buf = ""
    assert not buf, "the Dockerfile ends inside a continued line"
    return out


def _env_pairs(args: str) -> dict[str, str]:
    """KEY=value pairs of one ENV instruction (the `ENV KEY value` legacy form too)."""
    if "=" not in args.split(" ", 1)[0]:
        key, _, value = args.partition(" ")
        return {key: value.strip().strip('"')}
    return {m.group(1): m.group(2).strip('"') for m in re.finditer(r'(\w+)=("[^"]*"|\S+)', args)}


def _pinned(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def test_dockerfile_base_image_is_the_installed_tfx_version():
    tfx_version = _pinned(REPO / "requirements-tfx.txt")["tfx"]
    froms = [args for keyword, args in _dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) == 1, froms
    m = re.fullmatch(r"tensorflow/tfx:([^@\s]+)(@sha256:[0-9a-f]{64})?", froms[0])
    assert m, f"FROM must be the official tensorflow/tfx image pinned by tag, got {froms[0]!r}"
    assert m.group(1) == tfx_version, f"base image tag {m.group(1)} != tfx=={tfx_version} of requirements-tfx.txt"


def test_dockerfile_environment_user_and_code():
    instructions = _dockerfile_instructions()
    env = {}
    for keyword, args in instructions:
        if keyword == "ENV":
            env.update(_env_pairs(args))
    assert env.get("TF_USE_LEGACY_KERAS") == "1", env

    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER must be a numeric non-root uid (runAsNonRoot), got {users[-1]}"
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]
    # The pipeline pod runs as the image's user (its files, e.g. the fetched data, are readable to it).
    assert pod_spec(one_resource("CronJob"))["securityContext"]["runAsUser"] == int(uid)

    workdir = [args for keyword, args in instructions if keyword == "WORKDIR"][-1]
    assert workdir.startswith("/")
    assert re.match(rf"{re.escape(workdir)}(:|\$|$)", env.get("PYTHONPATH", "")), \
        f"PYTHONPATH must start with {workdir} so components.* and pipeline.* import by module path: {env}"
    copied = " ".join(args for keyword, args in instructions if keyword == "COPY")
    for folder in ("components", "pipeline", "schema"):
        assert re.search(rf"(^|\s){folder}/?\s+{re.escape(workdir)}/{folder}/?(\s|$)", copied), \
            f"{folder}/ is not copied to {workdir}/{folder}"
    assert not any(keyword == "ADD" for keyword, _ in instructions), "use COPY, not ADD"


def test_dockerfile_installs_the_locked_versions():
    locked = _pinned(REPO / "requirements.lock")
    runs = " ".join(args for keyword, args in _dockerfile_instructions() if keyword == "RUN")
    for package in ("tensorflow-text", "tf-keras", "safetensors"):
        m = re.search(rf"(?<![\w-]){re.escape(package)}==(\S+)", runs)
        assert m, f"{package} is not installed with a pinned version"
        assert m.group(1) == locked[package], f"{package}=={m.group(1)} but requirements.lock has {locked[package]}"
    assert "--no-cache-dir" in runs
    assert re.search(r"python -m pipeline\.data\.assets", runs), "the image must fetch the checkpoint at build time"


def test_dockerfile_has_no_secrets():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"(?i)(password|passwd|secret|token|api[_-]?key)\s*=", text)
    assert not re.search(r"(?i)^\s*ARG\s+\w*(PASSWORD|SECRET|TOKEN|KEY)\b", text, re.M)


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for required in (".git", "data", "outputs"):
        assert required in patterns, f".dockerignore does not exclude {required}"
    assert {".venv*", ".venv-*"} & patterns or {".venv", ".venv-tools"} <= patterns, patterns


# -------------------------------------------------------------------------------- the manifests' own contract


def _pod_templates() -> list[tuple[str, dict]]:
    """(where, pod template) of every workload, the TFJob's replicas included."""
    templates = []
    for workload in workloads():
        template = (workload["spec"]["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob"
                    else workload["spec"]["template"])
        templates.append((f"{workload['kind']}/{workload['metadata']['name']}", template))
    for replica, spec in tfjob()["spec"]["tfReplicaSpecs"].items():
        templates.append((f"TFJob/{tfjob()['metadata']['name']}/{replica}", spec["template"]))
    return templates


def test_every_pod_is_hardened():
    assert {w["kind"] for w in workloads()} == {"Deployment", "CronJob"}
    templates = _pod_templates()
    assert len(templates) == 4  # serving, the CronJob, the TFJob's chief and workers
    for where, template in templates:
        pod = template["spec"]
        assert pod["automountServiceAccountToken"] is False, where
        pod_sc = pod["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and int(pod_sc["runAsUser"]) > 0, where
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", where
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert sc.get("runAsNonRoot", pod_sc["runAsNonRoot"]) is True, where
            image = c["image"]
            assert re.fullmatch(r"[^:@\s]+(:[\w][\w.\-]*)?(@sha256:[0-9a-f]{64})?", image), image
            assert ":" in image.split("/")[-1] and not image.endswith(":latest"), f"unpinned image {image}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (where, kind)
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: a writable /tmp is needed with a read-only root filesystem"


def test_tensorflow_serving():
    deployment = one_resource("Deployment")
    pod = pod_spec(deployment)
    (container,) = pod["containers"]
    assert container["image"] == SERVING_IMAGE
    args = " ".join(container.get("command", []) + container.get("args", []))
    assert f"--model_name={MODEL_NAME}" in args
    assert f"--model_base_path=/models/{MODEL_NAME}" in args
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == f"/v1/models/{MODEL_NAME}" and get["port"] in ("http", 8501), probe
    (models,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/models"]
    assert models["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == models["name"])
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert claim in {p["metadata"]["name"] for p in resources() if p["kind"] == "PersistentVolumeClaim"}

    service = one_resource("Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}


def test_pipeline_cronjob():
    cronjob = one_resource("CronJob")
    spec = cronjob["spec"]
    assert spec["schedule"] == "0 3 * * 1"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    pod = pod_spec(cronjob)
    (container,) = pod["containers"]
    assert container["image"] == PIPELINE_IMAGE
    command = container.get("command", []) + container.get("args", [])
    assert command == ["python", "pipeline/run_local.py", "--data-root", "/mnt/data/incoming",
                       "--pipeline-root", "/mnt/pipeline/root", "--serving-dir", "/mnt/serving"], command
    assert (REPO / "pipeline").is_dir()

    # Every --path lies on a PersistentVolumeClaim mount; the serving claim is the one Serving reads from.
    claims_by_volume = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                        for v in pod["volumes"] if "persistentVolumeClaim" in v}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}

    def claim_of(path: str) -> tuple[str, dict]:
        mount_path = max((m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")), key=len)
        return claims_by_volume[mounts[mount_path]["name"]], mounts[mount_path]

    serving_pod = pod_spec(one_resource("Deployment"))
    serving_claim = next(v["persistentVolumeClaim"]["claimName"] for v in serving_pod["volumes"]
                         if "persistentVolumeClaim" in v)
    claim, mount = claim_of("/mnt/serving")
    assert claim == serving_claim and not mount.get("readOnly"), "the pipeline must write the served volume"
    claim, mount = claim_of("/mnt/pipeline/root")
    assert not mount.get("readOnly")
    claim_of("/mnt/data/incoming")
    assert pod["restartPolicy"] in ("Never", "OnFailure")


def test_network_policies_cover_every_workload():
    policies = [d for d in resources(optional=True) if d["kind"] == "NetworkPolicy"]
    for where, template in _pod_templates():
        labels = template["metadata"]["labels"]
        assert any(set(p["spec"]["podSelector"].get("matchLabels", {}).items()) <= set(labels.items())
                   for p in policies), f"no NetworkPolicy selects {where}"


