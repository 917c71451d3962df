"""run_fn's model, built in memory: output shapes, padding invariance, trimming, and autograph's rules. The model the
quick run exported: tests/e2e/test_exported_model.py."""

import numpy as np
import tf_keras as keras

from components import features
from components.model import bert
from components.model.heads import build_classifier
from components.module_files.trainer import to_model_inputs


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
    out = model(to_model_inputs(_batch([[2, 5, 6, 3], [2, 7, 3]], 16)), training=False).numpy()
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_padding_does_not_change_the_prediction():
    model = _tiny_classifier()
    rows = [[2, 11, 12, 13, 3], [2, 21, 3]]
    short = model(_batch(rows, 5), training=False).numpy()
    long = model(_batch(rows, 40), training=False).numpy()
    trimmed = model(to_model_inputs(_batch(rows, 40)), training=False).numpy()
    np.testing.assert_allclose(short, long, atol=1e-5)
    np.testing.assert_allclose(short, trimmed, atol=1e-5)


def test_trim_drops_only_unused_padding_columns():
    out = to_model_inputs(_batch([[2, 5, 3], [2, 3]], 10))
    assert out[features.WORD_IDS_KEY].shape == (2, 3)
    assert out[features.MASK_KEY].numpy().tolist() == [[1, 1, 1], [1, 1, 0]]


def test_autograph_converts_the_project_layers_but_not_tf_keras():
    # components.runtime.keras2 (imported by bert and trainer) adds TF 2.15's "do not convert" rule for Keras under its
    # new module name; without it every process spends ~20 s re-writing Keras internals on its first fit or export.
    from tensorflow.python.autograph.impl import conversion

    assert conversion.is_allowlisted(keras.layers.Dense.call)
    assert conversion.is_allowlisted(keras.Model.fit)
    assert not conversion.is_allowlisted(bert.pool)  # the project's own code is still converted


# Warm start: from the SavedModel in service -------------------------------------------------------------------------

def _served(tmp_path, model, vocab=None) -> str:
    """A SavedModel holding `model` as its `model` attribute, as the exported ServingModule does (with `vocab` as
    its one asset, as the transform graph's vocabulary)."""
    import tensorflow as tf

    module = tf.Module()
    module.model = model
    module.class_names = tf.constant(["neg", "pos"])  # more than the classifier: restored partially, on purpose
    if vocab:
        module.vocab = tf.saved_model.Asset(str(vocab))
    path = str(tmp_path / "served" / "1700000000")
    tf.saved_model.save(module, path)
    return path


def test_warm_start_restores_every_weight_of_the_served_classifier(tmp_path):
    from components.module_files.trainer import _warm_start

    served = _tiny_classifier(2)
    served.set_weights([w + np.random.default_rng(1).normal(0, 0.5, w.shape) for w in served.get_weights()])
    # The served model was trained: its SavedModel holds an optimizer that took steps.
    served.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    batch = _batch([[2, 5, 7, 3], [2, 9, 3]], 4)
    served.fit(batch, np.array([0, 1]), epochs=3, verbose=0)
    fresh = _tiny_classifier(2)
    assert any(not np.allclose(a, b) for a, b in zip(fresh.get_weights(), served.get_weights(), strict=True))
    _warm_start(fresh, _served(tmp_path, served), blank=lambda: _tiny_classifier(2))
    for a, b in zip(fresh.get_weights(), served.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Its optimizer starts afresh: the learning-rate schedule counts this run's steps, not the served run's too.
    fresh.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    fresh.fit(batch, np.array([0, 1]), epochs=1, verbose=0)
    assert int(fresh.optimizer.iterations.numpy()) == 1 and int(served.optimizer.iterations.numpy()) == 3


def test_warm_start_refuses_a_served_model_of_another_shape_and_starts_fresh_without_one(tmp_path):
    import pytest

    from components.module_files.trainer import _warm_start

    other = build_classifier(bert.build_encoder(bert.preset_config("tiny", vocab_size=300)), 2, "cls", 0.1)
    with pytest.raises(ValueError, match=r"cannot warm-start from the model in service .*1700000000.*differs"):
        _warm_start(_tiny_classifier(2), _served(tmp_path, other))
    before = _tiny_classifier(2)
    weights = [w.copy() for w in before.get_weights()]
    _warm_start(before, str(tmp_path / "no-model-in-service" / "Format-Serving"))  # a first run's empty lookup
    for a, b in zip(before.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_warm_start_refuses_a_served_model_whose_vocabulary_differs(tmp_path):
    """Same shapes, other tokens (a vocabulary learned anew from other data): refused, not silently misread."""
    import pytest

    from components.module_files.trainer import _warm_start

    theirs, ours = tmp_path / "theirs.txt", tmp_path / "ours.txt"
    theirs.write_text("[PAD]\n[UNK]\ngood\nbad\n")
    ours.write_text("[PAD]\n[UNK]\nbad\ngood\n")
    served = _served(tmp_path, _tiny_classifier(2), vocab=theirs)
    with pytest.raises(ValueError, match=r"its vocabulary differs from this run's .*--vocab checkpoint"):
        _warm_start(_tiny_classifier(2), served, str(ours))
    assert _warm_start(_tiny_classifier(2), served, str(theirs)) == served
