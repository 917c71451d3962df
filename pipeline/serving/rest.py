"""TensorFlow Serving's REST predict format (tensorflow_serving/g3doc/api_rest.md), both ways.

Request: a JSON object with an optional `signature_name` (default, and when empty, `serving_default`: the metadata
answer's `model_spec.signature_name` is "", and a client may echo it back) and exactly one of
- `instances` (row format): a list with one element per example; an element is the value of the signature's only
  input, or an object naming every input;
- `inputs` (columnar format): the value of the only input, or an object naming every input, each value holding the
  whole batch.
A string value is a JSON string (UTF-8) or `{"b64": "<base64>"}` (binary, e.g. a serialized tf.Example).
Response: `{"predictions": [...]}` (row: one element per example, an object of outputs when there are several) or
`{"outputs": ...}` (columnar). String outputs are JSON strings, or `{"b64": ...}` when not UTF-8 or when the output's
name ends in `_bytes`. Errors are `{"error": "..."}` with the HTTP status TF Serving gives the same error. Other
top-level keys are ignored, as TF Serving ignores them.

One deliberate difference: JSON nested deeper than Python's parser goes (about 1,000 levels) is answered 400
("nested too deeply"), where TF Serving's iterative parser would read it and then ignore an unknown key so deep.

Written here rather than taken from a library: TF Serving's REST layer is C++ inside the model server, and no
maintained Python package implements the format.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
TOO_DEEP = "JSON Parse error: the request is nested too deeply (about 1,000 levels at most)"


class RestError(Exception):
    """An error answered as TF Serving does: `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def bad_request(message: str) -> RestError:
    return RestError(400, message)


@dataclass(frozen=True)
class InputSpec:
    """One input of a signature: its dtype name (string, int32, float32, bool, ...) and shape (None = any size)."""

    dtype: str
    shape: Tuple[Any, ...]


def debug(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def json_type(value: Any) -> str:
    return {dict: "Object", list: "Array", str: "String", bool: "Bool", type(None): "Null"}.get(
        type(value), "Number")


def _scalar(value: Any, dtype: str) -> Any:
    """One JSON scalar as a numpy-ready value of `dtype`, or a 400 naming the value."""
    if dtype == "string":
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise bad_request(f"JSON Value: {debug(value)} is not valid base64") from None
    elif dtype == "bool":
        if isinstance(value, bool):
            return value
    elif dtype.startswith(("int", "uint")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif dtype.startswith(("float", "half", "bfloat", "double")):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    raise bad_request(f"JSON Value: {debug(value)} Type: {json_type(value)} is not of expected type: {dtype}")


def _tensor(value: Any, spec: InputSpec, name: str, batched: bool) -> np.ndarray:
    """A JSON value (nested lists of scalars) as an array of `spec`'s dtype; checks the shape against the spec."""
    def convert(v):
        return [convert(x) for x in v] if isinstance(v, list) else _scalar(v, spec.dtype)

    converted = convert(value)
    dtype = object if spec.dtype == "string" else np.dtype(spec.dtype if spec.dtype != "bfloat16" else "float32")
    try:
        array = np.array(converted, dtype=dtype)
    except ValueError:
        raise bad_request(f"input {name!r}: the lists are not all of the same length") from None
    if array.dtype == object and spec.dtype != "string":
        raise bad_request(f"input {name!r}: the lists are not all of the same length")
    if spec.dtype == "string" and any(isinstance(x, list) for x in array.ravel()):
        raise bad_request(f"input {name!r}: the lists are not all of the same length")
    expected = spec.shape if batched else spec.shape[1:]
    if expected and (array.ndim != len(expected) or any(e is not None and e != a
                                                        for e, a in zip(expected, array.shape))):
        shape = ["?" if d is None else d for d in expected]
        raise bad_request(f"input {name!r} has shape {list(array.shape)}; the signature takes {shape}"
                          + ("" if batched else " per instance"))
    return array


def parse_object(body: bytes) -> dict:
    """A request body's JSON object, or TF Serving's 400 for what is not one."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad_request(f"JSON Parse error: {e}") from None
    except RecursionError:
        raise bad_request(TOO_DEEP) from None
    if not isinstance(request, dict):
        raise bad_request(f"JSON Value: {debug(request)} Is not object")
    return request


def parse_predict(body: bytes) -> Tuple[str, str, Any]:
    """(signature name, "instances" or "inputs", the payload) of a predict request body."""
    request = parse_object(body)
    has_instances, has_inputs = "instances" in request, "inputs" in request
    if has_instances and has_inputs:
        raise bad_request("Not formatted correctly: a request has either 'instances' (row format) or 'inputs' "
                          "(columnar format), not both")
    if not has_instances and not has_inputs:
        raise bad_request("Missing 'inputs' or 'instances' key")
    signature = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature, str):
        raise bad_request(f"'signature_name' must be a string, got {json_type(signature)}")
    key = "instances" if has_instances else "inputs"
    signature = signature or DEFAULT_SIGNATURE
    return signature, key, request[key]


def _named(value: Any, names: Sequence[str]) -> bool:
    """Whether a value is an object of named inputs (not a {"b64": ...} string)."""
    return isinstance(value, dict) and not (set(value) == {"b64"} and "b64" not in names)


def decode_inputs(key: str, payload: Any, specs: Mapping[str, InputSpec]) -> Dict[str, np.ndarray]:
    """The signature's inputs as arrays with the batch first, from the `instances` or `inputs` payload."""
    names = list(specs)
    if key == "instances":
        if not isinstance(payload, list):
            raise bad_request(f"Expecting 'instances' to be a list, got {json_type(payload)}")
        if not payload:
            raise bad_request("'instances' is an empty list: send at least one instance")
        columns: Dict[str, List[Any]] = {n: [] for n in names}
        named_first = _named(payload[0], names)
        for i, instance in enumerate(payload):
            if _named(instance, names) != named_first:  # TF Serving: all objects of named inputs, or no object
                raise bad_request(f"instance {i}: every instance must have the form of the first, "
                                  + ("an object naming the inputs" if named_first else "a value of the only input"))
            if _named(instance, names):
                missing = [n for n in names if n not in instance]
                extra = sorted(set(instance) - set(names))
                if missing or extra:
                    raise bad_request(f"instance {i}: " + "; ".join(
                        ([f"missing named input(s) {', '.join(missing)}"] if missing else []) +
                        ([f"unknown input(s) {', '.join(extra)} (the signature takes {', '.join(names)})"]
                         if extra else [])))
                for n in names:
                    columns[n].append(instance[n])
            elif len(names) == 1:
                columns[names[0]].append(instance)
            else:
                raise bad_request(f"instance {i}: the signature has {len(names)} inputs ({', '.join(names)}), so "
                                  "each instance must be an object naming them")
        return {n: _tensor(columns[n], specs[n], n, batched=True) for n in names}
    if _named(payload, names):
        missing = [n for n in names if n not in payload]
        extra = sorted(set(payload) - set(names))
        if missing or extra:
            raise bad_request("; ".join(([f"missing named input(s) {', '.join(missing)}"] if missing else []) +
                                        ([f"unknown input(s) {', '.join(extra)} (the signature takes "
                                          f"{', '.join(names)})"] if extra else [])))
        values = dict(payload)
    elif len(names) == 1:
        values = {names[0]: payload}
    else:
        raise bad_request(f"the signature has {len(names)} inputs ({', '.join(names)}): 'inputs' must be an object "
                          "naming them")
    arrays = {}
    for n in names:
        if not isinstance(values[n], list):
            raise bad_request(f"input {n!r}: expecting a list with the batch first, got {json_type(values[n])}")
        if not values[n]:
            raise bad_request(f"input {n!r} is an empty list: send at least one example")
        arrays[n] = _tensor(values[n], specs[n], n, batched=True)
    sizes = {len(a) for a in arrays.values()}
    if len(sizes) > 1:
        raise bad_request(f"the inputs have different batch sizes ({sorted(sizes)})")
    return arrays


def _json_value(array: np.ndarray, binary: bool) -> Any:
    if array.dtype == object or array.dtype.kind in ("S", "O"):
        def text(v):
            if isinstance(v, bytes):
                if not binary:
                    try:
                        return v.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
                return {"b64": base64.b64encode(v).decode("ascii")}
            return v
        return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def encode_outputs(key: str, outputs: Mapping[str, np.ndarray]) -> dict:
    """The response body: `{"predictions": ...}` for row requests, `{"outputs": ...}` for columnar ones."""
    values = {name: _json_value(array, name.endswith("_bytes")) for name, array in sorted(outputs.items())}
    if key == "inputs":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    sizes = {len(v) if isinstance(v, list) else -1 for v in values.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise RestError(400, "the outputs do not all have the batch size first, so they cannot be returned in the "
                             "row format: send 'inputs' (columnar) instead")
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    rows = sizes.pop()
    return {"predictions": [{name: v[i] for name, v in values.items()} for i in range(rows)]}
