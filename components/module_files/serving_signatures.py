"""TF Serving's method names on an exported SavedModel's signatures.

TF Serving routes Classify and Regress requests (gRPC, and REST `:classify`/`:regress`) only to signatures whose
`method_name` is `tensorflow/serving/classify` or `tensorflow/serving/regress`, and TFX's InfraValidator builds its
requests by method name too. `tf.saved_model.save` writes `tensorflow/serving/predict` on every signature and offers no
way to say otherwise (an Estimator used to write classification signatures), so the exporter rewrites the method names
in `saved_model.pb` after saving and writes the fingerprint again, which hashes that file. TensorFlow's own loader
ignores method names, so the Keras/TF side sees no difference.

A classify signature has TF Serving's shape: one input `inputs` (serialized tf.Examples) and the outputs `classes`
(class names, [batch, classes], strings) and/or `scores` ([batch, classes], float32).

Only TensorFlow is imported, and only when a function needs it: the serving probe runs this in a process without
TFX or Keras, and the local server reads its names before loading TensorFlow.
"""

from __future__ import annotations

import os
from typing import Dict, Mapping

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_SIGNATURE = "classification"  # the key an Estimator classifier gave its classify signature
CLASSIFY_INPUT, CLASSES, SCORES = "inputs", "classes", "scores"
REGRESS_INPUT, REGRESS_OUTPUT = "inputs", "outputs"


def _saved_model(export_dir: str):
    import tensorflow as tf  # deferred: the servers import the names above before TensorFlow is needed
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pb"), "rb") as f:  # a local folder or a store
        saved.ParseFromString(f.read())
    return saved


def method_names(export_dir: str) -> Dict[str, str]:
    """Signature name -> method name, from the serving graph of `export_dir`."""
    saved = _saved_model(export_dir)
    graph = next((m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags), saved.meta_graphs[0])
    return {name: signature.method_name for name, signature in graph.signature_def.items()}


def set_method_names(export_dir: str, methods: Mapping[str, str]) -> None:
    """Gives the signatures named in `methods` those method names, after checking each has the inputs and outputs
    TF Serving requires of its method; raises ValueError naming the signature otherwise."""
    saved = _saved_model(export_dir)
    for graph in saved.meta_graphs:
        for name, method in methods.items():
            if name not in graph.signature_def:
                raise ValueError(f"the SavedModel in {export_dir} has no signature {name!r}")
            signature = graph.signature_def[name]
            problem = shape_problem(method, {k: v.dtype for k, v in signature.inputs.items()},
                                    {k: v.dtype for k, v in signature.outputs.items()})
            if problem:
                raise ValueError(f"signature {name!r} cannot be a {method} signature: {problem}")
            signature.method_name = method
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pb"), "wb") as f:
        f.write(saved.SerializeToString(deterministic=True))
    # Private, but it is what tf.saved_model.save itself calls: the fingerprint hashes saved_model.pb.
    from tensorflow.python.saved_model import fingerprinting_utils

    fingerprinting_utils.write_fingerprint(export_dir)


def shape_problem(method: str, inputs: Mapping[str, int], outputs: Mapping[str, int]) -> str:
    """What keeps a signature with these input and output dtypes (DataType enums) from serving `method`, as TF
    Serving's classifier and regressor check it ("" when nothing)."""
    from tensorflow.core.framework import types_pb2

    if method == CLASSIFY_METHOD:
        if set(inputs) != {CLASSIFY_INPUT} or inputs[CLASSIFY_INPUT] != types_pb2.DT_STRING:
            return f"it must take one string input named {CLASSIFY_INPUT!r} (serialized tf.Examples)"
        if not outputs or set(outputs) - {CLASSES, SCORES}:
            return f"its outputs must be {CLASSES!r} and/or {SCORES!r}, not {sorted(outputs)}"
        if outputs.get(CLASSES, types_pb2.DT_STRING) != types_pb2.DT_STRING or \
                outputs.get(SCORES, types_pb2.DT_FLOAT) != types_pb2.DT_FLOAT:
            return f"{CLASSES!r} must be strings and {SCORES!r} float32"
    elif method == REGRESS_METHOD:
        if set(inputs) != {REGRESS_INPUT} or inputs[REGRESS_INPUT] != types_pb2.DT_STRING:
            return f"it must take one string input named {REGRESS_INPUT!r} (serialized tf.Examples)"
        if set(outputs) != {REGRESS_OUTPUT} or outputs[REGRESS_OUTPUT] != types_pb2.DT_FLOAT:
            return f"it must have one float32 output named {REGRESS_OUTPUT!r}"
    elif method != PREDICT_METHOD:
        return f"unknown method name {method!r}"
    return ""
