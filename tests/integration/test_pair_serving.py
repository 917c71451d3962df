"""A model of pairs of texts (--text-column question,passage) as it is exported and served, without training it: a
real Transform run of two text columns, a small encoder from scratch, the exported ServingModule with its warm-up
requests; the serving check's fresh-process probe replays them; the local server answers REST predict (row and
columnar), REST classify with tf.Examples of both features, gRPC Predict and Classify, each what the SavedModel
answers in process; an instance without one of the texts is refused naming the inputs. The end-to-end run with
training: tests/e2e/test_pairs.py."""

import json

import numpy as np
import pytest
import tensorflow as tf

from components import features
from components.module_files import serving_signatures, warmup
from components.release import serving_check
from pipeline.data.assets import ensure_checkpoint
from support.browser import ARTIFACTS, open_page

PAIRS = [("Is the museum open on Mondays?", "The museum is closed on Mondays and public holidays."),
         ("How long does the train take?", "The train to the airport takes about forty minutes."),
         ("Who wrote the report?", "Bananas are rich in potassium."),
         ("Where is the station?", "The station is two streets north of the square.")]
COLUMNS = ("question", "passage")
MAX_LEN = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(the exported pair model's folder, the loaded serving signature)."""
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

    from components.model import bert, heads
    from components.module_files import trainer
    from components.module_files.serving_module import ServingModule
    from components.settings.data import DataSettings
    from components.settings.transform import TransformSettings
    from support.tft_run import analyze_and_transform

    base = tmp_path_factory.mktemp("pair_serving")
    vocab_file = str(ensure_checkpoint() / "vocab.txt")
    data = DataSettings(",".join(COLUMNS), "label", label_names=("no", "yes"), vocab_file=vocab_file)
    rows = [{"question": q, "passage": p, "label": "yes"} for q, p in PAIRS]
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in (*COLUMNS, "label")}
    _, out_dir = analyze_and_transform(base, rows, spec, data, TransformSettings(max_seq_length=MAX_LEN))
    # the raw data's schema, which TFX's Transform writes beside the graph (the serving signatures' raw features)
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata.from_feature_spec(spec), str(out_dir / "metadata"))
    encoder = bert.build_encoder(bert.BertConfig(vocab_size=30522, hidden_size=16, num_layers=1, num_heads=2,
                                                 intermediate_size=32, max_position_embeddings=MAX_LEN))
    model = heads.build_classifier(encoder, 2, "cls", 0.0)
    module = ServingModule(model, tft.TFTransformOutput(str(out_dir)), data.text_key, data.tasks,
                           trainer.to_model_inputs)
    model_dir = base / "model" / "1"
    tf.saved_model.save(module, str(model_dir), signatures=module.signatures())
    serving_signatures.set_method_names(str(model_dir), {
        serving_signatures.CLASSIFY_SIGNATURE: serving_signatures.CLASSIFY_METHOD})
    warmup.write_requests(str(model_dir), warmup.text_requests(PAIRS, data.text_key))
    (model_dir / warmup.ASSETS_EXTRA / features.CLASS_NAMES_FILE).write_text(json.dumps(["no", "yes"]))
    # the model card's part the demo page reads: the order of the text columns
    (model_dir / warmup.ASSETS_EXTRA / "model_card.json").write_text(json.dumps(
        {"data": {"text_column": data.text_key}, "metrics": {}}))
    return model_dir, tf.saved_model.load(str(model_dir)).signatures["serving_default"]


def in_process(serve, pairs):
    out = serve(question=tf.constant([q for q, _ in pairs]), passage=tf.constant([p for _, p in pairs]))
    return out["probabilities"].numpy()


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    from support.serving_server import Server, copy_version

    serving = tmp_path_factory.mktemp("pair_served") / "serving"
    copy_version(exported[0], serving, 1)
    with Server(serving) as running:
        running.wait_for(lambda s: s.get(1, {}).get("state") == "AVAILABLE", what="version 1")
        yield running


@pytest.mark.slow  # a TF Transform run and a fresh-process probe
def test_a_pair_model_is_exported_with_an_input_per_text_and_passes_the_serving_check(exported):
    model_dir, serve = exported
    assert set(serve.structured_input_signature[1]) == set(COLUMNS)
    expected = in_process(serve, PAIRS)
    # the second text matters: the same question with another passage is another input
    swapped = in_process(serve, [(PAIRS[0][0], PAIRS[2][1])])
    assert not np.allclose(expected[0], swapped[0])
    # ServingCheck: stock TF Serving's ops, and the warm-up requests (a pair alone, a batch, tf.Examples, Classify)
    # replayed in a process without the project's training code
    report = serving_check.check_model(str(model_dir))  # ServingCheckError if not
    assert report["warmup_requests"] == 4 and report["ops"], report


@pytest.mark.slow  # a TF Transform run and a server
def test_rest_and_grpc_answer_pairs_as_the_model_does_in_process(exported, server):
    expected = in_process(exported[1], PAIRS)
    rows = server.predict({"instances": [{"question": q, "passage": p} for q, p in PAIRS]})
    assert rows.status_code == 200, rows.text
    np.testing.assert_allclose([r["probabilities"] for r in rows.json()["predictions"]], expected, atol=1e-5)
    columnar = server.predict({"inputs": {"question": [q for q, _ in PAIRS], "passage": [p for _, p in PAIRS]}})
    assert columnar.status_code == 200, columnar.text
    np.testing.assert_allclose(columnar.json()["outputs"]["probabilities"], expected, atol=1e-5)
    classify = server.predict({"signature_name": serving_signatures.CLASSIFY_SIGNATURE,
                               "examples": [{"question": q, "passage": p} for q, p in PAIRS]}, verb="classify")
    assert classify.status_code == 200, classify.text
    np.testing.assert_allclose([[s for _, s in row] for row in classify.json()["results"]], expected, atol=1e-5)
    one_text = server.predict({"instances": [{"question": PAIRS[0][0]}]})
    assert one_text.status_code == 400 and "passage" in one_text.json()["error"], one_text.text
    _grpc(server, expected)


@pytest.mark.slow  # a TF Transform run, a server and a browser
def test_the_demo_page_has_a_box_per_text_and_classifies_pairs(exported, server, browser):
    """A box per text column, in the columns' order (the model card's); line i of each box is one pair."""
    import requests

    assert requests.get(server.url + "/demo/model.json", timeout=10).json()["text_inputs"] == list(COLUMNS)
    page, errors = open_page(browser, server.url + "/")
    page.wait_for_selector("#text-passage")
    assert page.locator("#boxes textarea").evaluate_all("areas => areas.map(a => a.id)") == [
        "text-question", "text-passage"]
    page.fill("#text-question", "\n".join(q for q, _ in PAIRS[:2]))
    page.fill("#text-passage", "\n".join(p for _, p in PAIRS[:2]))
    page.click("#classify")
    page.wait_for_selector(".result >> nth=1")
    labels = [x.decode() for x in exported[1](question=tf.constant([q for q, _ in PAIRS[:2]]),
                                              passage=tf.constant([p for _, p in PAIRS[:2]]))["label"].numpy()]
    assert page.locator(".result .label").all_inner_texts() == [f"→ {label}" for label in labels]
    assert page.locator(".result .text").all_text_contents()[0] == f"{PAIRS[0][0]}  |  {PAIRS[0][1]}"
    page.screenshot(path=str(ARTIFACTS / "demo-pairs.png"), full_page=True)
    assert errors == []


def _grpc(running, expected):
    import grpc
    from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(running.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "bert_classifier"
        for i, column in enumerate(COLUMNS):
            request.inputs[column].CopyFrom(tf.make_tensor_proto([pair[i] for pair in PAIRS]))
        answer = stub.Predict(request, timeout=30)
        np.testing.assert_allclose(tf.make_ndarray(answer.outputs["probabilities"]), expected, atol=1e-5)
        classify = classification_pb2.ClassificationRequest()
        classify.model_spec.name = "bert_classifier"
        classify.model_spec.signature_name = serving_signatures.CLASSIFY_SIGNATURE
        for example in warmup.serialized_examples(PAIRS, ",".join(COLUMNS)):
            classify.input.example_list.examples.add().ParseFromString(example)
        result = stub.Classify(classify, timeout=30).result
        np.testing.assert_allclose([[c.score for c in row.classes] for row in result.classifications], expected,
                                   atol=1e-5)
        with pytest.raises(grpc.RpcError) as refused:
            request.inputs.pop("passage")
            stub.Predict(request, timeout=30)
        assert "passage" in refused.value.details()


def test_warm_up_requests_of_pairs_name_each_text_column():
    requests = warmup.text_requests(PAIRS[:3], "question,passage")
    assert [name for name, _ in requests] == ["serving_default", "serving_default", "serving_examples",
                                              serving_signatures.CLASSIFY_SIGNATURE]
    assert set(requests[1][1]) == set(COLUMNS) and list(requests[1][1]["passage"]) == [
        p.encode() for _, p in PAIRS[:3]]
    example = tf.train.Example.FromString(requests[2][1]["examples"][0])
    assert {k: v.bytes_list.value[0].decode() for k, v in example.features.feature.items()} == dict(
        zip(COLUMNS, PAIRS[0]))
    assert set(warmup.text_requests(["one text"], "review")[0][1]) == {"text"}  # one text: the input is `text`


def test_one_text_column_keeps_the_input_named_text_and_a_pair_gets_its_columns(tmp_path):
    """The raw-text signature's inputs, whatever the column is called: `text` for one (as every client of a one-text
    model sends), the columns' names for a pair. The transform layer is a stand-in that packs character counts; the
    real graph is the exported fixture's."""
    from components.model import bert, heads
    from components.module_files import trainer
    from components.module_files.serving_module import ServingModule
    from components.tasks import Task

    class Layer(tf.Module):
        def __call__(self, raw):
            lengths = tf.add_n([tf.strings.length(tf.reshape(v, [-1])) for v in raw.values()])
            ids = tf.stack([tf.fill(tf.shape(lengths), 2), tf.cast(lengths % 50, tf.int32) + 5], axis=1)
            return {features.WORD_IDS_KEY: ids, features.MASK_KEY: tf.ones_like(ids),
                    features.TYPE_IDS_KEY: tf.zeros_like(ids)}

    class Output:
        def __init__(self, columns):
            self.columns = columns

        def transform_features_layer(self):
            return Layer()

        def raw_feature_spec(self):
            return {c: tf.io.FixedLenFeature([], tf.string) for c in (*self.columns, "label")}

    encoder = bert.build_encoder(bert.BertConfig(vocab_size=60, hidden_size=8, num_layers=1, num_heads=2,
                                                 intermediate_size=16, max_position_embeddings=8))
    model = heads.build_classifier(encoder, 2, "cls", 0.0)
    for text_key, inputs in (("review", {"text"}), ("question,passage", set(COLUMNS))):
        module = ServingModule(model, Output(text_key.split(",")), text_key, (Task("label", ("no", "yes")),),
                               trainer.to_model_inputs)
        folder = tmp_path / text_key.replace(",", "-")
        tf.saved_model.save(module, str(folder), signatures=module.signatures())
        serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
        assert set(serve.structured_input_signature[1]) == inputs
        assert serve(**{name: tf.constant(["a b"]) for name in inputs})["probabilities"].shape == (1, 2)
