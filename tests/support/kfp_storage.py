"""What KFP's launcher does with a task's artifacts on an object store, and its environment, for support/kfp_local.py.

Read from kubeflow/pipelines at 7b70c7b9 (backend/src/v2):

- component/launcher_v2.go `LocalPathForURI`: an artifact's local path in the container is its URI with the scheme
  swapped for a root folder (gs:// -> /gcs/, minio:// -> /minio/, s3:// -> /s3/); any other scheme has none, and
  `prepareOutputFolders` then fails the task ("unsupported storage scheme").
- `downloadArtifacts`, before the command runs: every input artifact is copied whole from the store to its local
  path (objectstore.DownloadBlob: each key under the URI's prefix).
- `prepareOutputFolders`: the parent folder of each output artifact's local path is created, not the folder.
- `uploadOutputArtifacts`, after exit 0: each output artifact's local path is uploaded to its URI
  (objectstore.UploadBlob, file by file); a local path that does not exist is skipped with a warning ("We allow
  components to not produce output files") and the artifact is still recorded. A TFX executor writes straight to the
  URI (tf.io.gfile, Beam), never to the local path, so every output is skipped and nothing it wrote is overwritten.
- driver/driver.go: the ExecutorInput's `outputs.outputFile` is TASK_ROOT's local path + /output_metadata.json; the
  launcher reads the ExecutorOutput there, from the pod's disk.
- driver/driver.go `container.GetEnv()` and driver/k8s.go `GetSecretAsEnv`: the container's env from the spec and
  a secret's keys as variables from the Kubernetes platform spec.

Here the pod's disk is a scratch folder per task (`pod_root`): /s3/b/k is pod_root/s3/b/k. The store is reached with
boto3 at the endpoint of the task's environment (S3 only: no Cloud Storage server runs here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from components.runtime.object_store import bucket_and_key

ROOTS = {"gs": "gcs", "minio": "minio", "s3": "s3"}  # LocalPathForURI


def local_path_for_uri(uri: str, pod_root: Path) -> Optional[Path]:
    """The artifact's path on the pod's disk (None: a scheme the launcher has no local path for)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ROOTS:
        return None
    return pod_root / ROOTS[scheme] / rest


def is_object_store(uri: str) -> bool:
    return uri.partition("://")[0] in ROOTS and "://" in uri


def _client(env: Mapping[str, str]):
    import boto3

    return boto3.client("s3", endpoint_url=env.get("S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3"),
                        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
                        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
                        region_name=env.get("AWS_REGION", "us-east-1"))



def download_inputs(executor_input: dict, pod_root: Path, env: Mapping[str, str]) -> List[str]:
    """downloadArtifacts: every input artifact on the store copied under its local path; returns the keys copied."""
    copied = []
    for listing in executor_input.get("inputs", {}).get("artifacts", {}).values():
        for artifact in listing.get("artifacts", []):
            uri = artifact["uri"]
            local = local_path_for_uri(uri, pod_root)
            if local is None:
                continue
            client, (bucket, prefix) = _client(env), bucket_and_key(uri)
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key != prefix and not key.startswith(prefix + "/"):
                        continue  # isBlobKeyUnderPrefix: "a/b" does not take "a/bc"
                    target = local / os.path.relpath(key, prefix) if key != prefix else local
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, key, str(target))
                    copied.append(key)
    return copied


def prepare_output_folders(executor_input: dict, pod_root: Path) -> None:
    """prepareOutputFolders: the parent of each output artifact's local path, and of each output parameter file."""
    outputs = executor_input["outputs"]
    for spec in outputs.get("parameters", {}).values():
        Path(spec["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
    for key, listing in outputs.get("artifacts", {}).items():
        local = local_path_for_uri(listing["artifacts"][0]["uri"], pod_root)
        if local is None:
            raise RuntimeError(f"failed to generate local storage path for output artifact {key!r}: unsupported "
                               "storage scheme")
        local.parent.mkdir(parents=True, exist_ok=True)


def upload_outputs(executor_input: dict, pod_root: Path, env: Mapping[str, str]) -> Dict[str, str]:
    """uploadOutputArtifacts: each output's local path uploaded to its URI when it exists; returns, per output key,
    'uploaded N files' or 'skipped: local path does not exist' (the launcher's warning)."""
    report = {}
    for key, listing in executor_input["outputs"].get("artifacts", {}).items():
        uri = listing["artifacts"][0]["uri"]
        local = local_path_for_uri(uri, pod_root)
        if local is None or not local.exists():
            report[key] = "skipped: local path does not exist"
            continue
        client, (bucket, prefix) = _client(env), bucket_and_key(uri)
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            relative = "" if path == local else str(path.relative_to(local))
            client.upload_file(str(path), bucket, f"{prefix}/{relative}".rstrip("/") if relative else prefix)
        report[key] = f"uploaded {len(files)} files"
    return report


def container_env(container: dict, platform_executor: Optional[dict], secrets: Mapping[str, Mapping[str, str]],
                  task: str) -> Dict[str, str]:
    """The variables the driver sets from the spec: the container's env, and secretAsEnv from the platform spec
    (a secret missing from `secrets` fails the pod, as Kubernetes does: CreateContainerConfigError)."""
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    for entry in (platform_executor or {}).get("secretAsEnv", []):
        secret = secrets.get(entry["secretName"])
        if secret is None:
            raise RuntimeError(f"task {task}: secret {entry['secretName']!r} not found (CreateContainerConfigError)")
        for mapping in entry.get("keyToEnv", []):
            if mapping["secretKey"] not in secret:
                raise RuntimeError(f"task {task}: couldn't find key {mapping['secretKey']} in Secret "
                                   f"{entry['secretName']}")
            env[mapping["envVar"]] = secret[mapping["secretKey"]]
    return env


def upload_log(log: Path, uri: str, env: Mapping[str, str]) -> None:
    """The launcher's log upload to the executor-logs artifact's URI."""
    bucket, key = bucket_and_key(uri)
    _client(env).upload_file(str(log), bucket, key)
