"""Classify, Regress and MultiInference on a served version, as TF Serving runs them, on tensorflow-serving-api's
request and response messages: the gRPC methods take them as they come, and REST's `:classify` and `:regress`
build them from JSON first (rest_examples.py), as TF Serving's own REST layer does.

TF Serving's rules, followed here: the signature is the request's `signature_name` (empty: `serving_default`) and
must have the method's name (`tensorflow/serving/classify` or `.../regress`); the input is a list of tf.Examples,
each prefixed with the `context` example when there is one (TF Serving concatenates the serialized bytes, so an
example's own feature wins over the context's); a classify signature's `classes` and `scores` are
[batch, classes]; a regress signature's `outputs` is one number per example. Errors are RestError with the HTTP
status TF Serving's REST layer gives them (400 for INVALID_ARGUMENT); grpc_api.py maps them to status codes.
"""

from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np

from components.module_files import serving_signatures as methods
from pipeline.serving import rest
from pipeline.serving.batching import Arrays
from pipeline.serving.models import LoadedVersion, Signature

Run = Callable[[Signature, Arrays], Arrays]  # runs a signature (through its batcher when there is one)
KIND = {methods.CLASSIFY_METHOD: "classification", methods.REGRESS_METHOD: "regression"}


def run_signature(signature: Signature, inputs: Arrays) -> Arrays:
    """The signature's outputs, merged with concurrent requests when it has a batcher (blocks this thread)."""
    future = signature.batcher.submit(inputs) if signature.batcher else None
    return future.result() if future is not None else signature(inputs)


def serialized_examples(input_proto) -> np.ndarray:
    """A `tensorflow.serving.Input` as the batch of serialized tf.Examples the signature takes."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in input_proto.example_list.examples]
    elif kind == "example_list_with_context":
        context = input_proto.example_list_with_context.context.SerializeToString()
        examples = [context + e.SerializeToString() for e in input_proto.example_list_with_context.examples]
    else:
        examples = []
    if not examples:
        raise rest.bad_request("Input is empty.")
    return np.array(examples, dtype=object)


def signature_for(loaded: LoadedVersion, name: str, method: str) -> Signature:
    """The request's signature, refused as TF Serving refuses it when missing or of another method."""
    name = name or rest.DEFAULT_SIGNATURE
    if name not in loaded.signatures:
        raise rest.bad_request(f"No signature was found with the name: {name}")
    actual = loaded.method_name(name)
    if actual != method:
        raise rest.bad_request(f"Expected {KIND[method]} signature method_name to be {method}. Was: {actual}")
    return loaded.signatures[name]


def _run(run: Run, signature: Signature, examples: np.ndarray) -> Arrays:
    import tensorflow as tf

    try:
        return run(signature, {next(iter(signature.inputs)): examples})
    except tf.errors.InvalidArgumentError as e:  # e.g. bytes that are not a tf.Example
        raise rest.bad_request(str(e.message).strip().splitlines()[0][:500]) from None


def classification_result(outputs: Arrays, rows: int, result) -> None:
    """Fills a ClassificationResult from a classify signature's outputs, checked as TF Serving checks them."""
    classes, scores = outputs.get(methods.CLASSES), outputs.get(methods.SCORES)
    for name, array in ((methods.CLASSES, classes), (methods.SCORES, scores)):
        if array is not None and (array.ndim != 2 or len(array) != rows):
            raise rest.RestError(500, f"Expected {name} of shape [batch_size num_classes] with batch {rows}, got "
                                      f"{list(array.shape)}")
    width = (classes if classes is not None else scores).shape[1]
    for i in range(rows):
        classifications = result.classifications.add()
        for c in range(width):
            entry = classifications.classes.add()
            if classes is not None:
                entry.label = classes[i, c].decode("utf-8", "replace") if isinstance(classes[i, c], bytes) \
                    else str(classes[i, c])
            if scores is not None:
                entry.score = float(scores[i, c])


def regression_result(outputs: Arrays, rows: int, result) -> None:
    values = np.asarray(outputs[methods.REGRESS_OUTPUT])
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or len(values) != rows:
        raise rest.RestError(500, f"Expected output Tensor shape to be [batch_size] or [batch_size, 1] with batch "
                                  f"{rows}, got {list(values.shape)}")
    for value in values:
        result.regressions.add().value = float(value)


def _model_spec(target, loaded: LoadedVersion, model_name: str, signature: str) -> None:
    target.name = model_name
    target.version.value = loaded.version
    target.signature_name = signature or rest.DEFAULT_SIGNATURE


def classify(loaded: LoadedVersion, request, run: Run = run_signature):
    """A ClassificationResponse for a ClassificationRequest."""
    from tensorflow_serving.apis import classification_pb2

    signature = signature_for(loaded, request.model_spec.signature_name, methods.CLASSIFY_METHOD)
    examples = serialized_examples(request.input)
    response = classification_pb2.ClassificationResponse()
    classification_result(_run(run, signature, examples), len(examples), response.result)
    _model_spec(response.model_spec, loaded, request.model_spec.name, request.model_spec.signature_name)
    return response


def regress(loaded: LoadedVersion, request, run: Run = run_signature):
    """A RegressionResponse for a RegressionRequest."""
    from tensorflow_serving.apis import regression_pb2

    signature = signature_for(loaded, request.model_spec.signature_name, methods.REGRESS_METHOD)
    examples = serialized_examples(request.input)
    response = regression_pb2.RegressionResponse()
    regression_result(_run(run, signature, examples), len(examples), response.result)
    _model_spec(response.model_spec, loaded, request.model_spec.name, request.model_spec.signature_name)
    return response


def multi_inference(loaded: LoadedVersion, request, run: Run = run_signature):
    """A MultiInferenceResponse: every task (classify or regress, one model, distinct signatures) on the same
    examples, checked in full before any signature runs, as TF Serving does."""
    from tensorflow_serving.apis import inference_pb2

    if not request.tasks:
        raise rest.bad_request("MultiInferenceRequest must contain at least one task")
    names: List[str] = []
    signatures: Dict[str, Signature] = {}
    for task in request.tasks:
        if not task.model_spec.name:
            raise rest.bad_request("Found ModelSpec with an empty model name.")
        if task.model_spec.name != request.tasks[0].model_spec.name:
            raise rest.bad_request("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        name = task.model_spec.signature_name or rest.DEFAULT_SIGNATURE
        if name in names:
            raise rest.bad_request(f"Duplicate evaluation of signature: {name}")
        names.append(name)
        if name not in loaded.signatures:
            raise rest.bad_request(f"Requested signature not found in model graph: {name}")
        if task.method_name not in KIND:
            raise rest.RestError(501, f"Unsupported signature method_name: {task.method_name}")
        signatures[name] = signature_for(loaded, name, task.method_name)
    examples = serialized_examples(request.input)
    response = inference_pb2.MultiInferenceResponse()
    for task, name in zip(request.tasks, names):
        result = response.results.add()
        outputs = _run(run, signatures[name], examples)
        if task.method_name == methods.CLASSIFY_METHOD:
            classification_result(outputs, len(examples), result.classification_result)
        else:
            regression_result(outputs, len(examples), result.regression_result)
        _model_spec(result.model_spec, loaded, task.model_spec.name, task.model_spec.signature_name)
    return response
