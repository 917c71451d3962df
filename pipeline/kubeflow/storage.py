"""What every step of a compiled spec needs to reach an S3-compatible pipeline root: the endpoint in the container's
environment, and the credentials from a Kubernetes secret through KFP's Kubernetes platform spec.

KFP's launcher reaches the store with its own settings (the kfp-launcher ConfigMap's `providers`, which an
administrator writes for an s3:// root; backend/src/v2/config/s3.go at 2.17.0) and hands them to nobody: a TFX
executor opens every artifact URI itself, through TensorFlow's and Beam's file systems
(components/runtime/object_store.py), so the pod needs S3_ENDPOINT and the keys in its own environment. The driver
sets a container's `env` from the spec (backend/src/v2/driver/driver.go, `for _, envVar := range container.GetEnv()`)
and a secret's keys as variables from the platform spec's `secretAsEnv` (backend/src/v2/driver/k8s.go L347-393 at
2.17.0), written here as kfp-kubernetes' `use_secret_as_env` writes it (kubernetes_platform/python/kfp/kubernetes/
secret.py L44-63 at 2.17.0: the name as `secretNameParameter` and, for older backends, as `secretName`).
docs/kubeflow.md's "An S3-compatible store" gives the settings of a stock install, by release.
"""

from __future__ import annotations

import argparse
import re
from typing import Dict, List, Optional

from components.runtime import object_store
from components.runtime.storage import is_uri, scheme
from pipeline.kubeflow.errors import UserError

# A stock open-source KFP install keeps the store's keys in this secret, under these keys, in every release up to the
# latest, 2.17.0: the MinIO secret of 2.14 and before kept its name when SeaweedFS replaced MinIO in 2.15
# (manifests/kustomize/third-party/seaweedfs/base/seaweedfs/mlpipeline-minio-artifact-secret.yaml at 2.17.0; the
# launcher's own default, backend/src/v2/config/env.go L41-44).
DEFAULT_SECRET = "mlpipeline-minio-artifact:accesskey:secretkey"
# The S3 endpoint of a stock install's store, as the pods reach it: SeaweedFS's S3 port from 2.15.0 to 2.17.0
# (manifests/kustomize/third-party/seaweedfs/base/seaweedfs/seaweedfs-service.yaml, port http-s3); MinIO's
# http://minio-service.kubeflow:9000 up to 2.14 (manifests/kustomize/third-party/minio/base/minio-service.yaml).
STOCK_ENDPOINT = "http://seaweedfs.kubeflow:8333"
SECRET_FORM = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?):([-._a-zA-Z0-9]+):([-._a-zA-Z0-9]+)$")


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--s3-endpoint", metavar="URL",
                        help="for an s3:// pipeline root or serving folder: the store's endpoint as the pods reach "
                             "it, http(s)://HOST:PORT, set as S3_ENDPOINT in every step (a stock install's SeaweedFS, "
                             f"KFP 2.15 and later: {STOCK_ENDPOINT}; MinIO, 2.14 and before: "
                             "http://minio-service.kubeflow:9000; none: AWS S3)")
    parser.add_argument("--s3-credentials-secret", metavar="NAME:ACCESS_KEY_KEY:SECRET_KEY_KEY",
                        default=DEFAULT_SECRET,
                        help="for s3://: the Kubernetes secret, in the run's namespace, whose two keys every step gets "
                             "as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; 'none' leaves credentials to the pods' "
                             "own environment (e.g. IAM roles for service accounts on EKS)")


def uses_s3(*locations: str) -> bool:
    return any(scheme(loc or "") == "s3" for loc in locations)


def container_env(s3_endpoint: Optional[str]) -> List[Dict[str, str]]:
    """The containers' env entries (the spec's PipelineContainerSpec.env) for S3."""
    if s3_endpoint and not is_uri(s3_endpoint):
        # A bare HOST:PORT takes its scheme from S3_USE_HTTPS where it is read, and this machine's is not the pods'.
        raise UserError(f"--s3-endpoint {s3_endpoint!r} needs its scheme, as the pods reach the store: "
                        f"http://{s3_endpoint} (a cluster's SeaweedFS or MinIO) or https://{s3_endpoint}.")
    try:
        env = object_store.s3_environment(s3_endpoint)
    except object_store.StorageError as e:
        raise UserError(f"--s3-endpoint: {e}") from None
    # The pods' region, whatever this machine's environment says (the SDKs want one; MinIO ignores it).
    env["AWS_REGION"] = env.get("AWS_REGION") or object_store.DEFAULT_REGION
    return [{"name": name, "value": value} for name, value in sorted(env.items())]


def secret_as_env(value: str) -> Optional[dict]:
    """The platform spec's secretAsEnv entry of --s3-credentials-secret (None for 'none')."""
    if value.strip().lower() == "none":
        return None
    match = SECRET_FORM.match(value.strip())
    if not match:
        raise UserError(f"--s3-credentials-secret {value!r} must be NAME:ACCESS_KEY_KEY:SECRET_KEY_KEY (e.g. "
                        f"{DEFAULT_SECRET}) or none.")
    name, access, secret = match.group(1), match.group(3), match.group(4)
    return {"secretNameParameter": {"runtimeValue": {"constant": name}}, "secretName": name, "optional": False,
            "keyToEnv": [{"secretKey": access, "envVar": "AWS_ACCESS_KEY_ID"},
                         {"secretKey": secret, "envVar": "AWS_SECRET_ACCESS_KEY"}]}


def apply(spec: dict, s3_endpoint: Optional[str], credentials: str) -> Optional[dict]:
    """Adds the S3 environment to every container executor of `spec`; returns the platform spec carrying the
    credentials secret (None when there is none to carry)."""
    env = container_env(s3_endpoint)
    executors = spec["deploymentSpec"]["executors"]
    for executor in executors.values():
        if "container" in executor:
            present = {e["name"] for e in env}
            executor["container"]["env"] = [e for e in executor["container"].get("env", []) if e["name"] not in present]
            executor["container"]["env"] += env
    secret = secret_as_env(credentials)
    if secret is None:
        return None
    per_executor = {label: {"secretAsEnv": [secret]} for label, executor in sorted(executors.items())
                    if "container" in executor}
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": per_executor}}}}
