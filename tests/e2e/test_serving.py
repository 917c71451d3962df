"""pipeline/serve.py, the TF Serving-compatible REST server, run for real on 127.0.0.1 on the quick run's model:
status, metadata, predict in both formats, tf.Examples, TF Serving's error shape for bad requests, the size limit
and timeout, a new version picked up with no failed request, a broken version reported and not served, and the demo
page in a real headless browser. The server without a model: tests/integration/test_serve_without_a_model.py."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from support.browser import ARTIFACTS, open_page
from support.serving_server import MODEL, Server, copy_version, push_model

TEXTS = ["a gripping, beautifully acted film", "a dull, lifeless mess", "ünïcödé — and emoji 🎬 are fine"]
# Reviews no reader could mistake, with the class each must get. The quick run's model learned (tests/conftest.py's
# `first_run`), so REST, gRPC and the SavedModel in this process answer them alike, and rightly: a model answering one
# class, a swapped label order or a tokenizer that differs between training and serving would not.
CLEAR = {"fresh": ["a wonderful, moving film with superb performances",
                   "one of the best films of the year: funny, smart and beautifully made"],
         "rotten": ["a dull, tedious and lifeless mess",
                    "the worst film of the year: boring, clumsy and painfully unfunny"]}


@pytest.fixture(scope="module")
def server(first_run, tmp_path_factory):
    """The server on a copy of the quick run's pushed model (version 1); 1 MiB body limit, 5 s request timeout."""
    _, summary, _ = first_run
    serving = tmp_path_factory.mktemp("serve") / "serving"
    copy_version(Path(summary["pushed_dir"]), serving, 1)
    with Server(serving, "--poll-seconds", "0.2", "--max-request-mb", "1", "--request-timeout", "5") as running:
        running.wait_for(lambda states: states.get(1, {}).get("state") == "AVAILABLE", what="version 1")
        yield running, summary


@pytest.fixture(scope="module")
def reference(first_run):
    """The same model's outputs for TEXTS, from the SavedModel called in this process."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    _, summary, _ = first_run
    model = tf.saved_model.load(summary["pushed_dir"])
    out = model.signatures["serving_default"](text=tf.constant(TEXTS))
    return {k: v.numpy() for k, v in out.items()}


def example(text: str) -> bytes:
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))})).SerializeToString()


def test_status_and_metadata(server):
    running, _ = server
    assert running.status() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert requests.get(running.model_url(version=1), timeout=10).json() == running.status()
    meta = requests.get(running.model_url("/metadata"), timeout=10).json()
    assert meta["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    assert set(meta["metadata"]["signature_def"]) == {"signature_def"}  # TF Serving's SignatureDefMap, nothing else
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "serving_examples", "classification", "transform_features"} <= set(signatures)
    assert signatures["classification"]["method_name"] == "tensorflow/serving/classify"
    default = signatures["serving_default"]
    assert default["inputs"]["text"]["dtype"] == "DT_STRING"
    # every field TF Serving prints, default values included
    assert default["inputs"]["text"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    init = signatures["__saved_model_init_op"]
    assert (init["inputs"], init["method_name"]) == ({}, "")
    assert init["outputs"]["__saved_model_init_op"]["dtype"] == "DT_INVALID"
    assert {k: v["dtype"] for k, v in default["outputs"].items()} == {
        "probabilities": "DT_FLOAT", "label": "DT_STRING", "label_id": "DT_INT32"}
    assert default["method_name"] == "tensorflow/serving/predict"
    assert requests.get(running.model_url("/metadata", version=1), timeout=10).json() == meta
    # a client echoing the metadata's signature_name ("") back gets serving_default, as from TF Serving; other
    # top-level keys are ignored
    echoed = running.predict({"signature_name": meta["model_spec"]["signature_name"], "instances": ["a fine film"],
                              "request_id": "abc"})
    assert echoed.status_code == 200, echoed.text
    assert echoed.json() == running.predict({"instances": ["a fine film"]}).json()


def test_predict_row_and_columnar_formats_match_the_saved_model(server, reference):
    running, _ = server
    rows = running.predict({"instances": TEXTS})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    assert len(predictions) == len(TEXTS)
    np.testing.assert_allclose([p["probabilities"] for p in predictions], reference["probabilities"], atol=1e-5)
    assert [p["label"] for p in predictions] == [x.decode() for x in reference["label"]]
    assert [p["label_id"] for p in predictions] == reference["label_id"].tolist()

    # Named inputs in the row format, the columnar format, b64 strings, and a specific version: the same answers.
    named = running.predict({"instances": [{"text": t} for t in TEXTS], "signature_name": "serving_default"})
    assert named.json() == rows.json()
    columns = running.predict({"inputs": {"text": TEXTS}}, version=1)
    assert columns.status_code == 200, columns.text
    outputs = columns.json()["outputs"]
    np.testing.assert_allclose(outputs["probabilities"], reference["probabilities"], atol=1e-5)
    assert outputs["label"] == [p["label"] for p in predictions]
    encoded = [{"b64": base64.b64encode(t.encode()).decode()} for t in TEXTS]
    assert running.predict({"inputs": encoded}).json() == columns.json()


def test_serving_examples_takes_base64_tf_examples(server, reference):
    running, _ = server
    answer = running.predict({"signature_name": "serving_examples",
                              "instances": [{"b64": base64.b64encode(example(t)).decode()} for t in TEXTS]})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose([p["probabilities"] for p in answer.json()["predictions"]],
                               reference["probabilities"], atol=1e-5)


BAD_REQUESTS = [
    ("invalid JSON", b'{"instances": ["a"', 400, "JSON Parse error"),
    ("not an object", b'["a"]', 400, "Is not object"),
    ("both formats", {"instances": ["a"], "inputs": ["a"]}, 400, "not both"),
    ("neither format", {"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances'"),
    ("wrong signature", {"instances": ["a"], "signature_name": "nope"}, 400, 'signature name: "nope" not found'),
    ("wrong dtype", {"instances": [1]}, 400, "is not of expected type: string"),
    ("wrong dtype in columns", {"inputs": {"text": [True]}}, 400, "is not of expected type: string"),
    ("empty list", {"instances": []}, 400, "empty list"),
    ("empty columns", {"inputs": []}, 400, "empty list"),
    ("unknown input name", {"instances": [{"txt": "a"}]}, 400, "unknown input(s) txt"),
    ("nested list for a scalar input", {"instances": [["a", "b"]]}, 400, "shape"),
    ("bad base64", {"instances": [{"b64": "***"}]}, 400, "base64"),
    ("not a tf.Example", {"signature_name": "serving_examples", "instances": [{"b64": "aGVsbG8="}]}, 400, ""),
]


@pytest.mark.parametrize("body,status,message", [case[1:] for case in BAD_REQUESTS],
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_get_tf_servings_error_shape_and_the_server_keeps_serving(server, body, status, message):
    running, _ = server
    answer = running.predict(body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and message in answer.json()["error"]
    assert running.predict({"instances": ["still serving?"]}).status_code == 200


def test_routes_methods_and_unknown_models_or_versions(server):
    running, _ = server
    cases = [
        (requests.get(f"{running.url}/v1/models/other", timeout=10), 404, "Could not find any versions of model other"),
        (requests.get(running.model_url(version=7), timeout=10), 404, "Could not find version 7"),
        (running.predict({"instances": ["a"]}, version=7), 404,
         f"Servable not found for request: Specific({MODEL}, 7)"),
        (requests.post(f"{running.url}/v1/models/other:predict", data="{}", timeout=10), 404, "Servable not found"),
        (requests.get(running.model_url(":predict"), timeout=10), 405, "takes POST"),
        (requests.post(running.model_url(":classify"), data="{}", timeout=10), 400,
         "When method is classify, key 'examples' is expected"),  # :classify itself: test_serving_clients.py
        (requests.post(running.model_url(":explain"), data="{}", timeout=10), 404, "Malformed request"),
        (requests.get(running.model_url(label="stable"), timeout=10), 400,
         "Unrecognized servable version label: stable"),
        (requests.get(f"{running.url}/v1/models/{MODEL}/versions/x", timeout=10), 400, "not a version number"),
        (requests.get(f"{running.url}/v2/anything", timeout=10), 404, "Not Found"),
        (requests.get(f"{running.url}/v1/models", timeout=10, allow_redirects=False), 400,
         "Missing model name in request."),
    ]
    for answer, status, message in cases:
        assert answer.status_code == status, (answer.request.url, answer.text)
        assert message in answer.json()["error"], answer.text


def test_oversized_body_is_refused_with_413(server):
    running, _ = server
    big = json.dumps({"instances": ["x" * 1000] * 1200})  # 1.2 MB against --max-request-mb 1
    answer = running.predict(big)
    assert answer.status_code == 413 and "over the limit" in answer.json()["error"]

    # Without a Content-Length (chunked upload), the limit holds while the body streams in.
    def chunks():
        for _ in range(12):
            yield b" " * 100_000

    answer = requests.post(running.model_url(":predict"), data=chunks(), timeout=30)
    assert answer.status_code == 413, answer.text
    assert running.predict({"instances": ["fine"]}).status_code == 200


def test_a_request_that_stalls_times_out_with_504(server):
    running, _ = server
    host, port = running.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{\"instances\"".encode())
        start = time.time()
        reply = b""
        while True:  # headers and body may come in separate packets: read until the server closes or the body is in
            chunk = sock.recv(4096)
            reply += chunk
            head, _, body = reply.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if not chunk or (length is not None and len(body) >= length):
                break
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 504"), reply
    assert "--request-timeout" in reply and 4 <= time.time() - start < 20


def test_a_broken_version_is_reported_and_not_served(server):
    running, _ = server
    hidden = running.serving_dir / MODEL / ".tmp-push-0123456789ab" / "9999999998"  # a Pusher's staging folder
    shutil.copytree(running.serving_dir / MODEL / "1", hidden)
    broken = running.serving_dir / MODEL / "9999999999"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    running.wait_for(lambda s: s.get(9999999999, {}).get("status", {}).get("error_code", "OK") != "OK",
                     what="the broken version's error")
    status = running.states()
    assert status[9999999999]["state"] == "END" and "failed to load" in status[9999999999]["status"]["error_message"]
    assert [v for v, s in status.items() if s["state"] == "AVAILABLE"] == [1]
    assert set(status) == {1, 9999999999}  # the hidden staging folder is not a version
    assert running.predict({"instances": ["served by version 1"]}).status_code == 200
    assert running.predict({"instances": ["a"]}, version=9999999999).status_code == 404


def test_a_version_pushed_by_the_pusher_takes_over_without_a_failed_request(server, tmp_path):
    """A bounded client loop runs across the switch; the Pusher (its real executor) publishes the new version."""
    from components.release.pusher import AtomicPusherExecutor

    running, summary = server
    answers, stop = [], threading.Event()

    def client():
        deadline = time.time() + 180  # bounded: stops by itself
        session = requests.Session()
        while not stop.is_set() and time.time() < deadline:
            try:
                reply = session.post(running.model_url(":predict"), data=json.dumps({"instances": TEXTS[:1]}),
                                     timeout=30)
                answers.append((time.time(), reply.status_code))
            except requests.RequestException as e:  # a refused or dropped connection counts as a failure
                answers.append((time.time(), repr(e)))

    loop = threading.Thread(target=client)
    loop.start()
    try:
        time.sleep(1)
        model = tmp_path / "model"  # a Model artifact holding the pushed model (with its card) as Format-Serving
        shutil.copytree(summary["pushed_dir"], model / "Format-Serving")
        pushed = push_model(AtomicPusherExecutor, model, running.serving_dir / MODEL, tmp_path / "pushed_model")
        version = int(pushed.get_string_custom_property("pushed_version"))
        running.wait_for(lambda s: s.get(version, {}).get("state") == "AVAILABLE", what=f"version {version}")
        switched = time.time()
        time.sleep(1)
    finally:
        stop.set()
        loop.join(timeout=60)
    assert answers and all(code == 200 for _, code in answers), [a for a in answers if a[1] != 200][:5]
    assert any(t < switched - 1 for t, _ in answers) and any(t > switched for t, _ in answers)
    states = running.states()
    assert states[version]["state"] == "AVAILABLE" and states[1]["state"] == "END"
    assert running.predict({"instances": ["a"]}, version=version).status_code == 200


def test_the_demo_page_classifies_typed_texts_in_a_real_browser(server, browser):
    running, _ = server
    page, errors = open_page(browser, running.url + "/", width=390, height=844)  # a phone's width
    served = requests.get(running.url + "/demo/model.json", timeout=10).json()
    page.wait_for_selector(f"#model:has-text('version {served['version']}')")
    page.wait_for_selector("#model table")  # the model card's metrics
    assert "classes: fresh, rotten" in page.inner_text("#model")
    assert f"test accuracy\t{served['model_card']['metrics']['test accuracy']:.4f}" in page.inner_text("#model")
    page.fill("#texts", f"{CLEAR['fresh'][0]}\n\n{CLEAR['rotten'][0]}\n")
    page.click("#classify")
    page.wait_for_selector(".result >> nth=1")
    results = page.locator(".result")
    assert results.count() == 2
    for i, expected in enumerate(("fresh", "rotten")):
        assert results.nth(i).locator(".label").inner_text().removeprefix("→ ") == expected
        widths = [float(w.rstrip("%")) for w in results.nth(i).locator(".bar").evaluate_all(
            "bars => bars.map(b => b.style.width)")]
        assert len(widths) == 2 and abs(sum(widths) - 100) < 0.5
        assert results.nth(i).locator(".bar-name").all_inner_texts() == ["fresh", "rotten"]
    assert "2 text(s) classified in" in page.inner_text("#timing")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
    assert errors == []


# TF Serving's gRPC API, through the generated stubs of tensorflow-serving-api (what TF Serving's own clients use)

def _stubs(running):
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(running.grpc_target)
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel), \
        model_service_pb2_grpc.ModelServiceStub(channel)


def _in_service(running) -> int:
    """The version the server answers with now (the tests before may have pushed others)."""
    return max(v for v, s in running.states().items() if s["state"] == "AVAILABLE")


def test_grpc_predict_answers_what_rest_answers(server):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    running, _ = server
    channel, prediction, _ = _stubs(running)
    version = _in_service(running)
    rest_answer = running.predict({"inputs": TEXTS}).json()["outputs"]
    with channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(TEXTS))
        response = prediction.Predict(request, timeout=30)
        assert (response.model_spec.name, response.model_spec.version.value,
                response.model_spec.signature_name) == (MODEL, version, "serving_default")
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), rest_answer["probabilities"],
                                   rtol=1e-5, atol=1e-6)
        assert [v.decode() for v in tf.make_ndarray(response.outputs["label"]).tolist()] == rest_answer["label"]
        request.output_filter.append("label_id")
        assert set(prediction.Predict(request, timeout=30).outputs) == {"label_id"}


def test_rest_grpc_and_the_saved_model_give_clear_reviews_their_class(server, first_run):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    from tensorflow_serving.apis import predict_pb2

    running, _ = server
    texts = [text for examples in CLEAR.values() for text in examples]
    expected = [label for label, examples in CLEAR.items() for _ in examples]
    model = tf.saved_model.load(first_run[1]["pushed_dir"])
    in_process = [v.decode() for v in model.signatures["serving_default"](text=tf.constant(texts))["label"].numpy()]
    rest = running.predict({"instances": texts}).json()["predictions"]
    channel, prediction, _ = _stubs(running)
    with channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts))
        grpc_labels = [v.decode() for v in tf.make_ndarray(prediction.Predict(request, timeout=30).outputs["label"])]
    assert in_process == expected, list(zip(texts, in_process))
    assert [p["label"] for p in rest] == expected and grpc_labels == expected


def test_grpc_status_and_metadata(server):
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

    running, _ = server
    channel, prediction, models = _stubs(running)
    with channel:
        status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": MODEL}), timeout=30)
        from google.protobuf import json_format

        answered = json_format.MessageToDict(status, preserving_proto_field_name=True,
                                             including_default_value_fields=True)
        assert answered == running.status()  # what REST answers, field for field
        assert any(get_model_status_pb2.ModelVersionStatus.State.Name(s.state) == "AVAILABLE"
                   for s in status.model_version_status)
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": MODEL},
                                                                 metadata_field=["signature_def"])
        metadata = prediction.GetModelMetadata(request, timeout=30)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        assert metadata.metadata["signature_def"].Unpack(signatures)
        assert {"serving_default", "serving_examples"} <= set(signatures.signature_def)
        assert signatures.signature_def["serving_default"].method_name == "tensorflow/serving/predict"


def test_grpc_errors_carry_tf_servings_status_codes_and_the_server_keeps_serving(server):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

    running, _ = server
    channel, prediction, models = _stubs(running)

    def predict(name=MODEL, version=None, signature="", **inputs):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = version
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        return prediction.Predict(request, timeout=30)

    cases = [
        (lambda: predict(name="other", text=["a"]), grpc.StatusCode.NOT_FOUND, "Servable not found"),
        (lambda: predict(version=7, text=["a"]), grpc.StatusCode.NOT_FOUND, f"Specific({MODEL}, 7)"),
        (lambda: predict(signature="nope", text=["a"]), grpc.StatusCode.INVALID_ARGUMENT, '"nope" not found'),
        (lambda: predict(txt=["a"]), grpc.StatusCode.INVALID_ARGUMENT, "do not match the signature's"),
        (lambda: predict(text=[1, 2]), grpc.StatusCode.INVALID_ARGUMENT, "to be string but int32"),
        (lambda: predict(text="a"), grpc.StatusCode.INVALID_ARGUMENT, "batch first"),
        (lambda: models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "other"}),
                                       timeout=30), grpc.StatusCode.NOT_FOUND, "Could not find any versions"),
        (lambda: prediction.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": MODEL}), timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "metadata_field"),
    ]
    with channel:
        for call, code, message in cases:
            with pytest.raises(grpc.RpcError) as failed:
                call()
            assert failed.value.code() == code and message in failed.value.details(), failed.value
        assert predict(text=["still serving?"]).outputs["label"].string_val
