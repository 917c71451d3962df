"""A small SavedModel with the exported classifier's serving signatures, for tests of the server that need a model
that answers but not a trained one: `serving_default` (texts), `serving_examples` (tf.Examples) with the outputs
`probabilities`, `label` and `label_id`, and `classification` (TF Serving's classify method: `classes`, `scores`).

Its score is a function of the text's length and of `bias`, so two versions saved with different biases answer
the same text differently and a logged answer tells which version gave it. Saved in about a second; no tokenizer,
no training. Also used by benchmarks/request_log.py as the fastest model to serve.
"""

from __future__ import annotations

import os
from pathlib import Path

CLASSES = ("rotten", "fresh")


def score(text: str, bias: float) -> float:
    """The model's probability of "fresh" for `text` (UTF-8 bytes counted), in plain Python."""
    import math

    return 1.0 / (1.0 + math.exp(-((len(text.encode("utf-8")) - 20) / 10.0 + bias)))


def save(path: Path, bias: float = 0.0) -> Path:
    """Writes the model to `path` (a version folder); returns it."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf

    from components.module_files import serving_signatures as methods

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.bias = tf.Variable(bias, dtype=tf.float32, trainable=False)
            self.names = tf.constant(list(CLASSES))

        def _outputs(self, texts):
            x = (tf.cast(tf.strings.length(texts), tf.float32) - 20.0) / 10.0 + self.bias
            fresh = tf.sigmoid(x)
            probabilities = tf.stack([1.0 - fresh, fresh], axis=1)
            label_id = tf.cast(fresh > 0.5, tf.int32)
            return probabilities, label_id

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def predict(self, text):
            probabilities, label_id = self._outputs(text)
            return {"probabilities": probabilities, "label_id": label_id, "label": tf.gather(self.names, label_id)}

        def _texts(self, serialized):
            return tf.io.parse_example(serialized, {"text": tf.io.FixedLenFeature([], tf.string, "")})["text"]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def examples(self, examples):
            return self.predict(self._texts(examples))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs):
            probabilities, _ = self._outputs(self._texts(inputs))
            classes = tf.tile(self.names[tf.newaxis], [tf.shape(probabilities)[0], 1])
            return {methods.CLASSES: classes, methods.SCORES: probabilities}

    model = Tiny()
    tf.saved_model.save(model, str(path), signatures={
        "serving_default": model.predict.get_concrete_function(),
        "serving_examples": model.examples.get_concrete_function(),
        methods.CLASSIFY_SIGNATURE: model.classify.get_concrete_function()})
    methods.set_method_names(str(path), {methods.CLASSIFY_SIGNATURE: methods.CLASSIFY_METHOD})
    return path
