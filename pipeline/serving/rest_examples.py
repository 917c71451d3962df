"""TF Serving's REST `:classify` and `:regress` format (api_rest.md, "Classify and Regress API"), both ways.

Request: `{"signature_name": ..., "context": {feature: value(s)}, "examples": [{feature: value(s)}, ...]}`, turned
into the ClassificationRequest or RegressionRequest that gRPC clients send, by TF Serving's rules: a JSON string is a
bytes feature (UTF-8), `{"b64": ...}` a binary one, a whole number (or true/false) an int64 feature, a decimal a float
feature; a list holds one kind of value; null and nested lists are refused. Response: `{"results": [[[label, score],
...], ...]}` (classify) or `{"results": [value, ...]}` (regress) - TF Serving's code writes "results", where its
api_rest.md says "result".
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pipeline.serving import rest

CONTEXT, EXAMPLES = "context", "examples"


def _feature_kind(value: Any, name: str) -> str:
    if isinstance(value, int):  # true/false too: TF Serving stores them as 1/0
        return "int64_list"
    if isinstance(value, float):
        return "float_list"
    if isinstance(value, str) or (isinstance(value, dict) and set(value) == {"b64"}):
        return "bytes_list"
    raise rest.bad_request(f"Feature: {name} has element with unexpected JSON type: {rest.json_type(value)}")


def _example(value: Any, example) -> None:
    """Fills a tf.Example proto from one JSON object of features."""
    if not isinstance(value, dict):
        raise rest.bad_request(f"Example must be JSON object but got JSON {rest.json_type(value)}")
    for name, content in value.items():
        values = content if isinstance(content, list) else [content]
        feature = example.features.feature[name]
        kind = None
        for item in values:
            item_kind = _feature_kind(item, name)
            if kind not in (None, item_kind):
                raise rest.bad_request(f"Unexpected element type in feature: {name} expecting type: "
                                       f"{kind.split('_')[0]}")
            kind = item_kind
            if item_kind == "int64_list":
                if item > 2 ** 63 - 1 or item < -2 ** 63:
                    raise rest.bad_request(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
                feature.int64_list.value.append(int(item))
            elif item_kind == "float_list":
                feature.float_list.value.append(item)
            elif isinstance(item, str):
                feature.bytes_list.value.append(item.encode("utf-8"))
            else:
                try:
                    feature.bytes_list.value.append(base64.b64decode(item["b64"], validate=True))
                except (binascii.Error, ValueError, TypeError):
                    raise rest.bad_request(f"JSON Value: {rest.debug(item)} is not valid base64") from None


def parse_request(body: bytes, method: str, request) -> None:
    """Fills `request` (a ClassificationRequest or RegressionRequest) from a `:classify` or `:regress` body."""
    document = rest.parse_object(body)
    signature = document.get("signature_name", "")
    if not isinstance(signature, str):
        raise rest.bad_request(f"'signature_name' must be a string, got {rest.json_type(signature)}")
    request.model_spec.signature_name = signature
    examples = document.get(EXAMPLES)
    if EXAMPLES not in document:
        raise rest.bad_request(f"When method is {method}, key '{EXAMPLES}' is expected and was not found")
    if not isinstance(examples, list):
        raise rest.bad_request(f"Expecting '{EXAMPLES}' value to be an list/array")
    if not examples:
        raise rest.bad_request(f"'{EXAMPLES}' value is an empty array")
    if CONTEXT in document:
        _example(document[CONTEXT], request.input.example_list_with_context.context)
        targets = request.input.example_list_with_context.examples
    else:
        targets = request.input.example_list.examples
    for value in examples:
        _example(value, targets.add())


def classification_json(result) -> dict:
    return {"results": [[[c.label, c.score] for c in classifications.classes]
                        for classifications in result.classifications]}


def regression_json(result) -> dict:
    return {"results": [r.value for r in result.regressions]}
