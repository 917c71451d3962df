"""The checks every exported classifier must pass (the pipeline's Trainer's, and a distributed job's chief's)."""

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the transform graph's WordPiece ops)

from components import features


def check_signatures(saved_model_dir, max_seq_length: int, label: str = "fresh"):
    """The exported model's four signatures, their inputs, outputs and TF Serving method names, and that raw text,
    a tf.Example and the classify signature give the same probabilities; returns the loaded model."""
    from components.module_files import serving_signatures

    loaded = tf.saved_model.load(str(saved_model_dir))
    assert set(loaded.signatures) == {"serving_default", "serving_examples", "classification", "transform_features"}
    methods = serving_signatures.method_names(str(saved_model_dir))
    assert methods["classification"] == "tensorflow/serving/classify"
    assert {methods[k] for k in ("serving_default", "serving_examples", "transform_features")} == {
        "tensorflow/serving/predict"}

    default = loaded.signatures["serving_default"]
    (text_spec,) = default.structured_input_signature[1].values()
    assert list(default.structured_input_signature[1]) == ["text"]
    assert text_spec.dtype == tf.string and text_spec.shape.as_list() == [None]
    outputs = default.structured_outputs
    assert set(outputs) == {"probabilities", "label", "label_id"}
    assert outputs["probabilities"].dtype == tf.float32 and outputs["probabilities"].shape.as_list() == [None, 2]
    assert outputs["label"].dtype == tf.string

    examples = loaded.signatures["serving_examples"]
    assert list(examples.structured_input_signature[1]) == ["examples"]
    assert set(examples.structured_outputs) == {"probabilities", "label", "label_id"}

    # The same text through raw strings and through a serialized tf.Example gives the same probabilities.
    text = "an unexpectedly moving film"
    example = tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))}))
    p1 = default(text=tf.constant([text]))["probabilities"].numpy()
    p2 = examples(examples=tf.constant([example.SerializeToString()]))["probabilities"].numpy()
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    classified = loaded.signatures["classification"](inputs=tf.constant([example.SerializeToString()]))
    assert set(classified) == {"classes", "scores"}
    np.testing.assert_allclose(classified["scores"].numpy(), p1, atol=1e-6)
    names = [c.decode() for c in classified["classes"].numpy()[0]]
    assert len(names) == 2 and default(text=tf.constant([text]))["label"].numpy()[0].decode() == names[int(p1.argmax())]

    transform = loaded.signatures["transform_features"]
    labelled = tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
        "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()]))}))
    out = transform(examples=tf.constant([labelled.SerializeToString()]))
    assert {features.WORD_IDS_KEY, features.MASK_KEY, features.TYPE_IDS_KEY, features.LABEL_ID_KEY} <= set(out)
    assert out[features.WORD_IDS_KEY].shape[-1] == max_seq_length
    return loaded
