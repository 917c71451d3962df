"""Loads a SavedModel the way a model server does and replays its warm-up requests; run in a fresh process.

    python -m components.release.serving_probe MODEL_DIR

Only TensorFlow, tensorflow-text's op libraries (the C++ ops TF Serving links, not its Python package) and
tensorflow-serving-api's protos are loaded: TFX, TFT, Keras, Beam and tensorflow-text's Python code are blocked
(importing them raises ImportError), so a model that needs anything from those at serving time fails here as it would in
TF Serving. Prints one JSON line: {"ok", "requests", "problems", "seconds"}."""

from __future__ import annotations

import glob
import importlib.abc
import importlib.machinery
import json
import math
import os
import sys
import time

from components.runtime.quiet_exit import quiet_exit

# Python packages a served model must not need (TF Serving has none of them).
FOREIGN_MODULES = ("tfx", "tfx_bsl", "tensorflow_transform", "tensorflow_model_analysis", "tf_keras", "keras",
                   "apache_beam", "tensorflow_text")


class _Blocked(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes importing FOREIGN_MODULES fail with ImportError (TensorFlow's own optional imports of Keras then take
    their fallbacks); looking them up (`importlib.util.find_spec`) finds a module with no file."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in FOREIGN_MODULES:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        raise ImportError(f"{spec.name} is not available to a model server", name=spec.name)

    def exec_module(self, module):  # never reached: create_module refuses
        raise ImportError(module.__name__)


def _check_outputs(signature: str, batch: int, outputs) -> list:
    import numpy as np

    problems = []
    for name, value in outputs.items():
        array = value.numpy()
        if array.ndim == 0 or array.shape[0] != batch:
            problems.append(f"signature {signature!r}: output {name!r} has shape {list(array.shape)} for a batch of "
                            f"{batch}")
        elif array.dtype.kind == "f" and not np.isfinite(array).all():
            problems.append(f"signature {signature!r}: output {name!r} is not finite")
    # the predict signatures' (one per task with several label columns: "rating/probabilities") and the classify one's
    for name in sorted(outputs):
        if name in ("probabilities", "scores") or name.endswith("/probabilities"):
            sums = outputs[name].numpy().sum(axis=-1)
            if not all(math.isclose(float(s), 1.0, abs_tol=1e-3) for s in sums):
                problems.append(f"signature {signature!r}: {name} do not sum to 1 ({sums.tolist()})")
    return problems


def load_text_ops(tf) -> int:
    """Registers tensorflow-text's ops from its shared libraries, as a model server linking them has them, without
    importing its Python package (which needs Keras). Returns the number of libraries loaded."""
    spec = importlib.machinery.PathFinder.find_spec("tensorflow_text")  # where it is, without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tensorflow-text is not installed")
    libraries = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], "python", "**", "_*.so"),
                                 recursive=True))
    for library in libraries:
        tf.load_op_library(library)
    return len(libraries)


def probe(model_dir: str) -> dict:
    start = time.time()
    import tensorflow as tf

    from components.module_files import warmup

    load_text_ops(tf)

    problems = []
    model = tf.saved_model.load(model_dir)
    requests = warmup.read_requests(model_dir)
    if not requests:
        problems.append(f"no warm-up requests ({warmup.ASSETS_EXTRA}/{warmup.WARMUP_FILE})")
    for i, (signature, inputs) in enumerate(requests):
        if signature not in model.signatures:
            problems.append(f"warm-up request {i + 1}: no signature {signature!r}")
            continue
        try:
            outputs = model.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        except Exception as e:  # noqa: BLE001 - reported: which request failed and how
            problems.append(f"warm-up request {i + 1} on {signature!r} failed: "
                            f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}")
            continue
        problems += _check_outputs(signature, len(next(iter(inputs.values()))), outputs)
    return {"ok": not problems, "requests": len(requests), "problems": problems,
            "seconds": round(time.time() - start, 1)}


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.meta_path.insert(0, _Blocked())
    try:
        result = probe(sys.argv[1])
    except Exception as e:  # noqa: BLE001 - a model that does not even load
        result = {"ok": False, "requests": 0,
                  "problems": [f"the model does not load: {type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
                               if str(e).strip() else f"the model does not load: {type(e).__name__}"]}
    print(json.dumps(result), flush=True)
    quiet_exit(0)
