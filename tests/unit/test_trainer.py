"""run_fn's model, built in memory: output shapes, padding invariance, trimming, and autograph's rules. The model the
quick run exported: tests/e2e/test_exported_model.py."""

import numpy as np
import tf_keras as keras

from components import features
from components.model import bert
from components.modules.trainer import _to_model_inputs, build_classifier


def _tiny_classifier(num_classes=3):
    keras.utils.set_random_seed(0)
    encoder = bert.build_encoder(bert.preset_config("tiny", vocab_size=200))
    return build_classifier(encoder, num_classes=num_classes, pooling="cls", dropout=0.1)


def _batch(ids, length):
    ids = np.array([row + [0] * (length - len(row)) for row in ids], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    return {features.WORD_IDS_KEY: ids, features.MASK_KEY: mask, features.TYPE_IDS_KEY: np.zeros_like(ids)}


def test_output_shape_is_batch_by_classes_and_rows_are_distributions():
    model = _tiny_classifier(num_classes=3)
    out = model(_to_model_inputs(_batch([[2, 5, 6, 3], [2, 7, 3]], 16)), training=False).numpy()
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_padding_does_not_change_the_prediction():
    model = _tiny_classifier()
    rows = [[2, 11, 12, 13, 3], [2, 21, 3]]
    short = model(_batch(rows, 5), training=False).numpy()
    long = model(_batch(rows, 40), training=False).numpy()
    trimmed = model(_to_model_inputs(_batch(rows, 40)), training=False).numpy()
    np.testing.assert_allclose(short, long, atol=1e-5)
    np.testing.assert_allclose(short, trimmed, atol=1e-5)


def test_trim_drops_only_unused_padding_columns():
    out = _to_model_inputs(_batch([[2, 5, 3], [2, 3]], 10))
    assert out[features.WORD_IDS_KEY].shape == (2, 3)
    assert out[features.MASK_KEY].numpy().tolist() == [[1, 1, 1], [1, 1, 0]]


def test_autograph_converts_the_project_layers_but_not_tf_keras():
    # components.runtime.keras2 (imported by bert and trainer) adds TF 2.15's "do not convert" rule for Keras under its
    # new module name; without it every process spends ~20 s re-writing Keras internals on its first fit or export.
    from tensorflow.python.autograph.impl import conversion

    assert conversion.is_allowlisted(keras.layers.Dense.call)
    assert conversion.is_allowlisted(keras.Model.fit)
    assert not conversion.is_allowlisted(bert.pool)  # the project's own code is still converted
