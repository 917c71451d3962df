"""Every path flag keeps a URI a URI (Path("s3://b/r") would be the relative folder s3:/b/r): a scheme no installed
file system opens, an S3 bucket that does not exist and an S3 endpoint where no server answers are refused in one
line naming the flag, before anything is read or written. The runner and the server are run as a user runs them,
from an empty working folder that must stay empty; the S3 server is moto's, on 127.0.0.1 (support/s3_server.py).
A run that really uses the store is tests/e2e/test_object_store.py's."""

import os
import subprocess
import sys

import pytest

from support import REPO, assert_one_error

FLAGS = ["--pipeline-root", "--serving-dir", "--data-root", "--schema", "--unlabeled-data", "--pretrained",
         "--summary-json"]


def run(tmp_path, script, *args, env=None):
    full = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, str(REPO / "pipeline" / script), *args], cwd=tmp_path, env=full,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("flag", FLAGS)
def test_a_scheme_no_file_system_opens_is_refused_naming_the_flag(tmp_path, flag):
    proc = run(tmp_path, "run_local.py", flag, "hdfs://namenode/data")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, f"{flag} hdfs://namenode/data:", "no file system for hdfs://", "s3://")
    assert os.listdir(tmp_path) == []  # no folder named hdfs:, no report, no summary


def test_kfps_minio_scheme_is_refused_with_the_s3_uri_to_write_instead(tmp_path):
    proc = run(tmp_path, "run_local.py", "--pipeline-root", "minio://mlpipeline/v2/artifacts")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, "--pipeline-root minio://mlpipeline/v2/artifacts:", "s3://mlpipeline/v2/artifacts",
                     "--s3-endpoint")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flag", FLAGS)
def test_an_s3_bucket_that_does_not_exist_is_refused_naming_the_flag(tmp_path, s3_server, flag):
    proc = run(tmp_path, "run_local.py", flag, "s3://no-such-bucket/x", "--s3-endpoint", s3_server.endpoint,
               env={**s3_server.env(), "S3_ENDPOINT": ""})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, f"{flag} s3://no-such-bucket/x:", "bucket 'no-such-bucket' does not exist at "
                     f"{s3_server.endpoint}")
    assert os.listdir(tmp_path) == []


def test_an_endpoint_where_no_server_answers_is_refused(tmp_path, s3_server):
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    proc = run(tmp_path, "run_local.py", "--pipeline-root", "s3://runs/root", "--s3-endpoint", closed,
               env=s3_server.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, "--pipeline-root s3://runs/root:", f"no S3 server answers at {closed}",
                     "--s3-endpoint")
    assert os.listdir(tmp_path) == []


def test_data_that_is_not_on_the_store_is_refused_naming_the_flag(tmp_path, s3_server):
    s3_server.bucket("locations-data")
    proc = run(tmp_path, "run_local.py", "--data-root", "s3://locations-data/incoming", env=s3_server.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, "--data-root s3://locations-data/incoming does not exist")
    assert os.listdir(tmp_path) == []


def test_tensorflows_spelling_of_the_endpoint_reaches_the_same_store(tmp_path, s3_server):
    """S3_ENDPOINT=HOST:PORT with the scheme in S3_USE_HTTPS=0, as TensorFlow's S3 file system reads it: the same
    store, so the same refusal as above (before: 'must start with http:// or https://')."""
    s3_server.bucket("locations-bare")
    env = {**s3_server.env(), "S3_ENDPOINT": s3_server.endpoint.split("://", 1)[1], "AWS_ENDPOINT_URL_S3": "",
           "S3_USE_HTTPS": "0"}
    proc = run(tmp_path, "run_local.py", "--data-root", "s3://locations-bare/incoming", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, "--data-root s3://locations-bare/incoming does not exist")


def test_the_server_refuses_a_scheme_it_cannot_open_and_a_missing_bucket(tmp_path, s3_server):
    proc = run(tmp_path, "serve.py", "--serving-dir", "hdfs://namenode/serving")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, "--serving-dir hdfs://namenode/serving:", "no file system for hdfs://")
    proc = run(tmp_path, "serve.py", "--serving-dir", "s3://no-such-bucket/serving", env=s3_server.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, "--serving-dir s3://no-such-bucket/serving:", "does not exist")
    assert os.listdir(tmp_path) == []


def test_every_path_flag_keeps_a_uri_as_given():
    from pathlib import Path

    from pipeline import run_local
    from pipeline.cli.locations import Uri, local_path

    assert local_path("runs/root") == Path("runs/root") and local_path("/abs/c:d") == Path("/abs/c:d")
    argv = []
    for flag in FLAGS:
        argv += [flag, f"s3://bucket/{flag.strip('-')}"]
    args = run_local.build_parser().parse_args(argv)
    for flag in FLAGS:
        value = getattr(args, flag.strip("-").replace("-", "_"))
        assert value == f"s3://bucket/{flag.strip('-')}", flag
        assert isinstance(value, Uri) or flag == "--pretrained", flag  # --pretrained is a string flag ('none')


def test_one_endpoint_setting_reaches_both_file_systems(monkeypatch):
    from components.runtime import object_store

    for name in object_store.ENDPOINT_VARIABLES + ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("S3_USE_HTTPS", raising=False)
    env = object_store.s3_environment("http://seaweedfs.kubeflow:8333")
    # tensorflow-io reads S3_ENDPOINT, boto3 (Beam) AWS_ENDPOINT_URL_S3; plain http turns TLS checks off
    assert env == {"S3_ENDPOINT": "http://seaweedfs.kubeflow:8333", "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0",
                   "AWS_ENDPOINT_URL_S3": "http://seaweedfs.kubeflow:8333", "AWS_REGION": "us-east-1"}
    # TensorFlow's spelling: HOST:PORT, HTTPS unless S3_USE_HTTPS=0; both layers get the URL
    assert object_store.s3_environment("seaweedfs.kubeflow:8333")["AWS_ENDPOINT_URL_S3"] == \
        "https://seaweedfs.kubeflow:8333"
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    assert object_store.s3_environment("seaweedfs.kubeflow:8333") == env
    with pytest.raises(object_store.StorageError, match="must be http\\(s\\)://HOST:PORT, or HOST:PORT"):
        object_store.s3_environment("ftp://seaweedfs.kubeflow:8333")


@pytest.mark.parametrize("flag", ["--pipeline-root", "--serving-dir", "--data-root", "--schema", "--unlabeled-data",
                                  "--pretrained"])
def test_the_kubeflow_compiler_refuses_a_scheme_the_image_cannot_open(tmp_path, flag):
    proc = run(tmp_path, "run_kubeflow.py", "compile", "--output", str(tmp_path / "spec.yaml"), "--pipeline-root",
               "s3://bucket/root", flag, "hdfs://namenode/x")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, f"{flag} hdfs://namenode/x:", "no file system for hdfs://")
    assert os.listdir(tmp_path) == []


def test_a_schema_and_data_on_the_store_are_read_and_named_as_given(tmp_path, s3_server):
    """The input checks read --schema and --data-root from local copies, and name the store's URIs in what they
    say: here the schema's label domain (good, bad) does not list the data's labels."""
    bucket = s3_server.bucket("locations-inputs")
    schema = (REPO / "schema" / "rotten_tomatoes" / "schema.pbtxt").read_text()
    schema = schema.replace('value: "fresh"', 'value: "good"').replace('value: "rotten"', 'value: "bad"')
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="schemas/schema.pbtxt", Body=schema.encode())
    client.put_object(Bucket=bucket, Key="data/reviews.csv",
                      Body=b"text,label\na gripping film,fresh\na dull film,rotten\n")
    proc = run(tmp_path, "run_local.py", "--data-root", f"s3://{bucket}/data", "--schema",
               f"s3://{bucket}/schemas/schema.pbtxt", env=s3_server.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_error(proc.stderr, f"s3://{bucket}/data/reviews.csv: label values that "
                     f"s3://{bucket}/schemas/schema.pbtxt does not list for column 'label'")
    assert os.listdir(tmp_path) == []
