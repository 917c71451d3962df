"""The TFJob (k8s/trainer-tfjob.yaml, the distributed Trainer on the Kubeflow Training Operator), checked with the
real tools: against k8s/schemas/tfjob-v1.json (a custom resource kubernetes-validate has no schema for) with its pod
templates under the strict Kubernetes schemas, ten broken variants refused; its companions (ConfigMap,
NetworkPolicy) with kubernetes-validate; each replica's pod with checkov; its arguments with the entry point's own
parser.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from support.k8s_tools import (
    ALLOWED_CHECKOV_SKIPS,
    KUBERNETES_VERSIONS,
    NAMESPACE,
    PIPELINE_IMAGE,
    REPO,
    TFJOB_FILE,
    TFJOB_SCHEMA,
    checkov_env,
    failed_summary,
    manifest_docs,
    resources,
    run_tool,
    tfjob,
    tool,
    validate,
)

# Run with .venv-tools' Python: validates JSON documents (stdin) against k8s/schemas/tfjob-v1.json, with the strict
# Kubernetes definitions kubernetes-validate ships registered under their own $id; prints each document's errors.
_TFJOB_VALIDATOR = r"""
import json, sys
import importlib_resources, jsonschema
from referencing import Registry, Resource
version, schema_file = sys.argv[1], sys.argv[2]
folder = importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
definitions = json.loads((folder / "_definitions.json").read_text())
assert definitions["$id"] == "https://kubernetes.io/api/_definitions.json", definitions["$id"]
with open(schema_file) as f:
    schema = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema, registry=Resource.from_contents(definitions) @ Registry())
print(json.dumps([sorted("/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(doc))
                  for doc in json.load(sys.stdin)]))
"""


def _validate_tfjobs(version: str, docs: list[dict]) -> list[list[str]]:
    proc = run_tool([tool("python"), "-c", _TFJOB_VALIDATOR, version, TFJOB_SCHEMA], input=json.dumps(docs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _broken(edit) -> dict:
    job = json.loads(json.dumps(tfjob()))  # a deep copy (the YAML anchor shares the replicas' template)
    edit(job)
    return job


def _container(job: dict, replica: str = "Chief") -> dict:
    return job["spec"]["tfReplicaSpecs"][replica]["template"]["spec"]["containers"][0]


# Each must be refused: the schema and the strict pod schema really check what the TFJob sets.
BROKEN_TFJOBS = {
    "api version": lambda j: j.update(apiVersion="kubeflow.org/v2"),
    "replica type": lambda j: j["spec"]["tfReplicaSpecs"].update(Wroker=j["spec"]["tfReplicaSpecs"].pop("Worker")),
    "two chiefs": lambda j: j["spec"]["tfReplicaSpecs"]["Chief"].update(replicas=2),
    "replicas as text": lambda j: j["spec"]["tfReplicaSpecs"]["Worker"].update(replicas="3"),
    "restart policy": lambda j: j["spec"]["tfReplicaSpecs"]["Worker"].update(restartPolicy="Sometimes"),
    "run policy field": lambda j: j["spec"]["runPolicy"].update(cleanPodPolcy="All"),
    "container field": lambda j: _container(j).update(imagePullPolcy="Always"),
    "container name": lambda j: _container(j, "Worker").update(name="trainer"),
    "resource quantity": lambda j: _container(j)["resources"]["limits"].update(cpu=["8"]),
    "no template": lambda j: j["spec"]["tfReplicaSpecs"]["Worker"].pop("template"),
}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_tfjob_validates_against_the_training_operator_schema(version):
    schema = json.loads(TFJOB_SCHEMA.read_text(encoding="utf-8"))
    assert "kubeflow-training==1.9.4" in schema["$comment"]  # where its fields come from
    names = list(BROKEN_TFJOBS)
    results = _validate_tfjobs(version, [tfjob()] + [_broken(BROKEN_TFJOBS[name]) for name in names])
    assert results[0] == [], "k8s/trainer-tfjob.yaml:\n" + "\n".join(results[0])
    for name, errors in zip(names, results[1:]):
        assert errors, f"a TFJob with a broken {name} was accepted"


def test_tfjob_companions_validate_against_kubernetes_schema(tmp_path):
    """The ConfigMap and NetworkPolicy beside the TFJob, with the strict Kubernetes schemas."""
    others = [d for d in manifest_docs(TFJOB_FILE) if d["kind"] != "TFJob"]
    assert {d["kind"] for d in others} == {"ConfigMap", "NetworkPolicy"}
    rendered = tmp_path / "companions.yaml"
    rendered.write_text(yaml.safe_dump_all(others), encoding="utf-8")
    for version in KUBERNETES_VERSIONS:
        report = validate(version, [rendered])
        assert len([line for line in report.splitlines() if " passed for resource " in line]) == len(others)


def test_tfjob_runs_the_training_entry_point_on_the_pipeline_root():
    from components.settings.data import read_config
    from components.settings.trainer import TrainerSettings
    from pipeline import train_job

    job = tfjob()
    assert job["apiVersion"] == "kubeflow.org/v1" and job["metadata"]["namespace"] == NAMESPACE
    replicas = job["spec"]["tfReplicaSpecs"]
    assert set(replicas) == {"Chief", "Worker"}
    assert replicas["Chief"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
    claims = {d["metadata"]["name"]: d for d in resources() if d["kind"] == "PersistentVolumeClaim"}
    (config_map,) = [d for d in manifest_docs(TFJOB_FILE) if d["kind"] == "ConfigMap"]
    for replica, spec in replicas.items():
        assert spec["restartPolicy"] in ("OnFailure", "Never", "ExitCode"), replica
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "tensorflow" and container["image"] == PIPELINE_IMAGE
        assert {"name": "tfjob-port", "containerPort": 2222, "protocol": "TCP"} in container["ports"]
        assert container["command"] == ["python", "-m", "pipeline.train_job"]
        # The arguments as the kubelet expands them ($(VAR) from the container's env), read by the entry point.
        env = {e["name"]: e["value"] for e in container["env"]}
        args = [re.sub(r"\$\((\w+)\)", lambda m, env=env: env[m.group(1)], a) for a in container["args"]]
        parsed = train_job.build_parser().parse_args(args)
        assert (REPO / "pipeline" / "train_job.py").is_file()
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}

        def volume_of(path: str, mounts=mounts, volumes=volumes) -> dict:
            mount = max((m for m in mounts if str(path).startswith(m.rstrip("/") + "/")), key=len)
            return volumes[mounts[mount]["name"]]

        for path in (parsed.examples, parsed.transform_graph, parsed.model_dir):
            claim = volume_of(path)["persistentVolumeClaim"]["claimName"]
            assert claim == "bert-pipeline-root" and claim in claims, path
        assert parsed.examples.startswith("/mnt/pipeline/root/Transform/transformed_examples/")
        assert parsed.transform_graph.startswith("/mnt/pipeline/root/Transform/transform_graph/")
        # --config is the ConfigMap's key, and holds what run_fn reads, strictly (every Trainer and data setting).
        source = volume_of(parsed.config)["configMap"]["name"]
        assert source == config_map["metadata"]["name"]
        settings, _ = read_config(TrainerSettings, json.loads(config_map["data"][parsed.config.name]))
        assert settings.pretrained_dir.startswith("/pipeline/data/checkpoints/")


def test_tfjob_pods_pass_checkov(tmp_path):
    """checkov has no checks for a TFJob's pod templates: each replica's pod, as a Job, is checked instead (with the
    file's NetworkPolicy, which its graph checks look for)."""
    job = tfjob()
    policies = [d for d in manifest_docs(TFJOB_FILE) if d["kind"] == "NetworkPolicy"]
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump_all(policies), encoding="utf-8")
    jobs = set()
    for replica, spec in job["spec"]["tfReplicaSpecs"].items():
        name = f"{job['metadata']['name']}-{replica.lower()}"
        as_job = {"apiVersion": "batch/v1", "kind": "Job",
                  "metadata": {"name": name, "namespace": NAMESPACE, "labels": job["metadata"]["labels"],
                               "annotations": {"checkov.io/skip1": "CKV_K8S_43=The project image is a placeholder "
                                                                   "tag replaced per deployment, like the CronJob's"}},
                  "spec": {"backoffLimit": 1, "template": {**spec["template"], "spec": {
                      **spec["template"]["spec"], "restartPolicy": "OnFailure"}}}}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(as_job), encoding="utf-8")
        jobs.add(f"Job.{NAMESPACE}.{name}")
    env = checkov_env()
    proc = run_tool([tool("checkov"), "--directory", tmp_path, "--framework", "kubernetes", "--output", "json",
                 "--compact", "--skip-download"], env=env)
    report = json.loads(proc.stdout)
    summary = report["summary"]
    assert summary["passed"] > 0 and summary["parsing_errors"] == 0, summary
    assert jobs <= {c["resource"] for c in report["results"]["passed_checks"]}, "checkov did not check both pods"
    assert summary["failed"] == 0, failed_summary(report)
    assert {c["check_id"] for c in report["results"]["skipped_checks"]} <= ALLOWED_CHECKOV_SKIPS["kubernetes"]
