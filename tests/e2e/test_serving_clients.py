"""TF Serving's own clients against pipeline/serve.py on 127.0.0.1, on the quick run's pushed model: TFX's
InfraValidator client class (wait until loaded, then its Classify and Predict requests built from the run's eval
examples), the generated gRPC stubs for Classify, Regress and MultiInference (good and bad requests), REST
`:classify`, a model config file with two models, two versions and labels re-read while serving, and the
Prometheus metrics scraped with Prometheus's own text parser. Predict, metadata and status over gRPC and the REST
predict format: test_serving.py."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from support.serving_server import MODEL, Server, copy_version

TEXTS = ["a gripping, beautifully acted film", "a dull, lifeless mess"]
CLASSIFY = "classification"
CLASSIFY_METHOD, REGRESS_METHOD = "tensorflow/serving/classify", "tensorflow/serving/regress"


def example(text: str) -> bytes:
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))})).SerializeToString()


def config_text(policy: str, labels: dict, second_model: bool = True) -> str:
    label_lines = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
    models = [f'config {{ name: "{MODEL}" base_path: "serving/{MODEL}" model_platform: "tensorflow" '
              f'model_version_policy {{ {policy} }} {label_lines} }}']
    if second_model:
        models.append('config { name: "sentiment" base_path: "serving/sentiment" model_platform: "tensorflow" }')
    return "model_config_list { " + " ".join(models) + " }"


@pytest.fixture(scope="module")
def config_server(first_run, tmp_path_factory):
    """A server reading a model config file: bert_classifier at versions 1 and 2 (copies of the quick run's model),
    labels stable=1 and canary=2, and the same model again as `sentiment`; the file is re-read every 0.3 s."""
    _, summary, _ = first_run
    base = tmp_path_factory.mktemp("config-serve")
    for version in (1, 2):
        copy_version(Path(summary["pushed_dir"]), base / "serving", version)
    (base / "serving" / "sentiment").mkdir()
    copy_version(Path(summary["pushed_dir"]), base / "serving", 7).rename(base / "serving" / "sentiment" / "7")
    config = base / "models.config"
    config.write_text(config_text("specific { versions: 1 versions: 2 }", {"stable": 1, "canary": 2}))
    with Server(None, "--model-config-file", str(config), "--model-config-poll-seconds", "0.3",
                "--poll-seconds", "0.2", log=base / "serve.log") as running:
        running.wait_for(lambda s: {v["state"] for v in s.values()} == {"AVAILABLE"} and len(s) == 2,
                         what="versions 1 and 2")
        running.wait_for(lambda s: s.get(7, {}).get("state") == "AVAILABLE", what="sentiment", model="sentiment")
        yield running, config, summary


@pytest.fixture(scope="module")
def fresh_server(first_run, tmp_path_factory):
    """A server of the quick run's model as version 3, handed over at once, while it is still loading."""
    _, summary, _ = first_run
    serving = tmp_path_factory.mktemp("fresh-serve") / "serving"
    copy_version(Path(summary["pushed_dir"]), serving, 3)
    with Server(serving, "--poll-seconds", "0.2") as running:
        yield running


def _stubs(running):
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(running.grpc_target)
    return (channel, prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel))


def _classification_request(texts, signature=CLASSIFY, model=MODEL, label=None, context=None):
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if label:
        request.model_spec.version_label = label
    if context is not None:
        request.input.example_list_with_context.context.ParseFromString(example(context))
        for _ in texts:
            request.input.example_list_with_context.examples.add()
    else:
        for text in texts:
            request.input.example_list.examples.append(tf.train.Example.FromString(example(text)))
    return request


def _rest_probabilities(running, texts, **where):
    answer = running.predict({"signature_name": "serving_examples",
                              "instances": [{"b64": base64.b64encode(example(t)).decode()} for t in texts]}, **where)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def test_tfx_infra_validator_client_waits_for_the_model_then_sends_its_requests(fresh_server, first_run, tmp_path):
    """TFX's own TensorFlowServingClient and request builder, as InfraValidator runs them against TF Serving, from
    the moment the server starts (the version is still loading)."""
    from tfx.components.infra_validator import request_builder
    from tfx.components.infra_validator.model_server_clients.tensorflow_serving_client import (
        TensorFlowServingClient,
    )
    from tfx.proto import infra_validator_pb2
    from tfx.types import standard_artifacts

    running = fresh_server
    paths, summary, _ = first_run
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "Format-Serving").symlink_to(summary["pushed_dir"])
    examples = standard_artifacts.Examples()
    (examples.uri,) = [str(p) for p in (paths["pipeline_root"] / "CsvExampleGen" / "examples").iterdir()]
    examples.split_names = json.dumps(["train", "eval", "test"])
    spec = infra_validator_pb2.RequestSpec(
        tensorflow_serving=infra_validator_pb2.TensorFlowServingRequestSpec(
            signature_names=[CLASSIFY, "serving_examples"]), split_name="eval", num_examples=3)
    built = request_builder.build_requests(MODEL, model, examples, spec)
    kinds = sorted(type(r).__name__ for r in built)
    assert kinds == ["ClassificationRequest"] * 3 + ["PredictRequest"] * 3  # by the signatures' method names

    client = TensorFlowServingClient(running.grpc_target, MODEL)
    client.WaitUntilModelLoaded(deadline=time.time() + 120, polling_interval_sec=1)
    assert running.states()[3]["state"] == "AVAILABLE"
    client.SendRequests(built)  # raises on the first request the server refuses


def test_grpc_classify_answers_what_rest_predict_answers(config_server):
    running, _, _ = config_server
    channel, prediction, _ = _stubs(running)
    with channel:
        response = prediction.Classify(_classification_request(TEXTS), timeout=30)
        with_context = prediction.Classify(_classification_request([""], context=TEXTS[0]), timeout=30)
    assert (response.model_spec.name, response.model_spec.version.value, response.model_spec.signature_name) == (
        MODEL, 2, CLASSIFY)
    expected = _rest_probabilities(running, TEXTS)
    class_names = json.loads((Path(running.log).parent / "serving" / MODEL / "2" / "assets.extra" /
                              "class_names.json").read_text())
    for classifications, row in zip(response.result.classifications, expected):
        assert [c.label for c in classifications.classes] == class_names
        np.testing.assert_allclose([c.score for c in classifications.classes], row["probabilities"], atol=1e-5)
    # the context's text is every example's text
    np.testing.assert_allclose([c.score for c in with_context.result.classifications[0].classes],
                               expected[0]["probabilities"], atol=1e-5)


def test_grpc_multi_inference_regress_and_their_refusals(config_server):
    import grpc
    from tensorflow_serving.apis import inference_pb2, regression_pb2

    running, _, _ = config_server
    channel, prediction, _ = _stubs(running)

    def multi(*tasks, model=MODEL):
        request = inference_pb2.MultiInferenceRequest()
        request.input.CopyFrom(_classification_request(TEXTS).input)
        for signature, method in tasks:
            task = request.tasks.add()
            task.model_spec.name, task.model_spec.signature_name, task.method_name = model, signature, method
        return prediction.MultiInference(request, timeout=30)

    def regress():
        request = regression_pb2.RegressionRequest()
        request.model_spec.name = MODEL
        request.input.CopyFrom(_classification_request(TEXTS).input)
        return prediction.Regress(request, timeout=30)

    with channel:
        answer = multi((CLASSIFY, CLASSIFY_METHOD))
        assert len(answer.results) == 1 and len(answer.results[0].classification_result.classifications) == 2
        assert answer.results[0].model_spec.version.value == 2
        cases = [
            (lambda: prediction.Classify(_classification_request([]), timeout=30), "INVALID_ARGUMENT",
             "Input is empty."),
            (lambda: prediction.Classify(_classification_request(TEXTS, signature=""), timeout=30), "INVALID_ARGUMENT",
             "Expected classification signature method_name to be tensorflow/serving/classify. Was: "
             "tensorflow/serving/predict"),
            (lambda: prediction.Classify(_classification_request(TEXTS, signature="nope"), timeout=30),
             "INVALID_ARGUMENT", "No signature was found with the name: nope"),
            (lambda: prediction.Classify(_classification_request(TEXTS, model="other"), timeout=30), "NOT_FOUND",
             "Servable not found for request: Latest(other)"),
            (lambda: prediction.Classify(_classification_request(TEXTS, label="beta"), timeout=30), "INVALID_ARGUMENT",
             "Unrecognized servable version label: beta"),
            (regress, "INVALID_ARGUMENT", "Expected regression signature method_name to be tensorflow/serving/regress"),
            (lambda: multi((CLASSIFY, CLASSIFY_METHOD), (CLASSIFY, CLASSIFY_METHOD)), "INVALID_ARGUMENT",
             "Duplicate evaluation of signature: classification"),
            (lambda: multi((CLASSIFY, "tensorflow/serving/predict")), "UNIMPLEMENTED",
             "Unsupported signature method_name: tensorflow/serving/predict"),
            (lambda: multi((CLASSIFY, REGRESS_METHOD)), "INVALID_ARGUMENT",
             "Expected regression signature method_name"),
            (lambda: multi(), "INVALID_ARGUMENT", "at least one task"),
        ]
        for call, code, message in cases:
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert (refused.value.code().name, message in refused.value.details()) == (code, True), \
                refused.value.details()
        assert prediction.Classify(_classification_request(TEXTS[:1]), timeout=30).result.classifications


def test_rest_classify_answers_in_tf_servings_format(config_server):
    running, _, _ = config_server
    expected = _rest_probabilities(running, TEXTS)
    answer = running.predict({"signature_name": CLASSIFY, "examples": [{"text": t} for t in TEXTS]}, verb="classify")
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 2 and all(isinstance(label, str) for row in results for label, _ in row)
    np.testing.assert_allclose([[score for _, score in row] for row in results],
                               [row["probabilities"] for row in expected], atol=1e-5)
    with_context = running.predict({"signature_name": CLASSIFY, "context": {"text": TEXTS[1]}, "examples": [{}]},
                                   verb="classify")
    np.testing.assert_allclose([s for _, s in with_context.json()["results"][0]], expected[1]["probabilities"],
                               atol=1e-5)
    for body, message in [({"examples": [{"text": "a"}]}, "Expected classification signature method_name"),
                          ({"signature_name": CLASSIFY, "examples": []}, "'examples' value is an empty array"),
                          ({"signature_name": CLASSIFY, "examples": [{"text": None}]}, "unexpected JSON type: Null")]:
        refused = running.predict(body, verb="classify")
        assert refused.status_code == 400 and message in refused.json()["error"], refused.text
    regress = running.predict({"signature_name": CLASSIFY, "examples": [{"text": "a"}]}, verb="regress")
    assert regress.status_code == 400 and "regression signature" in regress.json()["error"]


def test_a_model_config_serves_two_models_versions_and_labels_and_reloads_on_change(config_server):
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2

    running, config, _ = config_server
    assert {v: s["state"] for v, s in running.states().items()} == {1: "AVAILABLE", 2: "AVAILABLE"}
    for where, version in [({}, 2), ({"version": 1}, 1), ({"label": "stable"}, 1), ({"label": "canary"}, 2)]:
        meta = requests.get(running.model_url("/metadata", **where), timeout=10).json()
        assert meta["model_spec"]["version"] == str(version), (where, meta)
        assert running.predict({"instances": TEXTS[:1]}, **where).status_code == 200
    assert running.predict({"instances": ["a"]}, model="sentiment").status_code == 200
    unknown = running.predict({"instances": ["a"]}, label="beta")
    assert unknown.status_code == 400 and "Unrecognized servable version label: beta" in unknown.json()["error"]
    channel, prediction, models = _stubs(running)
    with channel:
        by_label = prediction.Classify(_classification_request(TEXTS, label="stable"), timeout=30)
        assert by_label.model_spec.version.value == 1
        status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": MODEL, "version_label": "canary"}), timeout=30)
        assert [s.version for s in status.model_version_status] == [2]

    # Promote: stable moves to 2, version 1 leaves, sentiment is no longer listed.
    config.write_text(config_text("specific { versions: 2 }", {"stable": 2}, second_model=False))
    running.wait_for(lambda s: s.get(1, {}).get("state") == "END", what="version 1 unloaded")
    assert requests.get(running.model_url("/metadata", label="stable"), timeout=10).json()[
        "model_spec"]["version"] == "2"
    deadline = time.time() + 30
    while running.predict({"instances": ["a"]}, model="sentiment").status_code != 404 and time.time() < deadline:
        time.sleep(0.2)
    assert running.predict({"instances": ["a"]}, model="sentiment").status_code == 404
    # A broken edit is reported and ignored: the server keeps serving under the last good config.
    config.write_text("model_config_list { config { name: ")
    time.sleep(1.0)
    assert running.predict({"instances": ["a"]}, label="stable").status_code == 200
    assert "is not a text ModelServerConfig" in running.log.read_text()
    # Roll back: pin version 1 again, which loads before 2 leaves.
    config.write_text(config_text("specific { versions: 1 }", {"stable": 1}, second_model=False))
    running.wait_for(lambda s: s.get(1, {}).get("state") == "AVAILABLE" and s.get(2, {}).get("state") == "END",
                     what="rolled back to version 1")
    channel, prediction, _ = _stubs(running)
    with channel:
        assert prediction.Classify(_classification_request(TEXTS), timeout=30).model_spec.version.value == 1
        with pytest.raises(grpc.RpcError) as refused:
            prediction.Classify(_classification_request(TEXTS, label="canary"), timeout=30)
        assert refused.value.code().name == "INVALID_ARGUMENT"


def _scrape(running) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    answer = requests.get(f"{running.url}/monitoring/prometheus/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def test_prometheus_metrics_count_what_was_served(fresh_server):
    running = fresh_server
    running.wait_for(lambda s: s.get(3, {}).get("state") == "AVAILABLE", what="version 3")
    before = _scrape(running)
    for _ in range(3):
        assert running.predict({"instances": TEXTS}).status_code == 200
    assert running.predict({"instances": [1]}).status_code == 400
    channel, prediction, _ = _stubs(running)
    with channel:
        for _ in range(2):
            prediction.Classify(_classification_request(TEXTS), timeout=30)
    after = _scrape(running)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    mine = ":local_serving:requests_total"
    predict = dict(model_name=MODEL, version="3", signature="serving_default", API="Predict", entrypoint="REST")
    assert delta(mine, **predict, status="OK") == 3
    assert delta(mine, **predict, status="INVALID_ARGUMENT") == 1
    assert delta(mine, model_name=MODEL, version="3", signature=CLASSIFY, API="Classify", entrypoint="GRPC",
                 status="OK") == 2
    assert delta(":tensorflow:serving:request_count_total", model_name=MODEL, status="INVALID_ARGUMENT") == 1
    assert delta(":tensorflow:serving:request_latency_count", model_name=MODEL, API="Classify", entrypoint="GRPC") == 2
    assert delta(":tensorflow:serving:request_example_counts_sum", model=MODEL) == 3 * 2 + 2 * 2
    assert delta(":local_serving:batch_size_sum", model_name=MODEL, signature=CLASSIFY) == 2 * 2
    assert after[(":local_serving:model_version_state", (("model_name", MODEL), ("state", "AVAILABLE"),
                                                          ("version", "3")))] == 1
