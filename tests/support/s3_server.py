"""An S3-compatible server on 127.0.0.1 for the tests: moto's standalone server (pinned in requirements-s3.lock),
started as a process of its own, in memory, stopped at the end. It speaks S3's REST API path-style as MinIO and
SeaweedFS do, so TensorFlow's (tensorflow-io) and Beam's (boto3) S3 file systems reach it with the same settings as
a stock Kubeflow's store: an endpoint and a key pair.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List

ACCESS_KEY, SECRET_KEY = "test-access-key", "test-secret-key"  # moto accepts any pair; these are what the runs send


class S3Server:
    def __init__(self, log: Path):
        self.log = log
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def __enter__(self) -> "S3Server":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                          str(self.port)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=2).read()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def env(self) -> Dict[str, str]:
        """The environment of a process that uses the store (the credentials; the endpoint too, which the runners
        also take as --s3-endpoint)."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1",
                "S3_ENDPOINT": self.endpoint, "AWS_ENDPOINT_URL_S3": self.endpoint}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> List[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
