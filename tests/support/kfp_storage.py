"""KFP's launcher and its object store, for support/kfp_local.py: where the launcher's store settings come from, and
what it copies. It imports nothing of the code under test (only boto3 and PyYAML): the launcher's settings are an
administrator's, never the pods'.

Read from kubeflow/pipelines at release 2.17.0 (commit 4a3592cb2dd0a91a4652ab93893ec8beda1f3158), backend/src/v2:

- The session (config/env.go L118-175, config/s3.go L72-182, config/minio.go L24-50): the root DAG's driver reads the
  `kfp-launcher` ConfigMap of the run's namespace (env.go L71-83: a missing one is the default config) and turns its
  `providers` entry (YAML, keys matched case-insensitively as Go's encoding/json matches them) into the store
  session of the pipeline root (driver/root_dag.go L103-127), kept with the run and used by every task's launcher
  (component/launcher_v2.go L252-276). An s3:// root whose ConfigMap has no `providers.s3` default or overrides gets
  {"fromEnv": "true"} and nothing else (s3.go L87-96); a minio:// root without them gets the built-in default
  (env.go L177-193: seaweedfs.kubeflow:9000 since 2.16.0, the secret mlpipeline-minio-artifact).
- Opening the bucket (objectstore/object_store.go L43-109, L297-407): with a secretRef, the launcher reads the
  secret's two keys through the Kubernetes API (L377-407); with fromEnv, the AWS SDK's own chain, which in the
  launcher (it runs in the task's main container) is the pod's environment. The endpoint is the session's, given a
  scheme by disableSSL when it has none (L357-368), path-style addressing per forcePathStyle (default true,
  objectstore/config.go L225-233). A session without endpoint, region or addressing settings (fromEnv alone: no
  `providers.s3`) builds the SDK's default client (L93-104, L318-352: `s3Options` returns before setting
  UsePathStyle or an endpoint): virtual-hosted addressing at AWS S3 or at the SDK's own endpoint variable
  (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL; S3_ENDPOINT is not one of them), that is BUCKET.HOST, which a cluster's
  SeaweedFS or MinIO service name does not resolve. Here that session fails the task (`LauncherError`), as it would
  fail on a stock install, whatever endpoint the pods were handed.
- The copies (component/launcher_v2.go): `LocalPathForURI` L1239-1253 (gs:// -> /gcs/, minio:// -> /minio/,
  s3:// -> /s3/); `downloadArtifacts` L927-1004 before the command (each input copied whole, objectstore.DownloadBlob
  L176-205; an input in another bucket opens that bucket without a session, L1006-1049); `prepareOutputFolders`
  L1280-1308 (the parents only); `uploadOutputArtifacts` L778-856 after exit 0 (a local path that does not exist is
  skipped with a warning, "We allow components to not produce output files"; TFX writes straight to the URI, so
  every TFX output is skipped and nothing it wrote is overwritten); driver/driver.go `provisionOutputs` L741-810:
  the ExecutorOutput file at TASK_ROOT's local path + /output_metadata.json.
- The pod's environment (driver/k8s.go L347-393): the container's env from the spec, then each secretAsEnv entry's
  keys, the secret named by secretNameParameter (else the deprecated secretName); `optional` lets a missing secret or
  key leave the variable unset.

Here the pod's disk is a scratch folder per task (`pod_root`): /s3/b/k is pod_root/s3/b/k; the namespace's
Kubernetes secrets are a dict (name -> key -> value); the store is reached with boto3. Only S3 sessions are modelled
(no Cloud Storage server runs here).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import yaml

ROOTS = {"gs": "gcs", "minio": "minio", "s3": "s3"}  # LocalPathForURI
CONFIG_MAP = "kfp-launcher"  # config/env.go L37
DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"  # env.go L38
# env.go L177-193 with objectstore/config.go L29 (2.16.0 and later; minio-service.kubeflow:9000 before).
DEFAULT_MINIO_SESSION = {"region": "minio", "endpoint": "seaweedfs.kubeflow:9000", "disableSSL": "true",
                         "fromEnv": "false", "maxRetries": "5", "secretName": "mlpipeline-minio-artifact",
                         "accessKeyKey": "accesskey", "secretKeyKey": "secretkey"}
STRUCTURED = ("region", "endpoint", "disableSSL", "forcePathStyle", "maxRetries")  # HasStructuredS3Settings
BUCKET_PATTERN = re.compile(r"(^[a-z][a-z0-9]+:///?)([^/?]+)(/[^?]*)?(\?.+)?$")  # objectstore/config.go L118
AWS_ENDPOINT = re.compile(r"^(https://)?s3.amazonaws.com")  # object_store.go L354


class LauncherError(RuntimeError):
    """The launcher (or the root DAG's driver) stops here; the message is what it would log."""


@dataclasses.dataclass
class BucketConfig:
    """objectstore.Config: the scheme with its `://`, the bucket, the key prefix ('' or ending in '/')."""

    scheme: str
    bucket: str
    prefix: str = ""
    query: str = ""

    def prefixed_bucket(self) -> str:  # config.go L97-99 (path.Join drops the trailing '/')
        return self.scheme + "/".join(p for p in (self.bucket, self.prefix.strip("/")) if p)


def parse_bucket_path(path: str, artifact: bool = False) -> BucketConfig:
    """ParseBucketPathToConfig (config.go L130-152), or ParseBucketConfigForArtifactURI (L154-169: no prefix)."""
    match = BUCKET_PATTERN.match(path)
    if not match:
        raise LauncherError(f"parse bucket config failed: unrecognized {'uri' if artifact else 'pipeline root'} "
                            f"format: {path!r}")
    if match.group(1) not in ("gs://", "s3://", "minio://", "mem://"):
        raise LauncherError(f"parse bucket config failed: unsupported Cloud bucket: {path!r}")
    if artifact:
        return BucketConfig(match.group(1), match.group(2))
    prefix = (match.group(3) or "").lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return BucketConfig(match.group(1), match.group(2), prefix, match.group(4) or "")


@dataclasses.dataclass
class Session:
    """objectstore.SessionInfo."""

    provider: str
    params: Dict[str, str]

    def to_json(self) -> str:
        """As the root DAG's driver stores it with the run and the launcher records it on each artifact."""
        return json.dumps({"Provider": self.provider, "Params": dict(sorted(self.params.items()))},
                          separators=(",", ":"))


def launcher_config(config_map: Optional[Mapping]) -> Dict[str, str]:
    """The data the driver reads from a ConfigMap manifest (env.go L71-83): only one named kfp-launcher; none is the
    default config ({})."""
    if not config_map:
        return {}
    if config_map.get("kind") != "ConfigMap" or config_map.get("metadata", {}).get("name") != CONFIG_MAP:
        return {}  # the driver asks for kfp-launcher by name: another ConfigMap is never read
    data = config_map.get("data") or {}
    if not all(isinstance(v, str) for v in data.values()):
        raise LauncherError("a ConfigMap's data values are strings (write providers as a YAML block: `|`)")
    return dict(data)


def default_pipeline_root(config: Mapping[str, str]) -> str:
    return config.get("defaultPipelineRoot") or DEFAULT_PIPELINE_ROOT  # env.go L85-92


def _field(mapping: Optional[Mapping], name: str, kind=None):
    """A field as Go's encoding/json finds it: the key matched case-insensitively; a wrong type is an error."""
    if not isinstance(mapping, Mapping):
        return None
    for key, value in mapping.items():
        if str(key).lower() == name.lower():
            if value is not None and kind is not None and not isinstance(value, kind):
                raise LauncherError(f"failed to unmarshall kfp bucket providers, ensure that providers config is "
                                    f"well formed: {name} is {type(value).__name__}")
            return value
    return None


def _flag(value, default: str) -> str:
    return default if value is None else ("true" if value else "false")


def store_session(config: Mapping[str, str], pipeline_root: str) -> Session:
    """GetStoreSessionInfo (env.go L118-161) for the pipeline root, from the launcher config's data."""
    bucket = parse_bucket_path(pipeline_root)
    provider = bucket.scheme[:-3]
    providers = None
    if config.get("providers"):
        try:
            providers = yaml.safe_load(config["providers"])
        except yaml.YAMLError as e:
            raise LauncherError(f"failed to unmarshall kfp bucket providers, ensure that providers config is well "
                                f"formed: {e}") from None
    if provider not in ("minio", "s3"):
        raise NotImplementedError(f"{provider}:// sessions are not modelled here (no such server runs here)")
    settings = _field(providers, provider, Mapping) or {}
    default, overrides = _field(settings, "default", Mapping), _field(settings, "overrides", list)
    if provider == "minio" and default is None and overrides is None and not bucket.query:
        return Session("minio", dict(DEFAULT_MINIO_SESSION))  # minio.go L31-38
    if (default is None and overrides is None) or bucket.query:  # s3.go L87-96
        return Session(provider, {"fromEnv": "true"})
    return Session(provider, _provider_params(default, overrides or [], bucket))


def _invalid(what: str) -> LauncherError:
    return LauncherError(f"invalid provider config: {what}")  # s3.go L81-83


def _provider_params(default, overrides, bucket: BucketConfig) -> Dict[str, str]:
    """S3ProviderConfig.ProvideSessionInfo's params (s3.go L98-171)."""
    credentials = _field(default, "credentials", Mapping)
    if default is None or credentials is None:
        raise _invalid("missing default credentials")
    params = {"endpoint": _field(default, "endpoint", str) or "", "region": _field(default, "region", str) or "",
              "disableSSL": _flag(_field(default, "disableSSL", bool), "false"),
              "forcePathStyle": _flag(_field(default, "forcePathStyle", bool), "true")}
    retries = _field(default, "maxRetries", int)
    params["maxRetries"] = str(5 if retries is None else retries)
    _credential_params(params, credentials, "default")
    override = next((o for o in overrides if _field(o, "bucketName", str) == bucket.bucket
                     and bucket.prefix.startswith(_field(o, "keyPrefix", str) or "")), None)  # L174-182
    if override is None:
        return params
    for key in ("endpoint", "region"):
        if _field(override, key, str):
            params[key] = _field(override, key, str)
    for key in ("disableSSL", "forcePathStyle"):
        if _field(override, key, bool) is not None:
            params[key] = _flag(_field(override, key, bool), "")
    if _field(override, "maxRetries", int) is not None:  # L150-152 takes the default's value, as written there
        if retries is None:
            raise LauncherError("nil pointer dereference: an override's maxRetries needs the default's (s3.go L151)")
        params["maxRetries"] = str(retries)
    credentials = _field(override, "credentials", Mapping)
    if credentials is None:
        raise _invalid("missing override credentials")
    for key in ("secretName", "accessKeyKey", "secretKeyKey"):
        params.pop(key, None)
    _credential_params(params, credentials, "override")
    return params


def _credential_params(params: Dict[str, str], credentials: Mapping, where: str) -> None:
    from_env = bool(_field(credentials, "fromEnv", bool))
    params["fromEnv"] = _flag(from_env, "false")
    if from_env:
        return
    ref = _field(credentials, "secretRef", Mapping)
    if ref is None:
        if where == "override":
            raise _invalid("missing override secretref")
        raise LauncherError("nil pointer dereference: the default's credentials have neither fromEnv nor a secretRef "
                            "(s3.go L124)")
    params.update(secretName=_field(ref, "secretName", str) or "", accessKeyKey=_field(ref, "accessKeyKey", str) or "",
                  secretKeyKey=_field(ref, "secretKeyKey", str) or "")


# -- the launcher's S3 client -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Store:
    """One opened bucket: what objectstore.OpenBucket built, as boto3 settings."""

    bucket: str
    endpoint: str
    access_key: str
    secret_key: str
    region: str

    def client(self):
        import boto3
        import botocore.config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=botocore.config.Config(s3={"addressing_style": "path"},
                                                          retries={"max_attempts": 2}))


def open_bucket(bucket: str, session: Optional[Session], secrets: Mapping[str, Mapping[str, str]],
                pod_env: Mapping[str, str], query: str = "") -> Store:
    """objectstore.OpenBucket for an S3-compatible bucket (object_store.go L43-109)."""
    params = dict(session.params) if session and session.provider in ("minio", "s3") and not query else None
    if params is not None and params.get("fromEnv") == "true" and not any(k in params for k in STRUCTURED):
        params = None  # createS3BucketSession returns no client (L305-307): the SDK's default client below
    if params is None:
        where = pod_env.get("AWS_ENDPOINT_URL_S3") or pod_env.get("AWS_ENDPOINT_URL") or "AWS S3"
        raise LauncherError(
            f"Failed to open bucket {bucket!r}: no store session with an endpoint (no providers.s3 in the "
            f"{CONFIG_MAP} ConfigMap): the SDK's default client addresses it virtual-hosted as {bucket}.HOST at "
            f"{where}, which a cluster's SeaweedFS or MinIO service does not answer (object_store.go L93-104, "
            "L350-352)")
    if params.get("fromEnv") == "true":  # the SDK's chain: the launcher's own process, i.e. the pod's environment
        access, secret = pod_env.get("AWS_ACCESS_KEY_ID", ""), pod_env.get("AWS_SECRET_ACCESS_KEY", "")
        if not (access and secret):
            raise LauncherError(f"Failed to open bucket {bucket!r}: fromEnv credentials, but the pod's environment "
                                "has no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    else:
        access, secret = _secret_keys(params, secrets)
    endpoint = params.get("endpoint", "")
    if not endpoint or AWS_ENDPOINT.match(endpoint.lower()):
        raise LauncherError(f"Failed to open bucket {bucket!r}: the session's endpoint is AWS S3, which no test "
                            "reaches")
    if not endpoint.startswith(("http://", "https://")):  # L357-368
        endpoint = ("http://" if params.get("disableSSL") == "true" else "https://") + endpoint
    if params.get("forcePathStyle", "true") != "true":
        raise LauncherError(f"Failed to open bucket {bucket!r}: forcePathStyle false addresses it virtual-hosted "
                            f"as {bucket}.HOST at {endpoint}, which a cluster's store service does not answer")
    region = params.get("region") or pod_env.get("AWS_REGION") or pod_env.get("AWS_DEFAULT_REGION") or "us-east-1"
    return Store(bucket, endpoint, access, secret, region)


def _secret_keys(params: Mapping[str, str], secrets: Mapping[str, Mapping[str, str]]) -> Tuple[str, str]:
    """getS3BucketCredential (object_store.go L377-407): the secret of the run's namespace, through the API."""
    name = params.get("secretName", "")
    where = f"failed to get Bucket credentials from secret name={name!r} in the run's namespace"
    if name not in secrets:
        raise LauncherError(f"{where}: secrets {name!r} not found")
    access, secret = secrets[name].get(params.get("accessKeyKey", ""), ""), secrets[name].get(
        params.get("secretKeyKey", ""), "")
    if not (access and secret):
        raise LauncherError(f"{where}: could not find specified keys {params.get('accessKeyKey')!r} or "
                            f"{params.get('secretKeyKey')!r}")
    return access, secret


# -- what the launcher copies -------------------------------------------------------------------------------------

def local_path_for_uri(uri: str, pod_root: Path) -> Optional[Path]:
    """The artifact's path on the pod's disk (None: a scheme the launcher has no local path for)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ROOTS:
        return None
    return pod_root / ROOTS[scheme] / rest


def is_object_store(uri: str) -> bool:
    return uri.partition("://")[0] in ROOTS and "://" in uri


def bucket_and_key(uri: str) -> Tuple[str, str]:
    """('bucket', 'key/inside') of s3://bucket/key/inside."""
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key.strip("/")


class Launcher:
    """The store side of one task's launcher: the run's bucket opened with the run's session (launcher_v2.go
    L252-276), other buckets opened as downloadArtifacts opens them."""

    def __init__(self, pipeline_root: str, session: Session, secrets: Mapping[str, Mapping[str, str]],
                 pod_env: Mapping[str, str]):
        self.root = parse_bucket_path(pipeline_root)
        self.session, self.secrets, self.pod_env = session, secrets, pod_env
        self.default = open_bucket(self.root.bucket, session, secrets, pod_env, self.root.query)
        self._clients: Dict[str, object] = {}

    def _client_for(self, uri: str):
        """The default bucket for a URI under the pipeline root or in its bucket; another bucket without a session
        (L1029-1041)."""
        config = parse_bucket_path(uri, artifact=True)
        if uri.startswith(self.root.prefixed_bucket()) or (config.scheme, config.bucket) == (self.root.scheme,
                                                                                              self.root.bucket):
            store = self.default
        else:
            store = open_bucket(config.bucket, None, self.secrets, self.pod_env)
        if store.bucket not in self._clients:
            self._clients[store.bucket] = store.client()
        return self._clients[store.bucket]

    def download_inputs(self, executor_input: dict, pod_root: Path) -> List[str]:
        """downloadArtifacts: every input artifact copied under its local path; returns the keys copied."""
        copied = []
        for listing in executor_input.get("inputs", {}).get("artifacts", {}).values():
            for artifact in listing.get("artifacts", []):
                uri = artifact["uri"]
                local = local_path_for_uri(uri, pod_root)
                if local is None:
                    continue
                client, (bucket, prefix) = self._client_for(uri), bucket_and_key(uri)
                try:
                    pages = list(client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
                except Exception as e:  # the launcher fails the task
                    raise LauncherError(f"failed to download input artifact from remote storage URI {uri!r}: "
                                        f"{e}") from None
                for page in pages:
                    for obj in page.get("Contents", []):
                        key = obj["Key"]
                        if key != prefix and not key.startswith(prefix + "/"):
                            continue  # isBlobKeyUnderPrefix: "a/b" does not take "a/bc"
                        target = local / os.path.relpath(key, prefix) if key != prefix else local
                        target.parent.mkdir(parents=True, exist_ok=True)
                        client.download_file(bucket, key, str(target))
                        copied.append(key)
        return copied

    def upload_outputs(self, executor_input: dict, pod_root: Path) -> Dict[str, str]:
        """uploadOutputArtifacts: each output's local path uploaded to its URI when it exists; returns, per output
        key, 'uploaded N files' or 'skipped: local path does not exist' (the launcher's warning)."""
        report = {}
        for key, listing in executor_input["outputs"].get("artifacts", {}).items():
            uri = listing["artifacts"][0]["uri"]
            local = local_path_for_uri(uri, pod_root)
            if local is None or not local.exists():
                report[key] = "skipped: local path does not exist"
                continue
            client, (bucket, prefix) = self._client_for(uri), bucket_and_key(uri)
            files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
            try:
                for path in files:
                    relative = "" if path == local else str(path.relative_to(local))
                    client.upload_file(str(path), bucket, f"{prefix}/{relative}" if relative else prefix)
            except Exception as e:
                raise LauncherError(f"failed to upload output artifact {key!r} to remote storage URI {uri!r}: "
                                    f"{e}") from None
            report[key] = f"uploaded {len(files)} files"
        return report

    def upload_log(self, log: Path, uri: str) -> None:
        """The task's log, uploaded to the executor-logs artifact's URI."""
        bucket, key = bucket_and_key(uri)
        try:
            self._client_for(uri).upload_file(str(log), bucket, key)
        except Exception as e:
            raise LauncherError(f"failed to upload output artifact 'executor-logs' to remote storage URI "
                                f"{uri!r}: {e}") from None


def prepare_output_folders(executor_input: dict, pod_root: Path) -> None:
    """prepareOutputFolders: the parent of each output artifact's local path, and of each output parameter file."""
    outputs = executor_input["outputs"]
    for spec in outputs.get("parameters", {}).values():
        Path(spec["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
    for key, listing in outputs.get("artifacts", {}).items():
        local = local_path_for_uri(listing["artifacts"][0]["uri"], pod_root)
        if local is None:
            raise LauncherError(f"failed to generate local storage path for output artifact {key!r}: unsupported "
                                "storage scheme")
        local.parent.mkdir(parents=True, exist_ok=True)


def container_env(container: dict, platform_executor: Optional[dict], secrets: Mapping[str, Mapping[str, str]],
                  root_params: Mapping[str, object], task: str) -> Dict[str, str]:
    """The variables the driver gives the pod (driver/k8s.go L347-393): the container's env, then secretAsEnv's. A
    secret or key missing from `secrets` fails the pod (CreateContainerConfigError) unless the entry is optional."""
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    for entry in (platform_executor or {}).get("secretAsEnv", []):
        name = _secret_name(entry, root_params, task)
        secret = secrets.get(name)
        for mapping in entry.get("keyToEnv", []):
            if secret is not None and mapping["secretKey"] in secret:
                env[mapping["envVar"]] = secret[mapping["secretKey"]]
            elif not entry.get("optional"):
                what = (f"secret {name!r} not found" if secret is None else
                        f"couldn't find key {mapping['secretKey']} in Secret {name}")
                raise LauncherError(f"task {task}: {what} (CreateContainerConfigError)")
    return env


def _secret_name(entry: Mapping, root_params: Mapping[str, object], task: str) -> str:
    """secretNameParameter first, else the deprecated secretName (k8s.go L365-381)."""
    parameter = entry.get("secretNameParameter")
    if parameter:
        if "runtimeValue" in parameter:
            return str(parameter["runtimeValue"].get("constant", ""))
        if "componentInputParameter" in parameter:
            return str(root_params[parameter["componentInputParameter"]])
        raise NotImplementedError(f"task {task}: secretNameParameter {sorted(parameter)}")
    if entry.get("secretName"):
        return entry["secretName"]
    raise LauncherError(f"task {task}: missing either SecretName or SecretNameParameter for secret environment "
                        "variable in executor config")
