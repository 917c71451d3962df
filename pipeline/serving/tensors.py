"""numpy arrays to TensorProtos and back, quickly: the gRPC API's inputs and outputs, and the request log's records
of REST requests (written as the gRPC requests they are equivalent to)."""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import types_pb2


def ndarray(proto) -> np.ndarray:
    """tf.make_ndarray, with a quick path for a batch of strings (texts, serialized examples)."""
    import tensorflow as tf

    if proto.dtype == types_pb2.DT_STRING and proto.string_val:
        shape = [d.size for d in proto.tensor_shape.dim]
        values = np.array(list(proto.string_val), dtype=object)
        if shape and int(np.prod(shape)) == len(values):
            return values.reshape(shape)
    return tf.make_ndarray(proto)


# numpy dtype -> TensorProto dtype, for the numbers written as raw bytes (tensor_content is little-endian, as numpy's
# native order on the machines TensorFlow supports).
_NUMBERS = {np.dtype(k): v for k, v in (
    (np.float32, types_pb2.DT_FLOAT), (np.float64, types_pb2.DT_DOUBLE), (np.float16, types_pb2.DT_HALF),
    (np.int8, types_pb2.DT_INT8), (np.int16, types_pb2.DT_INT16), (np.int32, types_pb2.DT_INT32),
    (np.int64, types_pb2.DT_INT64), (np.uint8, types_pb2.DT_UINT8), (np.uint16, types_pb2.DT_UINT16),
    (np.uint32, types_pb2.DT_UINT32), (np.uint64, types_pb2.DT_UINT64), (np.bool_, types_pb2.DT_BOOL))}


def fill(proto, array: np.ndarray) -> None:
    """tf.make_tensor_proto(array) into `proto`, written directly for numbers and strings: the generic converter costs
    tens of microseconds a tensor, a share of a short request's time (and of the request log's writer's)."""
    number = _NUMBERS.get(array.dtype)
    if number is not None:
        proto.dtype = number
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    elif array.dtype == object or array.dtype.kind == "S":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend([v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel()])
    else:
        import tensorflow as tf

        proto.CopyFrom(tf.make_tensor_proto(array))
        return
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add(size=size)
