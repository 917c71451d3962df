"""The run history on an object store: the records of two runs written under an s3:// pipeline root (moto's S3
server on 127.0.0.1, support/s3_server.py) through the storage layer, one whole object each, and read back in order
by a fresh process, as the Kubeflow RunReport step and a local run on an s3:// root do."""

import json
import os
import subprocess
import sys

from support import REPO

# Two runs, each in its own process (as two pipeline runs are), then a third process reads the history.
_WRITE = """
import json, os, sys
from components.runtime.object_store import load_file_systems
from components.release import run_history
from components.release.run_summary import RunSummary
root = sys.argv[1]
load_file_systems([root])
history = run_history.record_run(root, RunSummary(dataset="custom", model_uri=sys.argv[2], blessed=True,
                                                  eval_metrics={"sparse_categorical_accuracy": float(sys.argv[3])}))
print(json.dumps([r["run_id"] for r in history]), flush=True)
os._exit(0)  # tensorflow-io aborts at exit once its S3 file system was used (components/runtime/object_store.py)
"""
_READ = """
import json, os, sys
from components.runtime.object_store import load_file_systems
from components.release import run_history
load_file_systems([sys.argv[1]])
print(json.dumps(run_history.read(sys.argv[1])), flush=True)
os._exit(0)
"""


def python(code: str, *args, env) -> list:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO), **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_runs_append_two_whole_objects_read_back_in_order(s3_server):
    bucket = s3_server.bucket("run-history")
    root = f"s3://{bucket}/pipelines/reviews/root"
    env = s3_server.env()
    assert python(_READ, root, env=env) == []  # nothing under the prefix yet: no history, no error
    first = python(_WRITE, root, "s3://run-history/root/Trainer/model/1", "0.81", env=env)
    second = python(_WRITE, root, "s3://run-history/root/Trainer/model/2", "0.86", env=env)
    assert len(first) == 1 and second[:1] == first and len(second) == 2
    keys = s3_server.keys(bucket, "pipelines/reviews/root/")
    assert keys == [f"pipelines/reviews/root/history/{run_id}.json" for run_id in second]
    history = python(_READ, root, env=env)
    assert [r["run_id"] for r in history] == second
    assert [r["eval_metrics"]["sparse_categorical_accuracy"] for r in history] == [0.81, 0.86]
    assert [r["trained"] for r in history] == [True, True]
    assert json.loads(s3_server.read(bucket, keys[0]))["run_id"] == first[0]
