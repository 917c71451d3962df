"""TF Serving's gRPC API beside the REST one: PredictionService (Predict, GetModelMetadata) and
ModelService.GetModelStatus, on the generated `tensorflow_serving.apis` messages and stubs (tensorflow-serving-api,
pinned with TFX) served by grpcio, the same clients that talk to TF Serving's --port (8500).

The services share the REST server's ModelRegistry: the same version in service, the same batchers (a gRPC request
and a REST request arriving together are merged into one model call) and the same warm-up before a version serves.
Errors carry TF Serving's status codes: NOT_FOUND for another model or a version not in service, INVALID_ARGUMENT for
a request the signature cannot take, FAILED_PRECONDITION for a version still loading.

Not here yet: Classify, Regress and MultiInference (the exported model has no classify signature), version labels and
a model config file.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Optional

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from pipeline.serving import rest
from pipeline.serving.models import ModelRegistry

log = logging.getLogger(__name__)
CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.INVALID_ARGUMENT,
         503: grpc.StatusCode.UNAVAILABLE, 504: grpc.StatusCode.DEADLINE_EXCEEDED}


def _abort(context, status: int, message: str):
    context.abort(CODES.get(status, grpc.StatusCode.INTERNAL), message)


def _version(model_spec) -> Optional[int]:
    return model_spec.version.value if model_spec.HasField("version") else None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def _loaded(self, model_spec, context):
        if model_spec.name != self.registry.name:
            _abort(context, 404, f"Servable not found for request: Latest({model_spec.name})")
        try:
            return self.registry.serving(_version(model_spec))
        except rest.RestError as e:
            _abort(context, e.status, e.message)

    def Predict(self, request, context):
        import numpy as np
        import tensorflow as tf

        loaded = self._loaded(request.model_spec, context)
        name = request.model_spec.signature_name or rest.DEFAULT_SIGNATURE
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
                inputs[key] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as e:
                _abort(context, 400, f"input {key!r}: {e}")
        sizes = {len(a) if a.ndim else 0 for a in inputs.values()}
        if 0 in sizes or len(sizes) != 1:
            _abort(context, 400, "every input needs the batch first, of the same size, and at least one example")
        try:
            future = signature.batcher.submit(inputs) if signature.batcher else None
            outputs = future.result() if future is not None else signature(inputs)
        except tf.errors.InvalidArgumentError as e:
            _abort(context, 400, str(e.message).strip().splitlines()[0][:500])
        wanted = list(request.output_filter) or sorted(outputs)
        unknown = [k for k in wanted if k not in outputs]
        if unknown:
            _abort(context, 400, f"output_filter names outputs the signature does not have: {unknown}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.registry.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = name
        for key in wanted:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(outputs[key])))
        return response

    def GetModelMetadata(self, request, context):
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2 as metadata_pb2

        loaded = self._loaded(request.model_spec, context)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            _abort(context, 400, "Metadata field(s) not supported: the only one is signature_def"
                   if fields else "GetModelMetadataRequest must specify at least one metadata_field")
        signature_map = json_format.ParseDict(loaded.metadata, metadata_pb2.SignatureDefMap())
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.registry.name
        response.model_spec.version.value = loaded.version
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def GetModelStatus(self, request, context):
        from google.protobuf import json_format

        spec = request.model_spec
        if spec.name != self.registry.name:
            _abort(context, 404, f"Could not find any versions of model {spec.name}")
        version = _version(spec)
        statuses = self.registry.status(version)
        if not statuses:
            _abort(context, 404, f"Could not find version {version} of model {spec.name}" if version is not None
                   else f"Could not find any versions of model {spec.name}")
        return json_format.ParseDict({"model_version_status": statuses},
                                     get_model_status_pb2.GetModelStatusResponse())


def start(registry: ModelRegistry, host: str, port: int, workers: int = 8) -> tuple:
    """(the started grpc.Server, the port it listens on)."""
    # SO_REUSEPORT off: grpcio sets it by default, and a second server on the same port would then share its
    # connections silently instead of failing to start.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
                         options=[("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(registry), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(registry), server)
    bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound
