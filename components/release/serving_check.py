"""ServingCheck: the candidate model proves it can be served before it is evaluated or pushed.

TFX's InfraValidator does this by starting the real model server (Docker or Kubernetes) on the candidate. Where
neither is at hand (a laptop, this project's CI), this step checks what such a server would trip on:
1. every op that each signature of the SavedModel can run is one the pinned stock TF Serving image has
   (components/release/serving_ops.py, list in tf_serving_ops.json): TensorFlow's own plus tensorflow-text 2.12.1's;
2. in a fresh process that imports only TensorFlow and tensorflow-text (components/release/serving_probe.py), the model
   loads and answers its TF Serving warm-up requests (components/module_files/warmup.py) with well-formed outputs.

A model that fails stops the run here, before the Evaluator (so it is never blessed, and never becomes the baseline
"model in service" of a later run) and before the Pusher; the error names the signature and op, or the request,
that failed. A model that passes gets an `InfraBlessing` (blessed), the artifact InfraValidator produces, which the
Pusher requires.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tfx import v1 as tfx
from tfx.utils import io_utils

from components.release import serving_ops
from components.runtime.storage import is_uri

BLESSED_FILE = "INFRA_BLESSED"  # what InfraValidator writes into a blessed InfraBlessing
REPORT_FILE = "serving_check.json"
PROBE_TIMEOUT_SECONDS = 600
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `components` package


class ServingCheckError(RuntimeError):
    """The model cannot be served by the stock TF Serving image; the message says which op or request failed."""


def check_ops(model_dir: str, serving: serving_ops.ServingOps) -> dict:
    """{"ops": number of distinct ops, "missing": {signature: [ops]}}."""
    by_signature = serving_ops.signature_ops(model_dir)
    return {"ops": len(set().union(*by_signature.values())) if by_signature else 0,
            "missing": serving_ops.missing_ops(model_dir, serving)}


def run_probe(model_dir: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict:
    """Runs components/release/serving_probe.py on `model_dir` in a fresh interpreter; its JSON result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(":"),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        done = subprocess.run([sys.executable, "-m", "components.release.serving_probe", model_dir], cwd=str(_ROOT),
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "requests": 0, "problems": [f"loading and warming up took over {timeout:.0f} s"]}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {"ok": False, "requests": 0, "problems": [f"the serving probe crashed (exit {done.returncode}): {tail}"]}
    return json.loads(lines[-1])


def describe_failure(model_dir: str, serving: serving_ops.ServingOps, ops: dict, probe: dict) -> str:
    parts = [f"signature {name!r} uses op{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which "
             f"{serving.image} does not have (it runs TensorFlow's ops and tensorflow-text "
             f"{serving.tensorflow_text_version}'s: {serving_ops.OPS_FILE.name})"
             for name, missing in ops["missing"].items()]
    parts += probe.get("problems", [])
    return (f"the model cannot be served, so it was neither evaluated nor pushed ({model_dir}): " + "; ".join(parts) +
            ". Use only ops the serving image has (for tensorflow-text, those of release "
            f"{serving.tensorflow_text_version}) or serve with an image built with the newer ops.")


def check_model(model_dir: str) -> dict:
    """Both checks on a SavedModel folder; the report, or ServingCheckError."""
    serving = serving_ops.load_serving_ops()
    ops = check_ops(model_dir, serving)
    probe = run_probe(model_dir)
    if ops["missing"] or not probe.get("ok"):
        raise ServingCheckError(describe_failure(model_dir, serving, ops, probe))
    return {"image": serving.image, "ops": ops["ops"], "warmup_requests": probe["requests"],
            "probe_seconds": probe.get("seconds")}


@tfx.dsl.components.component
def ServingCheck(
        model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.InfraBlessing],
        code_version: tfx.dsl.components.Parameter[str] = ""):
    """Blesses the Trainer's model for serving, or fails the run naming the op or warm-up request that failed.
    `code_version`: a digest of the project's code and op list (a change re-runs the check instead of reusing it)."""
    import tensorflow as tf

    del code_version
    model_dir = os.path.join(model.uri, "Format-Serving")
    if is_uri(model_dir):  # an object store (Kubeflow): the checks read a local copy
        with tempfile.TemporaryDirectory() as local:
            io_utils.copy_dir(model_dir, local)
            report = check_model(local)
    else:
        report = check_model(model_dir)
    tf.io.gfile.makedirs(blessing.uri)  # TFX's local runner creates output folders; KFP's launcher does not
    with tf.io.gfile.GFile(os.path.join(blessing.uri, BLESSED_FILE), "w") as f:
        f.write("")
    with tf.io.gfile.GFile(os.path.join(blessing.uri, REPORT_FILE), "w") as f:
        f.write(json.dumps(report))
    blessing.set_int_custom_property("blessed", 1)


def read_report(blessing_uri: str) -> dict:
    import tensorflow as tf

    path = os.path.join(blessing_uri, REPORT_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    return json.loads(tf.io.gfile.GFile(path).read())
