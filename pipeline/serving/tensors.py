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


def fill(proto, array: np.ndarray) -> None:
    """tf.make_tensor_proto(array) into `proto`, written directly for numbers and strings: the generic converter costs
    tens of microseconds a tensor, a share of a short request's time."""
    import tensorflow as tf

    if array.dtype == object or array.dtype.kind == "S":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel())
    elif array.dtype.kind in "biuf":
        proto.dtype = tf.dtypes.as_dtype(array.dtype).as_datatype_enum
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    else:
        proto.CopyFrom(tf.make_tensor_proto(array))
        return
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
