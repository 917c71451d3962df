"""Classify, Regress and MultiInference (pipeline/serving/inference.py) on a small SavedModel that has both a
classify and a regress signature, made here (the pipeline's classifier has no regress signature), loaded as the
server loads a version; and the exporter's method-name rewrite refusing a signature of the wrong shape."""

import pytest


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    import tensorflow as tf

    from components.module_files import serving_signatures
    from pipeline.serving.models import load_version

    class Model(tf.Module):
        spec = {"x": tf.io.FixedLenFeature([], tf.float32)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(self, inputs):
            return {"outputs": tf.io.parse_example(inputs, self.spec)["x"] * 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs):
            x = tf.io.parse_example(inputs, self.spec)["x"]
            scores = tf.stack([tf.sigmoid(-x), tf.sigmoid(x)], axis=1)
            return {"scores": scores, "classes": tf.tile(tf.constant([["low", "high"]]), [tf.shape(x)[0], 1])}

    path = str(tmp_path_factory.mktemp("tiny") / "1")
    model = Model()
    tf.saved_model.save(model, path, signatures={"regress_x": model.regress.get_concrete_function(),
                                                 "serving_default": model.classify.get_concrete_function()})
    serving_signatures.set_method_names(path, {"regress_x": serving_signatures.REGRESS_METHOD,
                                               "serving_default": serving_signatures.CLASSIFY_METHOD})
    tf.saved_model.load(path)  # still loads, fingerprint and all
    return load_version(1, path, None)


def _input(request, values, context=None):
    import tensorflow as tf

    def example(features):
        return tf.train.Example(features=tf.train.Features(feature={
            k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) for k, v in features.items()}))

    if context is None:
        request.input.example_list.examples.extend(example({"x": v}) for v in values)
    else:
        request.input.example_list_with_context.context.CopyFrom(example(context))
        request.input.example_list_with_context.examples.extend(example({"x": v} if v is not None else {})
                                                                for v in values)
    return request


def test_regress_and_classify_on_their_signatures(loaded):
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    from pipeline.serving import inference

    request = _input(regression_pb2.RegressionRequest(model_spec={"name": "m", "signature_name": "regress_x"}),
                     [1.0, -2.5])
    response = inference.regress(loaded, request)
    assert [r.value for r in response.result.regressions] == [2.0, -5.0]
    assert (response.model_spec.version.value, response.model_spec.signature_name) == (1, "regress_x")
    # the context's x is every example's x, unless the example has its own
    with_context = _input(regression_pb2.RegressionRequest(model_spec={"signature_name": "regress_x"}),
                          [None, 3.0], context={"x": 0.5})
    assert [r.value for r in inference.regress(loaded, with_context).result.regressions] == [1.0, 6.0]
    classified = inference.classify(loaded, _input(classification_pb2.ClassificationRequest(), [0.0]))
    assert [(c.label, round(c.score, 3)) for c in classified.result.classifications[0].classes] == [
        ("low", 0.5), ("high", 0.5)]
    assert classified.model_spec.signature_name == "serving_default"  # the empty name's default


def test_multi_inference_runs_every_task_on_the_same_examples(loaded):
    from tensorflow_serving.apis import inference_pb2

    from pipeline.serving import inference

    request = _input(inference_pb2.MultiInferenceRequest(), [4.0])
    request.tasks.add(model_spec={"name": "m", "signature_name": "regress_x"},
                      method_name="tensorflow/serving/regress")
    request.tasks.add(model_spec={"name": "m"}, method_name="tensorflow/serving/classify")
    results = inference.multi_inference(loaded, request).results
    assert results[0].regression_result.regressions[0].value == 8.0
    assert results[1].classification_result.classifications[0].classes[1].label == "high"
    other = _input(inference_pb2.MultiInferenceRequest(), [4.0])
    other.tasks.add(model_spec={"name": "m", "signature_name": "regress_x"}, method_name="tensorflow/serving/regress")
    other.tasks.add(model_spec={"name": "n"}, method_name="tensorflow/serving/classify")
    from pipeline.serving import rest

    with pytest.raises(rest.RestError, match="must access the same model name"):
        inference.multi_inference(loaded, other)


def test_a_signature_of_the_wrong_shape_cannot_be_given_a_serving_method(tmp_path):
    import tensorflow as tf

    from components.module_files import serving_signatures

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def predict(self, text):
            return {"probabilities": tf.zeros([tf.shape(text)[0], 2])}

    model = Model()
    tf.saved_model.save(model, str(tmp_path), signatures={"serving_default": model.predict.get_concrete_function()})
    with pytest.raises(ValueError, match="must take one string input named 'inputs'"):
        serving_signatures.set_method_names(str(tmp_path), {"serving_default": serving_signatures.CLASSIFY_METHOD})
    assert serving_signatures.method_names(str(tmp_path))["serving_default"] == "tensorflow/serving/predict"
