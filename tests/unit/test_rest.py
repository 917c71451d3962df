"""TF Serving's REST request format in the cases where this server once answered otherwise: an empty signature_name
(the default signature), unknown top-level keys (ignored), instances mixing values and objects (refused), GET
/v1/models without a name (TF Serving's 400), and too deep a body (a 500 before; a 400 here, in TF Serving's error
shape). TF Serving's behaviour is read from its source at the pinned 2.16.1: tensorflow_serving/util/json_tensor.cc
(FillSignature; FillTensorMapFromInstancesList's "Expecting object but got list" and "Expecting value/list but got
object"), model_servers/http_rest_api_handler.cc ("Missing model name in request.") and g3doc/api_rest.md. The parsing
on small in-memory bodies; the routes through the real Starlette application (no model needed: each answer comes
before one is loaded)."""

import json
import re

import pytest

from pipeline.serving import rest

SPECS = {"text": rest.InputSpec("string", (None,))}


def test_an_empty_signature_name_is_serving_default_as_in_tf_serving():
    assert rest.parse_predict(b'{"signature_name": "", "instances": ["a"]}')[0] == rest.DEFAULT_SIGNATURE
    assert rest.parse_predict(b'{"instances": ["a"]}')[0] == rest.DEFAULT_SIGNATURE


def test_unknown_top_level_keys_are_ignored():
    signature, key, payload = rest.parse_predict(b'{"instances": ["a"], "debug": {"x": 1}, "request_id": 7}')
    assert (signature, key, payload) == (rest.DEFAULT_SIGNATURE, "instances", ["a"])


@pytest.mark.parametrize("body", [
    b'{"instances": ["a"], "k": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # an unknown key 100,000 levels deep
    b'{"instances": ["a"], "signature_name": ' + b"[" * 1_000 + b"]" * 1_000 + b"}",  # 2 KB, 1,000 deep
])
def test_a_body_nested_too_deeply_is_a_400_in_tf_servings_error_shape(body):
    with pytest.raises(rest.RestError) as refused:
        rest.parse_predict(body)
    assert refused.value.status == 400


def test_a_signature_name_that_is_not_a_string_is_a_400():
    with pytest.raises(rest.RestError, match="'signature_name' must be a string, got Array"):
        rest.parse_predict(b'{"instances": ["a"], "signature_name": [[["x"]]]}')


@pytest.mark.parametrize("instances", [["a film", {"text": "a film"}], [{"text": "a film"}, "a film"]])
def test_instances_mixing_values_and_objects_are_refused(instances):
    with pytest.raises(rest.RestError, match="instance 1: every instance must have the form of the first"):
        rest.decode_inputs("instances", instances, SPECS)


def test_instances_of_one_form_are_decoded():
    assert rest.decode_inputs("instances", ["a", "b"], SPECS)["text"].tolist() == [b"a", b"b"]
    assert rest.decode_inputs("instances", [{"text": "a"}, {"text": "b"}], SPECS)["text"].tolist() == [b"a", b"b"]


@pytest.fixture
def client(tmp_path):
    from starlette.testclient import TestClient

    from pipeline.serving.metrics import Metrics
    from pipeline.serving.model_set import ModelSet
    from pipeline.serving.server import ServerSettings, create_app

    models = ModelSet.single(str(tmp_path / "bert_classifier"), "bert_classifier", 1.0, None)
    metrics = Metrics(lambda: {name: r.status() for name, r in models.registries.items()})
    return TestClient(create_app(models, ServerSettings(), metrics), raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/"])
def test_get_v1_models_without_a_name_is_tf_servings_400(client, path):
    answer = client.get(path, follow_redirects=False)
    assert (answer.status_code, answer.json()) == (400, {"error": "Missing model name in request."})


def test_no_body_shape_gets_a_500(client):
    bodies = [b'{"instances": ["a"], "k": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
              b'{"instances": ["a"], "signature_name": ' + b"[" * 1_000 + b"]" * 1_000 + b"}",
              b'{"instances": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", b"[" * 50_000, b"\xff\xfe", b""]
    for body in bodies:
        answer = client.post("/v1/models/bert_classifier:predict", content=body)
        assert answer.status_code == 400, (body[:40], answer.status_code, answer.text[:200])
        assert answer.headers["content-type"] == "application/json" and set(json.loads(answer.text)) == {"error"}


def test_classify_json_becomes_tf_servings_classification_request():
    from tensorflow_serving.apis import classification_pb2

    from pipeline.serving import rest_examples

    request = classification_pb2.ClassificationRequest()
    body = json.dumps({"signature_name": "classification", "context": {"lang": "en"},
                       "examples": [{"text": "a film", "stars": 4, "score": 0.5, "raw": {"b64": "AAE="}},
                                    {"text": ["two", "values"], "flag": True}]})
    rest_examples.parse_request(body.encode(), "classify", request)
    assert request.model_spec.signature_name == "classification"
    listed = request.input.example_list_with_context
    assert listed.context.features.feature["lang"].bytes_list.value == [b"en"]
    first, second = (e.features.feature for e in listed.examples)
    assert first["text"].bytes_list.value == [b"a film"] and first["stars"].int64_list.value == [4]
    assert first["score"].float_list.value == [0.5] and first["raw"].bytes_list.value == [b"\x00\x01"]
    assert second["text"].bytes_list.value == [b"two", b"values"] and second["flag"].int64_list.value == [1]


@pytest.mark.parametrize("body, message", [
    ({"instances": ["a"]}, "When method is classify, key 'examples' is expected and was not found"),
    ({"examples": {"text": "a"}}, "Expecting 'examples' value to be an list/array"),
    ({"examples": []}, "'examples' value is an empty array"),
    ({"examples": ["a film"]}, "Example must be JSON object but got JSON String"),
    ({"examples": [{"text": None}]}, "Feature: text has element with unexpected JSON type: Null"),
    ({"examples": [{"text": [["a"]]}]}, "Feature: text has element with unexpected JSON type: Array"),
    ({"examples": [{"text": ["a", 1]}]}, "Unexpected element type in feature: text expecting type: bytes"),
    ({"examples": [{"n": 2 ** 64 - 1}]}, "Only int64_t is supported"),
    ({"examples": [{"text": {"b64": "%%"}}]}, "is not valid base64"),
])
def test_bad_classify_bodies_are_refused_with_tf_servings_messages(body, message):
    from tensorflow_serving.apis import classification_pb2

    from pipeline.serving import rest_examples

    with pytest.raises(rest.RestError, match=re.escape(message)):
        rest_examples.parse_request(json.dumps(body).encode(), "classify", classification_pb2.ClassificationRequest())
