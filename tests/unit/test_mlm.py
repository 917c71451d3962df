"""Tests of components/model/mlm.py: the head's arithmetic against Hugging Face's definition, training on a small
corpus, strict loading of `cls.predictions.*`, and the export back to a Hugging Face folder (exact round trip)."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from safetensors.numpy import load_file
from scipy.special import erf

from components import features
from components.model import bert, hf_checkpoint, masking, mlm
from pipeline.data.assets import ensure_checkpoint
from support.checkpoints import hf_tensors, mlm_head_tensors, write_checkpoint

TINY = bert.BertConfig(vocab_size=50, hidden_size=8, num_layers=2, num_heads=2, intermediate_size=16,
                       max_position_embeddings=16)


def _vocab_file(tmp_path, size=TINY.vocab_size):
    path = tmp_path / "source_vocab.txt"
    words = list(features.SPECIAL_TOKENS) + [f"w{i}" for i in range(size - len(features.SPECIAL_TOKENS))]
    path.write_text("".join(w + "\n" for w in words))
    return path


def _mlm_checkpoint_tensors(seed=0):
    """A BertForMaskedLM-style checkpoint: 'bert.' names, the head, the tied decoder stored too (as old .bin files
    did), and the next-sentence head of BertForPreTraining, which is ignored."""
    tensors = {"bert." + k: v for k, v in hf_tensors(TINY, seed).items()}
    tensors.update(mlm_head_tensors(TINY, seed + 1))
    tensors["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"].copy()
    tensors["cls.seq_relationship.weight"] = np.ones((2, TINY.hidden_size), np.float32)
    tensors["cls.seq_relationship.bias"] = np.ones((2,), np.float32)
    return tensors


def _feed(ids, positions):
    ids = np.asarray(ids, np.int32)
    return {"input_word_ids": ids, "input_mask": (ids > 0).astype(np.int32), "input_type_ids": np.zeros_like(ids),
            masking.MASKED_POSITIONS_KEY: np.asarray(positions, np.int32)}


def _fresh(config=TINY):
    encoder = bert.build_encoder(config)
    return encoder, mlm.build_head(encoder, config)


def _values(encoder, head):
    return [w.numpy() for w in encoder.weights] + [w.numpy() for w in mlm.head_targets(head).values()
                                                   for w in [w.variable]]


# ------------------------------------------------------------------------------------------------ the head


def test_head_computes_bert_for_masked_lm_predictions(tmp_path):
    tensors = _mlm_checkpoint_tensors()
    encoder, head = _fresh()
    note = mlm.load_mlm_weights(encoder, head, tensors)
    assert note.startswith("loaded the encoder and the masked-LM head")
    model = mlm.build_pretraining_model(encoder, head)
    ids = [[2, 7, 9, 11, 3, 0], [2, 13, 4, 3, 0, 0]]
    positions = [[1, 3], [2, 0]]
    logits = model(_feed(ids, positions), training=False).numpy()
    assert logits.shape == (2, 2, TINY.vocab_size) and logits.dtype == np.float32

    # Reference: HF's BertLMPredictionHead on the encoder's hidden states at the positions.
    feed = _feed(ids, positions)
    sequence = encoder({k: feed[k] for k in bert.INPUT_NAMES}, training=False).numpy()
    hidden = np.take_along_axis(sequence, np.asarray(positions)[:, :, None], axis=1)
    w, b = tensors["cls.predictions.transform.dense.weight"], tensors["cls.predictions.transform.dense.bias"]
    x = hidden @ w.T + b
    x = 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    x = (x - mean) / np.sqrt(var + TINY.layer_norm_eps)
    x = x * tensors["cls.predictions.transform.LayerNorm.weight"] + tensors["cls.predictions.transform.LayerNorm.bias"]
    expected = x @ tensors["cls.predictions.decoder.weight"].T + tensors["cls.predictions.bias"]
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=0)


def test_decoder_is_tied_to_the_word_embeddings():
    encoder, head = _fresh()
    model = mlm.build_pretraining_model(encoder, head)
    # The model has the encoder's weights plus the head's five, nothing the size of a second vocabulary matrix.
    assert len(model.trainable_weights) == len(encoder.trainable_weights) + 5
    vocab_matrices = [w for w in model.trainable_weights if tuple(w.shape) == (TINY.vocab_size, TINY.hidden_size)]
    assert vocab_matrices == [mlm.word_embedding_layer(encoder).embeddings]
    # A gradient step on the MLM loss moves the embeddings of the labels (through the decoder) too.
    feed = _feed([[2, 7, 9, 3]], [[1, 2]])
    labels, weights = np.array([[20, 30]]), np.array([[1.0, 1.0]], np.float32)
    with tf.GradientTape() as tape:
        loss = mlm.masked_lm_loss(labels, model(feed, training=False), weights)
    grad = tape.gradient(loss, vocab_matrices[0])
    rows = np.nonzero(np.abs(tf.convert_to_tensor(grad).numpy()).sum(axis=1))[0]
    assert {20, 30} <= set(rows.tolist())


def test_loss_and_accuracy_ignore_padding_predictions():
    logits = tf.constant([[[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]])
    labels = tf.constant([[0, 0, 2]])
    full = mlm.masked_lm_loss(labels, logits, tf.constant([[1.0, 1.0, 1.0]]))
    padded = mlm.masked_lm_loss(labels, logits, tf.constant([[1.0, 0.0, 1.0]]))
    ce_right = -np.log(np.exp(5) / (np.exp(5) + 2))
    ce_wrong = -np.log(1 / (np.exp(5) + 2))
    np.testing.assert_allclose(full.numpy(), (2 * ce_right + ce_wrong) / 3, rtol=1e-6)
    np.testing.assert_allclose(padded.numpy(), ce_right, rtol=1e-6)
    assert mlm.masked_lm_accuracy(labels, logits, tf.constant([[1.0, 1.0, 1.0]])).numpy() == pytest.approx(2 / 3)
    assert mlm.masked_lm_accuracy(labels, logits, tf.constant([[1.0, 0.0, 1.0]])).numpy() == 1.0
    assert mlm.masked_lm_loss(labels, logits, tf.zeros([1, 3])).numpy() == 0.0


@pytest.mark.slow  # ~14 s of training
def test_mlm_loss_falls_on_a_small_corpus(tmp_path):
    """A tiny encoder learns a fixed corpus of counting sequences (each word follows from its neighbours) with fresh
    masks every step, from the masker the pretraining input pipeline uses."""
    keras.utils.set_random_seed(4)
    words = [f"n{i}" for i in range(40)]
    vocab = list(features.SPECIAL_TOKENS) + words
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(64):
        start = int(rng.integers(0, len(words)))
        rows.append([2] + [5 + (start + j) % len(words) for j in range(14)] + [3])
    corpus = {"input_word_ids": np.array(rows, np.int64), "input_mask": np.ones((64, 16), np.int64),
              "input_type_ids": np.zeros((64, 16), np.int64)}
    masker = masking.MlmMasker.from_vocab(vocab, max_predictions=4)
    data = iter(tf.data.Dataset.from_tensor_slices(corpus).repeat().shuffle(64, seed=1).batch(32).map(masker))

    config = bert.BertConfig(vocab_size=len(vocab), hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                             max_position_embeddings=16, hidden_dropout=0.0, attention_dropout=0.0)
    encoder, head = _fresh(config)
    model = mlm.build_pretraining_model(encoder, head)
    optimizer = keras.optimizers.Adam(1e-2)

    @tf.function
    def step(batch):
        feed = {k: batch[k] for k in (*bert.INPUT_NAMES, masking.MASKED_POSITIONS_KEY)}
        with tf.GradientTape() as tape:
            logits = model(feed, training=True)
            loss = mlm.masked_lm_loss(batch[masking.MASKED_IDS_KEY], logits, batch[masking.MASKED_WEIGHTS_KEY])
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        return loss, mlm.masked_lm_accuracy(batch[masking.MASKED_IDS_KEY], logits, batch[masking.MASKED_WEIGHTS_KEY])

    history = [step(next(data)) for _ in range(100)]
    losses = np.array([float(loss) for loss, _ in history])
    accuracy = np.array([float(acc) for _, acc in history])
    print(f"\nMLM loss {losses[:5].mean():.3f} -> {losses[-5:].mean():.3f}, "
          f"accuracy {accuracy[:5].mean():.3f} -> {accuracy[-5:].mean():.3f}")
    assert losses[:5].mean() > 0.9 * np.log(len(vocab))  # starts near chance
    assert losses[-5:].mean() < 0.6 * losses[:5].mean()
    assert accuracy[-10:].mean() > accuracy[:10].mean() + 0.2


# ------------------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("defect, named", [
    ("missing", "cls.predictions.transform.dense.bias"),
    ("unexpected", "cls.predictions.transform.extra.weight"),
    ("misshaped", "cls.predictions.bias"),
])
def test_strict_head_loading_names_the_tensor_and_assigns_nothing(tmp_path, defect, named):
    tensors = _mlm_checkpoint_tensors()
    if defect == "missing":
        del tensors[named]
    elif defect == "unexpected":
        tensors[named] = np.zeros((TINY.hidden_size,), np.float32)
    else:
        tensors[named] = np.zeros((TINY.vocab_size + 1,), np.float32)
    write_checkpoint(tmp_path, TINY, tensors)
    encoder, head = _fresh()
    before = _values(encoder, head)
    with pytest.raises(hf_checkpoint.CheckpointError, match=defect.replace("misshaped", "mis-shaped")) as err:
        mlm.load_mlm_weights(encoder, head, tmp_path)
    assert named in str(err.value) and str(tmp_path) in str(err.value)
    if defect == "misshaped":
        assert "(51,)" in str(err.value) and "(50,)" in str(err.value)
    for b, a in zip(before, _values(encoder, head)):
        np.testing.assert_array_equal(b, a)


def test_head_and_encoder_problems_are_reported_together():
    tensors = _mlm_checkpoint_tensors()
    del tensors["bert.encoder.layer.1.output.dense.bias"], tensors["cls.predictions.transform.LayerNorm.weight"]
    with pytest.raises(hf_checkpoint.CheckpointError) as err:
        mlm.load_mlm_weights(*_fresh(), tensors)
    assert "encoder.layer.1.output.dense.bias" in str(err.value)
    assert "cls.predictions.transform.LayerNorm.weight" in str(err.value)


def test_untied_decoder_is_refused(tmp_path):
    tensors = _mlm_checkpoint_tensors()
    tensors["cls.predictions.decoder.weight"] = tensors["cls.predictions.decoder.weight"] + 1e-3
    write_checkpoint(tmp_path, TINY, tensors)
    with pytest.raises(hf_checkpoint.CheckpointError, match="cls.predictions.decoder.weight .* not tied"):
        mlm.load_mlm_weights(*_fresh(), tmp_path)


def test_decoder_bias_alias(tmp_path):
    tensors = _mlm_checkpoint_tensors()
    bias = tensors["cls.predictions.bias"]
    # Both names (old checkpoints): they must agree.
    tensors["cls.predictions.decoder.bias"] = bias + 1.0
    with pytest.raises(hf_checkpoint.CheckpointError, match="cls.predictions.decoder.bias differs"):
        mlm.load_mlm_weights(*_fresh(), tensors)
    # Only the decoder's name: it is the output bias.
    tensors["cls.predictions.decoder.bias"] = tensors.pop("cls.predictions.bias")
    encoder, head = _fresh()
    mlm.load_mlm_weights(encoder, head, tensors)
    np.testing.assert_array_equal(head.output_bias.numpy(), bias)


def test_gamma_beta_names_load_into_the_head():
    tensors = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in _mlm_checkpoint_tensors().items()}
    encoder, head = _fresh()
    mlm.load_mlm_weights(encoder, head, tensors)
    np.testing.assert_array_equal(head.layer_norm.gamma.numpy(),
                                  tensors["cls.predictions.transform.LayerNorm.gamma"])


def test_packaged_checkpoint_without_head_initialises_it():
    checkpoint = ensure_checkpoint()
    loaded = mlm.load_pretrained_mlm(checkpoint)
    assert "no masked-LM head" in loaded.note and "initialised" in loaded.note
    assert not np.any(loaded.head.output_bias.numpy())
    np.testing.assert_array_equal(loaded.head.layer_norm.gamma.numpy(), np.ones(loaded.config.hidden_size))
    reference = load_file(str(checkpoint / hf_checkpoint.WEIGHTS_FILE))
    np.testing.assert_array_equal(mlm.word_embedding_layer(loaded.encoder).embeddings.numpy(),
                                  reference["embeddings.word_embeddings.weight"])


# -------------------------------------------------------------------------------------------------- export


def test_export_round_trip_is_exact(tmp_path):
    tensors = _mlm_checkpoint_tensors(seed=5)
    source = write_checkpoint(tmp_path / "source", TINY, tensors, vocab=_vocab_file(tmp_path))
    loaded = mlm.load_pretrained_mlm(source)
    exported = mlm.export_hf_checkpoint(tmp_path / "exported", loaded.encoder, loaded.config,
                                        source / "vocab.txt", lower_case=False, head=loaded.head)

    # The file holds the source's tensors bit for bit, under BertForMaskedLM names (the tied decoder, the pooler,
    # the next-sentence head and the position_ids buffer are not weights of encoder or head).
    written = load_file(str(exported / hf_checkpoint.WEIGHTS_FILE))
    kept = {k: v for k, v in tensors.items()
            if not k.startswith(("bert.pooler.", "bert.embeddings.position_ids", "cls.seq_relationship.",
                                 "cls.predictions.decoder."))}
    assert set(written) == set(kept)
    for name, value in kept.items():
        assert written[name].dtype == np.float32 and np.array_equal(written[name], value), name

    # Loading the export gives identical variables; config and tokenizer settings come back too.
    again = mlm.load_pretrained_mlm(exported)
    assert again.note.startswith("loaded the encoder and the masked-LM head")
    assert again.config == loaded.config
    for a, b in zip(_values(loaded.encoder, loaded.head), _values(again.encoder, again.head)):
        assert np.array_equal(a, b)
    assert json.loads((exported / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    assert hf_checkpoint.checkpoint_tokenizer_settings(exported) == (exported / "vocab.txt", False)
    assert (exported / "vocab.txt").read_bytes() == (source / "vocab.txt").read_bytes()


def test_fine_tuning_classifier_starts_from_the_exported_encoder(tmp_path):
    """The Trainer's pretrained_dir path (hf_checkpoint.load_pretrained + build_classifier) takes an exported folder,
    with or without the head, and gets exactly the adapted encoder weights."""
    from components.model.heads import build_classifier

    keras.utils.set_random_seed(6)
    encoder, head = _fresh()
    # "Adapt" the encoder: any change away from the initialisation will do.
    for w in encoder.weights:
        w.assign(w + tf.random.normal(w.shape, stddev=0.01))
    vocab = _vocab_file(tmp_path)
    for with_head in (True, False):
        folder = mlm.export_hf_checkpoint(tmp_path / f"adapted_{with_head}", encoder, TINY, vocab,
                                          head=head if with_head else None)
        names = set(load_file(str(folder / hf_checkpoint.WEIGHTS_FILE)))
        assert any(n.startswith("cls.predictions.") for n in names) == with_head
        assert all(n.startswith(("bert.", "cls.")) for n in names) == with_head
        classifier = build_classifier(hf_checkpoint.load_pretrained(folder), num_classes=2, pooling="cls", dropout=0.1)
        inner = next(layer for layer in classifier.layers if isinstance(layer, keras.Model))
        assert len(inner.weights) == len(encoder.weights)
        for a, b in zip(encoder.weights, inner.weights):
            assert a.name == b.name and np.array_equal(a.numpy(), b.numpy()), a.name


def test_export_refuses_a_config_that_does_not_describe_the_encoder(tmp_path):
    encoder, _ = _fresh()
    wrong = bert.BertConfig(**{**TINY.__dict__, "intermediate_size": 32})
    with pytest.raises(ValueError, match="intermediate_size=32 \\(encoder: 16\\)"):
        mlm.export_hf_checkpoint(tmp_path, encoder, wrong, _vocab_file(tmp_path))
