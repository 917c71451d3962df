"""Regenerates components/release/tf_serving_ops.json: the ops the pinned stock TensorFlow Serving image can run.

The stock `tensorflow/serving` image links TensorFlow's own ops (of the TensorFlow version it was built with) and
tensorflow-text 2.12.1's ops (every image from 2.12 to 2.19 links that release). Both lists are read from the op
registry of a real interpreter, never typed by hand:
- TensorFlow's ops: the registry right after `import tensorflow`, in the project's virtualenv (TensorFlow 2.16,
  the version the pinned image `tensorflow/serving:2.16.1` is built with);
- tensorflow-text's ops: the ops that `import tensorflow_text` (and loading each of its op libraries) adds, in a
  separate virtualenv with tensorflow==2.12.1 and tensorflow-text==2.12.1 (the release the images link), e.g.
      python3.11 -m venv /tmp/tftext212 && /tmp/tftext212/bin/pip install tensorflow-cpu==2.12.1 tensorflow-text==2.12.1

Usage: .venv/bin/python scripts/tf_serving_ops.py --tf-text-python /tmp/tftext212/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "components" / "release" / "tf_serving_ops.json"
# k8s/serving-deployment.yaml pins the same tag (tests/integration/test_k8s.py checks).
IMAGE = "tensorflow/serving:2.16.1"

# Prints {"version": ..., "before": [ops after `import tensorflow`], "after": [ops after tensorflow_text too]}.
_PROBE = r"""
import glob, json, os, sys
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c

def ops():
    proto = op_def_pb2.OpList()
    proto.ParseFromString(c.TF_GetBuffer(c.TF_GetAllOpList()))
    return sorted(op.name for op in proto.op)

before = ops()
after, text_version = before, ""
if sys.argv[1] == "text":
    import tensorflow_text
    text_version = tensorflow_text.__version__
    # Some op libraries are loaded on first use; load all of them.
    for lib in glob.glob(os.path.join(os.path.dirname(tensorflow_text.__file__), "python", "**", "_*.so"),
    recursive=True):
        tf.load_op_library(lib)
    after = ops()
print(json.dumps({"version": tf.__version__, "text_version": text_version, "before": before, "after": after}))
"""


def _registry(python: str, with_text: bool) -> dict:
    out = subprocess.run([python, "-c", _PROBE, "text" if with_text else "core"], check=True, capture_output=True,
                         text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tf-text-python", required=True,
                        help="python of a virtualenv with tensorflow 2.12.1 and tensorflow-text 2.12.1")
    args = parser.parse_args()
    core = _registry(sys.executable, with_text=False)
    text = _registry(args.tf_text_python, with_text=True)
    if text["text_version"] != "2.12.1":
        print(f"error: {args.tf_text_python} has tensorflow-text {text['text_version']}, not 2.12.1", file=sys.stderr)
        return 2
    text_ops = sorted(set(text["after"]) - set(text["before"]))
    data = {
        "image": IMAGE,
        "tensorflow_version": core["version"],
        "tensorflow_text_version": text["text_version"],
        "source": ("TensorFlow's op registry after `import tensorflow` (TensorFlow " + core["version"] + "), and the "
                   "ops tensorflow-text " + text["text_version"] + " registers (on TensorFlow " + text["version"] +
                   "), read by scripts/tf_serving_ops.py; the stock tensorflow/serving 2.12-2.19 images link "
                   "tensorflow-text 2.12.1's ops (tensorflow/serving#1490, #2064, #2267)."),
        "tensorflow_ops": core["before"],
        "tensorflow_text_ops": text_ops,
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{OUT}: {len(core['before'])} TensorFlow ops, {len(text_ops)} tensorflow-text ops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
