"""Object-store locations (s3://, gs://): which file systems open them, S3's settings, and the check at the door.

Every step reads and writes its artifacts through two file system layers: TensorFlow's (tf.io.gfile, which TFX's
fileio, SavedModels, TFRecord datasets, TFT and TFMA use) and Beam's (apache_beam.io.filesystems, which ExampleGen,
StatisticsGen, Transform and the Evaluator write their outputs with). For gs:// both come with the pinned packages
(tensorflow-io-gcs-filesystem, google-cloud-storage). For s3:// TensorFlow 2.16 has nothing of its own: its S3 file
system lives in tensorflow-io and is registered by importing it (`load_file_systems`); Beam's is boto3. Both read the
endpoint and the credentials from the environment, each under its own names, so one endpoint setting is written to
both (`configure_s3`): tensorflow-io reads S3_ENDPOINT, boto3 AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL); both read
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and AWS_REGION. Both address buckets path-style on a custom endpoint
(http://HOST:PORT/BUCKET/KEY), which is what MinIO and SeaweedFS serve.

The endpoint takes either spelling: a URL (http://HOST:PORT), or TensorFlow's own convention, which TFX-on-Kubeflow
guides use: S3_ENDPOINT=HOST:PORT with the scheme in S3_USE_HTTPS (HTTPS unless it is 0) and S3_VERIFY_SSL=0 to skip
certificate checks (tensorflow/core/platform/s3/s3_file_system.h, "S3 uses HTTPS by default. If S3_USE_HTTPS=0 is
specified, HTTP is used"; tensorflow-io's S3 file system kept the variables). boto3 wants a URL, so both layers are
given the URL form.

tensorflow-io 0.37.1 (the last release for TF 2.16) aborts the process at exit once its S3 file system has been used
("pure virtual method called", exit status 134: tensorflow/io#2039, fixed in its sources after that release); the
entry points end with components/runtime/quiet_exit.py's os._exit, which skips the C++ teardown where that happens.
"""

from __future__ import annotations

import importlib.util
import os
import re
from typing import Iterable, Optional

from components.runtime.storage import is_uri, scheme

# The environment variables of the endpoint: the first set one is the endpoint, for both layers.
ENDPOINT_VARIABLES = ("S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# AWS's SDKs want a region even where the server ignores it (MinIO, SeaweedFS, moto); this one when none is set.
DEFAULT_REGION = "us-east-1"
INSTALL_S3 = "pip install -r requirements-s3.lock (or the project's `s3` extra; `make` installs it)"


class StorageError(Exception):
    """A location the user named that no installed file system opens, or an object store that does not answer."""


def endpoint() -> Optional[str]:
    """The S3 endpoint this process uses, as a URL (None: the AWS default, s3.amazonaws.com)."""
    value = next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), None)
    return endpoint_url(value) if value else None


def endpoint_url(value: str) -> str:
    """http(s)://HOST:PORT for an endpoint given either way: a URL as it is, a bare HOST:PORT with the scheme of
    S3_USE_HTTPS (TensorFlow's convention: HTTPS unless S3_USE_HTTPS is 0)."""
    if re.match(r"^https?://", value):
        return value
    if is_uri(value):
        raise StorageError(f"S3 endpoint {value!r} must be http(s)://HOST:PORT, or HOST:PORT with S3_USE_HTTPS=0 "
                           "for http (e.g. http://seaweedfs.kubeflow:8333).")
    secure = os.environ.get("S3_USE_HTTPS", "1").strip()[:1] != "0"
    return ("https://" if secure else "http://") + value


def s3_environment(s3_endpoint: Optional[str]) -> dict:
    """The environment both S3 file systems read, for `s3_endpoint` (None: keep what the environment says)."""
    env = {}
    value = endpoint_url(s3_endpoint) if s3_endpoint else endpoint()
    if value:
        env.update(S3_ENDPOINT=value, AWS_ENDPOINT_URL_S3=value)
        if value.startswith("http://"):
            env.update(S3_USE_HTTPS="0", S3_VERIFY_SSL="0")
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        env["AWS_REGION"] = DEFAULT_REGION
    return env


def configure_s3(s3_endpoint: Optional[str]) -> None:
    """Points this process (and the processes it starts) at `s3_endpoint`, for TensorFlow's and Beam's S3 layers."""
    os.environ.update(s3_environment(s3_endpoint))


def _missing_for(kind: str) -> list:
    needs = {"s3": [("tensorflow_io", "tensorflow-io"), ("boto3", "boto3")],
             "gs": [("google.cloud.storage", "google-cloud-storage")]}[kind]
    missing = []
    for module, package in needs:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(package)
    return missing


def require(path: str, flag: str) -> None:
    """StorageError naming `flag` when no installed file system opens `path` (local paths always pass)."""
    kind = scheme(path)
    if not kind:
        return
    if kind == "minio":
        raise StorageError(f"{flag} {path}: TensorFlow and Beam have no minio:// file system; KFP's minio://BUCKET/KEY "
                           f"is the S3 bucket BUCKET on the MinIO service: write s3://{path.split('://', 1)[1]} and "
                           "point --s3-endpoint (or S3_ENDPOINT) at that service.")
    if kind not in ("s3", "gs"):
        raise StorageError(f"{flag} {path}: no file system for {kind}:// is installed; use a local path, "
                           "s3:// (an S3-compatible store) or gs:// (Cloud Storage).")
    missing = _missing_for(kind)
    if missing:
        raise StorageError(f"{flag} {path}: {kind}:// needs {' and '.join(missing)}, which are not installed; "
                           + (INSTALL_S3 if kind == "s3" else "pip install google-cloud-storage") + ".")


def load_file_systems(paths: Iterable[str]) -> None:
    """Registers TensorFlow's S3 file system in this process when any of `paths` is on s3:// (importing tensorflow-io
    does it; tf.io.gfile then opens s3:// in every thread of the process)."""
    if any(scheme(p) == "s3" for p in paths if p):
        import tensorflow_io  # noqa: F401  (registers the s3:// file system with TensorFlow)


def bucket_and_key(uri: str):
    """('bucket', 'key/inside') of s3://bucket/key/inside."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key.strip("/")


def check_bucket(uri: str, flag: str) -> None:
    """StorageError in one sentence when the S3 bucket of `uri` cannot be used: no server at the endpoint, no such
    bucket, or credentials refused. Asked before the run writes anything (a boto3 HEAD on the bucket)."""
    if scheme(uri) != "s3":
        return
    import boto3
    import botocore.config
    import botocore.exceptions as errors

    bucket, _ = bucket_and_key(uri)
    where = endpoint() or "AWS S3 (no S3_ENDPOINT set)"
    try:
        quick = botocore.config.Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1})
        boto3.client("s3", endpoint_url=endpoint(), config=quick).head_bucket(Bucket=bucket)
    except errors.NoCredentialsError:
        raise StorageError(f"{flag} {uri}: no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a "
                           "Kubeflow keeps its store's keys in the secret mlpipeline-minio-artifact).") from None
    except (errors.EndpointConnectionError, errors.ConnectTimeoutError, errors.ReadTimeoutError) as e:
        raise StorageError(f"{flag} {uri}: no S3 server answers at {where} ({type(e).__name__}); set --s3-endpoint "
                           "or S3_ENDPOINT to the store's http(s)://HOST:PORT (or HOST:PORT with S3_USE_HTTPS=0)."
                           ) from None
    except errors.ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise StorageError(f"{flag} {uri}: bucket {bucket!r} does not exist at {where}; create it first (e.g. "
                               f"`mc mb ALIAS/{bucket}` on MinIO, `aws s3 mb s3://{bucket}`).") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise StorageError(f"{flag} {uri}: {where} refuses these credentials for bucket {bucket!r} ({code}); check "
                               "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.") from None
        raise StorageError(f"{flag} {uri}: {where} answered {code or e} for bucket {bucket!r}.") from None
