"""TF Serving's REST request format where the conformance check against TF Serving's own tests and api_rest.md found
this server answering differently: too deep a body (a 500 before), an empty signature_name, unknown top-level keys,
instances of mixed forms, and GET /v1/models. The parsing on small in-memory bodies; the routes through the real
Starlette application (no model needed: each answer comes before one is loaded)."""

import json

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

    from pipeline.serving.models import ModelRegistry
    from pipeline.serving.server import ServerSettings, create_app

    registry = ModelRegistry(str(tmp_path / "bert_classifier"), "bert_classifier")
    return TestClient(create_app(registry, ServerSettings()), raise_server_exceptions=False)


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
