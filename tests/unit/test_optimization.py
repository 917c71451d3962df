"""components/model/optimization.py: the learning-rate schedule and layer-wise learning-rate decay on a real (tiny) BERT
classifier, in a tf.function as Keras' fit runs it."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components import features
from components.model import bert, optimization
from components.model.heads import build_classifier
from components.module_files.trainer import to_model_inputs


def test_warmup_then_linear_decay():
    schedule = optimization.WarmupLinearDecay(peak=1e-3, warmup_steps=10, total_steps=110)
    values = [float(schedule(s)) for s in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("name, factor", [
    ("bert_classifier/classifier/kernel:0", 1.0),
    ("encoder/layer_5/output/kernel:0", 0.5),  # the top layer: one factor of decay
    ("encoder/layer_0/attention/query/kernel:0", 0.5 ** 6),
    ("layer_3/attention_layer_norm/gamma:0", 0.5 ** 3),
    ("encoder/embeddings/word_embeddings/embeddings:0", 0.5 ** 7),  # lowest: below layer_0
    ("embeddings/layer_norm/beta:0", 0.5 ** 7),
])
def test_layer_factor_decays_from_the_head_down_to_the_embeddings(name, factor):
    assert optimization.layer_factor(name, num_layers=6, decay=0.5) == pytest.approx(factor)


def _tiny_model():
    keras.utils.set_random_seed(0)
    encoder = bert.build_encoder(bert.preset_config("tiny", vocab_size=200))  # 2 layers
    return build_classifier(encoder, num_classes=3, pooling="mean", dropout=0.0)


def _one_step(model, optimizer, inputs, labels):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, model(inputs, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    step()


@pytest.mark.slow  # ~20 s: a real tiny BERT trained step by step
def test_each_update_is_its_layer_factor_times_adamw_s():
    ids = np.array([[2, 5, 6, 7, 3], [2, 9, 3, 0, 0]], dtype=np.int64)
    inputs = to_model_inputs({features.WORD_IDS_KEY: ids, features.MASK_KEY: (ids != 0).astype(np.int64),
                               features.TYPE_IDS_KEY: np.zeros_like(ids)})
    labels = tf.constant([0, 2])
    plain, decayed = _tiny_model(), _tiny_model()
    names = [v.name for v in plain.trainable_variables]
    assert optimization.encoder_layers(names) == 2
    start = [v.numpy() for v in plain.trainable_variables]
    # A constant rate and no weight decay (the schedule's rate is 0 at step 0): the updates differ by the factor alone.
    _one_step(plain, keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.0), inputs, labels)
    optimizer = optimization.LayerwiseDecayAdamW(0.5, learning_rate=1e-3, weight_decay=0.0)
    _one_step(decayed, optimizer, inputs, labels)
    factors = set()
    for name, before, a, b in zip(names, start, plain.trainable_variables, decayed.trainable_variables):
        factor = optimization.layer_factor(name, 2, 0.5)
        factors.add(factor)
        moved = a.numpy() - before
        assert np.abs(moved).max() > 0, name
        # atol: float32 rounding of weights near 1
        np.testing.assert_allclose(b.numpy() - before, factor * moved, rtol=1e-4, atol=2e-7, err_msg=name)
    assert factors == {1.0, 0.5, 0.25, 0.125}


def test_make_optimizer_decays_layers_only_below_1():
    assert type(optimization.make_optimizer(1e-3, 0.1, 0.01, 100)) is keras.optimizers.AdamW
    decayed = optimization.make_optimizer(1e-3, 0.1, 0.01, 100, layer_decay=0.8)
    assert isinstance(decayed, optimization.LayerwiseDecayAdamW) and decayed.decay == 0.8
