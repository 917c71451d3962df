"""TF Serving's gRPC API beside the REST one: PredictionService (Predict, Classify, Regress, MultiInference,
GetModelMetadata) and ModelService.GetModelStatus, on the generated `tensorflow_serving.apis` messages and stubs
(tensorflow-serving-api, pinned with TFX) served by grpcio, the same clients that talk to TF Serving's --port (8500).

The services share the REST server's models (model_set.py): the same versions in service and labels, the same
batchers (a gRPC request and a REST request arriving together are merged into one model call), the same warm-up
before a version serves, the same metrics and the same request logs (request_log.py). A ModelSpec names a version,
a `version_label` or neither (the highest version serving). Errors carry TF Serving's status codes: NOT_FOUND for a
model or version not serving, INVALID_ARGUMENT for a request the signature cannot take or an unknown label,
UNIMPLEMENTED for a MultiInference task of another method.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Optional

import grpc
import numpy as np
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from pipeline.serving import inference, log_records, rest, tensors
from pipeline.serving import metrics as metrics_lib
from pipeline.serving.model_set import ModelSet
from pipeline.serving.request_log import RequestLogs

log = logging.getLogger(__name__)
LOGGED_APIS = ("Predict", "Classify", "Regress", "MultiInference")  # the request log keeps these
CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.INVALID_ARGUMENT,
         501: grpc.StatusCode.UNIMPLEMENTED, 503: grpc.StatusCode.UNAVAILABLE,
         504: grpc.StatusCode.DEADLINE_EXCEEDED}


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _abort(context, status: int, message: str):
    raise _Refused(status, message)


def _metered(api: str):
    """Runs a method under the metrics, turning refusals (RestError included) into the call's status code; a failed
    inference is counted by the request log of its model (it is never logged as an answer)."""
    def wrap(method):
        def call(self, request, context):
            with self.metrics.request(api, "GRPC") as outcome:
                try:
                    return method(self, request, context, outcome)
                except (_Refused, rest.RestError) as e:
                    code = CODES.get(e.status, grpc.StatusCode.INTERNAL)
                    outcome.status = code.name
                    self.failed(api, outcome)
                    context.abort(code, e.message)
                except Exception:
                    self.failed(api, outcome)
                    raise
        call.__name__ = method.__name__
        return call
    return wrap


def _version(model_spec) -> Optional[int]:
    return model_spec.version.value if model_spec.HasField("version") else None


def _loaded(models: ModelSet, model_spec, outcome):
    """The version a ModelSpec names (a version, a label or neither)."""
    outcome.model = model_spec.name
    registry = models.get(model_spec.name)
    choice = model_spec.WhichOneof("version_choice")
    loaded = registry.serving(_version(model_spec), model_spec.version_label if choice == "version_label" else None)
    outcome.version = str(loaded.version)
    return loaded


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models: ModelSet, metrics: metrics_lib.Metrics, logs: Optional[RequestLogs] = None):
        self.models, self.metrics, self.logs = models, metrics, logs

    def failed(self, api: str, outcome) -> None:
        if self.logs and api in LOGGED_APIS:
            self.logs.failed(outcome.model)

    def _log(self, kind: str, loaded, signature: str, request, response) -> None:
        """Queues the request and its response for the model's request log, when it logs and this one is drawn."""
        model = request.tasks[0].model_spec.name if kind == "multi_inference_log" else request.model_spec.name
        collector = self.logs.sampled(model) if self.logs else None
        if collector:
            collector.submit(log_records.from_protos, kind, model, loaded.version, signature, request, response)

    @_metered("Classify")
    def Classify(self, request, context, outcome):
        loaded = _loaded(self.models, request.model_spec, outcome)
        outcome.signature = request.model_spec.signature_name or rest.DEFAULT_SIGNATURE
        response = inference.classify(loaded, request)
        outcome.examples = len(response.result.classifications)
        self._log("classify_log", loaded, outcome.signature, request, response)
        return response

    @_metered("Regress")
    def Regress(self, request, context, outcome):
        loaded = _loaded(self.models, request.model_spec, outcome)
        outcome.signature = request.model_spec.signature_name or rest.DEFAULT_SIGNATURE
        response = inference.regress(loaded, request)
        outcome.examples = len(response.result.regressions)
        self._log("regress_log", loaded, outcome.signature, request, response)
        return response

    @_metered("MultiInference")
    def MultiInference(self, request, context, outcome):
        if not request.tasks:
            _abort(context, 400, "MultiInferenceRequest must contain at least one task")
        loaded = _loaded(self.models, request.tasks[0].model_spec, outcome)
        outcome.signature = ",".join(t.model_spec.signature_name or rest.DEFAULT_SIGNATURE for t in request.tasks)
        response = inference.multi_inference(loaded, request)
        self._log("multi_inference_log", loaded, "", request, response)  # each result names its signature
        return response

    @_metered("Predict")
    def Predict(self, request, context, outcome):
        import tensorflow as tf

        loaded = _loaded(self.models, request.model_spec, outcome)
        name = request.model_spec.signature_name or rest.DEFAULT_SIGNATURE
        outcome.signature = name
        signature = loaded.signatures.get(name)
        if signature is None:
            _abort(context, 400, f"Serving signature name: \"{name}\" not found in signature def")
        given, expected = set(request.inputs), set(signature.inputs)
        if given != expected:
            _abort(context, 400, f"input names {sorted(given)} do not match the signature's {sorted(expected)}")
        inputs = {}
        for key, proto in request.inputs.items():
            dtype = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "invalid"
            if dtype != signature.inputs[key].dtype:
                _abort(context, 400, f"Expects arg {key!r} to be {signature.inputs[key].dtype} but {dtype} is "
                                     "provided")
            try:
                inputs[key] = tensors.ndarray(proto)
            except (TypeError, ValueError) as e:
                _abort(context, 400, f"input {key!r}: {e}")
        sizes = {len(a) if a.ndim else 0 for a in inputs.values()}
        if 0 in sizes or len(sizes) != 1:
            _abort(context, 400, "every input needs the batch first, of the same size, and at least one example")
        outcome.examples = sizes.pop()
        try:
            outputs = inference.run_signature(signature, inputs)
        except tf.errors.InvalidArgumentError as e:
            _abort(context, 400, str(e.message).strip().splitlines()[0][:500])
        wanted = list(request.output_filter) or sorted(outputs)
        unknown = [k for k in wanted if k not in outputs]
        if unknown:
            _abort(context, 400, f"output_filter names outputs the signature does not have: {unknown}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = name
        for key in wanted:
            tensors.fill(response.outputs[key], np.asarray(outputs[key]))
        self._log("predict_log", loaded, name, request, response)
        return response

    @_metered("GetModelMetadata")
    def GetModelMetadata(self, request, context, outcome):
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2 as metadata_pb2

        loaded = _loaded(self.models, request.model_spec, outcome)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            _abort(context, 400, "Metadata field(s) not supported: the only one is signature_def"
                   if fields else "GetModelMetadataRequest must specify at least one metadata_field")
        signature_map = json_format.ParseDict(loaded.metadata, metadata_pb2.SignatureDefMap())
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = loaded.version
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, models: ModelSet, metrics: metrics_lib.Metrics):
        self.models, self.metrics = models, metrics

    def failed(self, api: str, outcome) -> None:
        pass  # status requests are not logged

    @_metered("GetModelStatus")
    def GetModelStatus(self, request, context, outcome):
        from google.protobuf import json_format

        spec = request.model_spec
        outcome.model = spec.name
        registry = self.models.registries.get(spec.name)
        if registry is None:
            _abort(context, 404, f"Could not find any versions of model {spec.name}")
        version = _version(spec)
        if spec.WhichOneof("version_choice") == "version_label":
            version = registry.version_for_label(spec.version_label)
        statuses = registry.status(version)
        if not statuses:
            _abort(context, 404, f"Could not find version {version} of model {spec.name}" if version is not None
                   else f"Could not find any versions of model {spec.name}")
        return json_format.ParseDict({"model_version_status": statuses},
                                     get_model_status_pb2.GetModelStatusResponse())


def start(models: ModelSet, metrics: metrics_lib.Metrics, host: str, port: int, workers: int = 8,
          logs: Optional[RequestLogs] = None) -> tuple:
    """(the started grpc.Server, the port it listens on). `logs`: the request logs of the models that log."""
    # SO_REUSEPORT off: grpcio sets it by default, and a second server on the same port would then share its
    # connections silently instead of failing to start.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
                         options=[("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(models, metrics, logs),
                                                                        server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(models, metrics), server)
    bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound
