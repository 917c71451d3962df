"""The request log's records: one `tensorflow.serving.PredictionLog` per logged request, as TF Serving would write it.

A gRPC request is kept as it came and its response as it was sent. A REST request is kept as the gRPC request it is
equivalent to, so one reader serves both: `:predict` becomes a PredictRequest whose inputs are the decoded tensors
(raw texts as a string tensor, whether the body was in the row or the columnar format), `:classify` and `:regress`
the ClassificationRequest or RegressionRequest that rest_examples.py built from the JSON; the version or label in the
URL goes into the request's model spec. `log_metadata` says which model, signature and version answered, the
sampling config in force and when (seconds since the epoch), and the SavedModel tags the server loaded (`serve`).

The builders run on the collector's writer thread, not on the request's: a request only queues the objects it
already holds (request_log.py).
"""

from __future__ import annotations

import functools
from typing import Mapping, Optional

import numpy as np
from tensorflow_serving.apis import prediction_log_pb2

from pipeline.serving import tensors

SAVED_MODEL_TAGS = ("serve",)  # the tags the server loads (models.py)


def _metadata(log, model: str, version: int, signature: str, rate: float, when: float) -> None:
    meta = log.log_metadata
    meta.model_spec.name = model
    meta.model_spec.version.value = version
    meta.model_spec.signature_name = signature
    meta.sampling_config.sampling_rate = rate
    meta.saved_model_tags.extend(SAVED_MODEL_TAGS)
    meta.timestamp_secs = int(when)


def _requested(spec, version: Optional[int], label: Optional[str]) -> None:
    if version is not None:
        spec.version.value = version
    elif label is not None:
        spec.version_label = label


@functools.lru_cache(maxsize=256)
def _predict_template(rate: float, model: str, version: int, signature: str, requested_version: Optional[int],
                      label: Optional[str]) -> prediction_log_pb2.PredictionLog:
    """What the records of one model version's REST predicts share: the model specs and the metadata but the time."""
    log = prediction_log_pb2.PredictionLog()
    request, response = log.predict_log.request, log.predict_log.response
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    _requested(request.model_spec, requested_version, label)
    response.model_spec.name = model
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature
    _metadata(log, model, version, signature, rate, 0.0)
    return log


def rest_predict(rate: float, when: float, model: str, version: int, signature: str, requested_version: Optional[int],
                 label: Optional[str], inputs: Mapping[str, np.ndarray],
                 outputs: Mapping[str, np.ndarray]) -> prediction_log_pb2.PredictionLog:
    """A REST `:predict` as the PredictRequest and PredictResponse a gRPC client would have exchanged. Built from a
    copy of its version's template: the writer's time per record is time the threads answering requests wait for the
    GIL, and the fields set one by one cost as much as the tensors."""
    log = prediction_log_pb2.PredictionLog()
    log.CopyFrom(_predict_template(rate, model, version, signature, requested_version, label))
    log.log_metadata.timestamp_secs = int(when)
    request_inputs = log.predict_log.request.inputs
    for name, array in inputs.items():
        tensors.fill(request_inputs[name], array)
    response_outputs = log.predict_log.response.outputs
    for name in sorted(outputs):
        tensors.fill(response_outputs[name], np.asarray(outputs[name]))
    return log


def from_protos(rate: float, when: float, kind: str, model: str, version: int, signature: str, request, response,
                requested_version: Optional[int] = None,
                label: Optional[str] = None) -> prediction_log_pb2.PredictionLog:
    """A record of a request and response that are already protos: `kind` is the PredictionLog field
    (predict_log, classify_log, regress_log, multi_inference_log). The versions requested are set only for a
    REST request (a gRPC request holds its own)."""
    log = prediction_log_pb2.PredictionLog()
    entry = getattr(log, kind)
    entry.request.CopyFrom(request)
    entry.response.CopyFrom(response)
    if kind != "multi_inference_log":
        if not entry.request.model_spec.name:
            entry.request.model_spec.name = model
        _requested(entry.request.model_spec, requested_version, label)
    _metadata(log, model, version, signature, rate, when)
    return log
