"""Tests of components/model/bert.py and components/model/hf_checkpoint.py: parity with Hugging Face BertModel, strict
weight loading, presets, export."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.model import bert, hf_checkpoint
from pipeline.data.assets import ensure_checkpoint
from support import FIXTURES
from support.checkpoints import hf_tensors as _hf_tensors
from support.checkpoints import write_checkpoint as _write_checkpoint

FIXTURE = FIXTURES / "minilm_l6_reference.json"

TINY = bert.BertConfig(vocab_size=50, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16,
                       max_position_embeddings=16)


@pytest.fixture(scope="module")
def reference():
    with open(FIXTURE, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def checkpoint_dir():
    return ensure_checkpoint()


@pytest.fixture(scope="module")
def minilm(checkpoint_dir):
    return hf_checkpoint.load_pretrained(checkpoint_dir)


def _inputs(ids, mask, dtype=np.int32):
    ids = np.asarray(ids, dtype=dtype)
    return {"input_word_ids": ids, "input_mask": np.asarray(mask, dtype=dtype),
            "input_type_ids": np.zeros_like(ids)}


# ---------------------------------------------------------------------------------------------- parity


def test_parity_with_hugging_face_reference(minilm, reference):
    cases = reference["cases"]
    assert len(cases) == 7 and all(len(c["input_ids"]) == reference["max_length"] for c in cases)
    ids = [c["input_ids"] for c in cases]
    mask = [c["attention_mask"] for c in cases]
    out = minilm(_inputs(ids, mask), training=False).numpy()
    assert out.shape == (7, 32, 384) and out.dtype == np.float32

    for i, case in enumerate(cases):
        np.testing.assert_allclose(out[i, 0, :16], case["cls_hidden_first16"], atol=1e-4, rtol=0,
                                   err_msg=f"[CLS] of case {i} ({case['text']!r})")
    mean = bert.pool(tf.constant(out), np.asarray(mask), "mean").numpy()
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    for i, case in enumerate(cases):
        np.testing.assert_allclose(mean[i], case["mean_pooled_normalized"], atol=1e-4, rtol=0,
                                   err_msg=f"mean pooling of case {i} ({case['text']!r})")


def test_padding_invariance_and_int64_inputs(minilm, reference):
    case = reference["cases"][1]
    n = sum(case["attention_mask"])
    ids32 = case["input_ids"]
    ids64 = ids32[:n] + [0] * (64 - n)
    mask64 = [1] * n + [0] * (64 - n)
    out32 = minilm(_inputs([ids32], [case["attention_mask"]]), training=False).numpy()
    out64 = minilm(_inputs([ids64], [mask64]), training=False).numpy()
    np.testing.assert_allclose(out32[0, 0], out64[0, 0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out32[0, :n], out64[0, :n], atol=1e-5, rtol=0)
    # TF Transform produces int64 features: the encoder accepts them as well.
    out_i64 = minilm(_inputs([ids32], [case["attention_mask"]], dtype=np.int64), training=False).numpy()
    np.testing.assert_allclose(out32, out_i64, atol=1e-6, rtol=0)


def test_pool_modes():
    seq = tf.constant(np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2))
    mask = tf.constant([[1, 1, 0], [0, 0, 0]], tf.int64)
    np.testing.assert_allclose(bert.pool(seq, mask, "cls").numpy(), [[0, 1], [6, 7]])
    # Mean over real tokens only; an all-padding row gives zeros, not NaN.
    np.testing.assert_allclose(bert.pool(seq, mask, "mean").numpy(), [[1, 2], [0, 0]])
    with pytest.raises(ValueError, match="pooling mode"):
        bert.pool(seq, mask, "max")


# ------------------------------------------------------------------------------------------ strictness


def test_tiny_checkpoint_roundtrip_with_prefix_and_gamma_beta(tmp_path):
    tensors = _hf_tensors(TINY)
    # A task checkpoint: 'bert.' prefix, old gamma/beta LayerNorm names, plus a classifier head to ignore.
    renamed = {}
    for k, v in tensors.items():
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed["bert." + k] = v
    renamed["classifier.weight"] = np.zeros((3, TINY.hidden_size), np.float32)
    _write_checkpoint(tmp_path, TINY, renamed)
    with pytest.raises(hf_checkpoint.CheckpointError, match="classifier.weight"):
        hf_checkpoint.load_pretrained(tmp_path)
    encoder = hf_checkpoint.load_pretrained(tmp_path, ignore_prefixes=("classifier.",))

    def var(name):
        return next(w for w in encoder.weights if w.name == name).numpy()

    np.testing.assert_array_equal(var("embeddings/word_embeddings/embeddings:0"),
                                  tensors["embeddings.word_embeddings.weight"])
    # Linear weights are stored (out, in) and transposed; q/k/v are split into heads along the out dim.
    q = tensors["encoder.layer.0.attention.self.query.weight"]
    np.testing.assert_array_equal(var("layer_0/attention/query/kernel:0"), q.T.reshape(8, 2, 4))
    o = tensors["encoder.layer.0.attention.output.dense.weight"]
    np.testing.assert_array_equal(var("layer_0/attention/attention_output/kernel:0"), o.T.reshape(2, 4, 8))
    np.testing.assert_array_equal(var("layer_0/output/kernel:0"), tensors["encoder.layer.0.output.dense.weight"].T)
    np.testing.assert_array_equal(var("layer_0/output_layer_norm/gamma:0"),
                                  tensors["encoder.layer.0.output.LayerNorm.weight"])


@pytest.mark.parametrize("defect, named", [
    ("missing", "encoder.layer.0.attention.self.key.bias"),
    ("missing", "embeddings.token_type_embeddings.weight"),  # the segment embeddings two texts are told apart by
    ("misshaped", "embeddings.token_type_embeddings.weight"),
    ("unexpected", "encoder.layer.1.output.dense.bias"),
    ("misshaped", "encoder.layer.0.intermediate.dense.weight"),
])
def test_strict_loading_rejects_bad_checkpoints(tmp_path, defect, named):
    tensors = _hf_tensors(TINY)
    if defect == "missing":
        del tensors[named]
    elif defect == "unexpected":
        tensors[named] = np.zeros((TINY.hidden_size,), np.float32)
    elif "token_type" in named:  # one segment only: a checkpoint that cannot tell a pair's texts apart
        tensors[named] = np.zeros((1, TINY.hidden_size), np.float32)
    else:
        tensors[named] = np.zeros((TINY.intermediate_size, TINY.hidden_size + 1), np.float32)
    _write_checkpoint(tmp_path, TINY, tensors)
    with pytest.raises(hf_checkpoint.CheckpointError, match=defect.replace("misshaped", "mis-shaped")) as err:
        hf_checkpoint.load_pretrained(tmp_path)
    assert named in str(err.value)
    if defect == "misshaped" and "token_type" not in named:
        assert "(16, 9)" in str(err.value) and "(16, 8)" in str(err.value)


def test_the_checkpoints_segment_embeddings_are_loaded_and_a_new_encoder_has_two(checkpoint_dir, minilm):
    """A pair's second text (segment id 1) reads the checkpoint's own token-type embedding; an encoder trained from
    scratch gets two segments of its own."""
    tensors, _ = hf_checkpoint.read_hf_tensors(checkpoint_dir)
    loaded = minilm.get_layer("embeddings/token_type_embeddings").embeddings.numpy()
    np.testing.assert_array_equal(loaded, tensors["embeddings.token_type_embeddings.weight"])
    assert loaded.shape[0] == 2 and not np.allclose(loaded[0], loaded[1])
    assert bert.build_encoder(TINY).get_layer("embeddings/token_type_embeddings").input_dim == 2


def test_strict_loading_assigns_nothing_on_error():
    encoder = bert.build_encoder(TINY)
    before = [w.numpy() for w in encoder.weights]
    tensors = _hf_tensors(TINY)
    del tensors["embeddings.LayerNorm.bias"]
    with pytest.raises(hf_checkpoint.CheckpointError, match="embeddings.LayerNorm.bias"):
        hf_checkpoint.load_hf_weights(encoder, tensors)
    for b, w in zip(before, encoder.weights):
        np.testing.assert_array_equal(b, w.numpy())


def test_incomplete_checkpoint_folder(tmp_path):
    with pytest.raises(hf_checkpoint.CheckpointError, match="does not exist"):
        hf_checkpoint.load_pretrained(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(hf_checkpoint.CheckpointError, match="model.safetensors"):
        hf_checkpoint.load_pretrained(tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"model_type": "roberta"}, "model_type 'roberta'"),
    ({"hidden_act": "gelu_new"}, "hidden_act 'gelu_new'"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
    ({"is_decoder": True}, "is_decoder"),
])
def test_from_hf_config_rejects_other_architectures(checkpoint_dir, change, message):
    cfg = json.loads((checkpoint_dir / "config.json").read_text())
    assert bert.BertConfig.from_hf_config(cfg) == bert.BertConfig(
        vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536)
    with pytest.raises(ValueError, match=message):
        bert.BertConfig.from_hf_config({**cfg, **change})


def test_tokenizer_settings(checkpoint_dir, tmp_path):
    vocab_path, lower_case = hf_checkpoint.checkpoint_tokenizer_settings(checkpoint_dir)
    assert vocab_path == checkpoint_dir / "vocab.txt" and lower_case is True
    vocab = hf_checkpoint.read_vocab(checkpoint_dir)
    assert len(vocab) == 30522 and vocab[101] == "[CLS]" and vocab[102] == "[SEP]"
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    assert hf_checkpoint.checkpoint_tokenizer_settings(tmp_path)[1] is True  # no tokenizer_config.json
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    assert hf_checkpoint.checkpoint_tokenizer_settings(tmp_path)[1] is False


# ----------------------------------------------------------------------------------------------- build


@pytest.mark.parametrize("preset", ["tiny", "mini", "small"])
def test_presets_build_with_dynamic_sequence_length(preset):
    config = bert.preset_config(preset, vocab_size=100, max_position_embeddings=64)
    encoder = bert.build_encoder(config)
    assert all(t.shape.as_list() == [None, None] for t in encoder.inputs)
    for batch, seq in ((2, 7), (3, 13)):
        ids = np.random.default_rng(seq).integers(1, 100, (batch, seq))
        out = encoder(_inputs(ids, np.ones_like(ids)), training=False)
        assert out.shape == (batch, seq, config.hidden_size) and out.dtype == tf.float32
    with pytest.raises(ValueError, match="unknown BERT preset"):
        bert.preset_config("huge", vocab_size=100)


# ---------------------------------------------------------------------------------------------- export

_RELOAD = textwrap.dedent("""
    import os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np
    import tensorflow as tf
    assert "components" not in sys.modules
    data = np.load(sys.argv[1])
    feed = {k: tf.constant(data[k]) for k in ("input_word_ids", "input_mask", "input_type_ids")}
    for kind in ("module", "keras"):
        loaded = tf.saved_model.load(sys.argv[2] + "/" + kind)
        out = loaded.signatures["serving_default"](**feed)
        np.save(sys.argv[2] + "/" + kind + "_out.npy", list(out.values())[0].numpy())
""")


@pytest.mark.slow  # ~17 s: a fresh interpreter loads TensorFlow
def test_export_and_reload_in_fresh_process(tmp_path):
    keras.utils.set_random_seed(1)
    encoder = bert.build_encoder(TINY)
    ids = np.array([[2, 5, 7, 9, 0, 0], [3, 4, 0, 0, 0, 0]], np.int32)
    mask = (ids > 0).astype(np.int32)
    feed = _inputs(ids, mask)
    expected = encoder(feed, training=False).numpy()

    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec])
    def serve(input_word_ids, input_mask, input_type_ids):
        return {"sequence_output": encoder({"input_word_ids": input_word_ids, "input_mask": input_mask,
                                            "input_type_ids": input_type_ids}, training=False)}

    module = tf.Module()
    module.encoder = encoder
    tf.saved_model.save(module, str(tmp_path / "module"), signatures={"serving_default": serve})
    encoder.save(str(tmp_path / "keras"), save_format="tf")

    np.savez(tmp_path / "inputs.npz", **feed)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH="")
    proc = subprocess.run([sys.executable, "-c", _RELOAD, str(tmp_path / "inputs.npz"), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for kind in ("module", "keras"):
        np.testing.assert_allclose(np.load(tmp_path / f"{kind}_out.npy"), expected, atol=1e-6, rtol=0)

    # In-process, the Keras SavedModel also reloads as a Keras model (custom layers are registered).
    reloaded = keras.models.load_model(str(tmp_path / "keras"))
    np.testing.assert_allclose(reloaded(feed, training=False).numpy(), expected, atol=1e-6, rtol=0)
