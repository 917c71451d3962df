"""The Transform module's tokenization against the reference WordPiece tokenizer (Hugging Face `tokenizers`,
the engine of BertTokenizerFast), through real TF Transform runs and through the exported graph alone."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tokenizers
from tensorflow.core.protobuf import saved_model_pb2

from components import features
from components.module_files import preprocessing, wordpiece
from components.settings.data import DataSettings, component_config, read_config
from components.settings.transform import TransformSettings
from pipeline.data.assets import ensure_checkpoint
from support import FIXTURES
from support.tft_run import analyze_and_transform

FIXTURE = FIXTURES / "minilm_l6_reference.json"
MAX_LEN = 128

TRICKY = {
    "accents": "Café déjà vu, naïve résumé",
    "punctuation": "Wait...what?!—really",
    "chinese": "我喜欢这部电影",
    "japanese": "東京タワーに行きました。とても楽しかった！ Tokyo tower",
    "emoji": "great movie 😀🎬",
    "korean": "이 영화 정말 재미있어요",
    "empty": "",
    "whitespace": " \t\n\u3000 ",
    "long": " ".join(["unbelievably overhyped, underwhelming sequel"] * 40),
    "control": ("tab\there\nnew\r\nline\x00null\x07bell\x0bvt\x85nel zero\u200bwidth soft\u00adhyphen "
                "\ufeffbom \ue000pua"),
    "compatibility": "ﬁne ＦＵＬＬ ｗｉｄｔｈ x²³ ½ ℃ ™ ｶﾀｶﾅ",
    "casing": "ΣΑΣ İstanbul ß ẞ ǅ Ångström ŉ",
    "special_tokens": "[CLS] text [SEP]mid[MASK] [cls] [UNK]",
    "symbols": "$100 @user #tag ~`^|<>{}[]\\ 50% don't",
    "scripts": "Привет, МИР! مرحبا हिन्दी ไทยภาษาไทยภาษาไทยภาษาไทยภาษาไทยภาษา",
    "long_words": "a" * 101 + " " + "я" * 80 + " " + "b" * 100,
}
LABELS = ["pos", "neg", "pos", "neu", "pos", "neg", "pos", "neg"]
DOMAIN = ("neu", "neg", "pos")  # the schema's order: neither sorted nor by frequency


@pytest.fixture(scope="module")
def ckpt() -> Path:
    return ensure_checkpoint()


@pytest.fixture(scope="module")
def vocab_file(ckpt) -> str:
    return str(ckpt / "vocab.txt")


def reference(ckpt, max_length):
    tok = tokenizers.Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(length=max_length, pad_id=0, pad_token=features.PAD)
    return tok


@pytest.fixture(scope="module")
def tricky_run(tmp_path_factory, vocab_file):
    """Labelled tricky texts, scalar string features, max_seq_length 128."""
    texts = list(TRICKY.values())
    rows = [{"text": t, "label": LABELS[i % len(LABELS)]} for i, t in enumerate(texts)]
    spec = {"text": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.string)}
    data = DataSettings("text", "label", label_names=DOMAIN, vocab_file=vocab_file, lower_case=True)
    out, out_dir = analyze_and_transform(tmp_path_factory.mktemp("tricky"), rows, spec, data,
                                         TransformSettings(max_seq_length=MAX_LEN))
    return rows, out, out_dir


def assert_matches_reference(texts, word_ids, masks, ref, names=None):
    for i, text in enumerate(texts):
        enc = ref.encode(text)
        what = names[i] if names else repr(text)
        assert list(word_ids[i]) == enc.ids, f"{what}: ids differ\n tf  {list(word_ids[i])}\n ref {enc.ids}"
        assert list(masks[i]) == enc.attention_mask, f"{what}: mask differs"


@pytest.mark.slow  # tricky_run: a TF Transform run
def test_tricky_texts_match_reference(tricky_run, ckpt):
    rows, out, _ = tricky_run
    assert len(out) == len(rows)
    assert_matches_reference([r["text"] for r in rows], [r[features.WORD_IDS_KEY] for r in out],
                             [r[features.MASK_KEY] for r in out], reference(ckpt, MAX_LEN), names=list(TRICKY))
    for r in out:
        assert r[features.TYPE_IDS_KEY] == [0] * MAX_LEN


@pytest.mark.slow  # tricky_run: a TF Transform run
def test_long_text_is_truncated(tricky_run, ckpt):
    rows, out, _ = tricky_run
    untruncated = tokenizers.Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    untruncated.no_truncation()
    untruncated.no_padding()
    assert len(untruncated.encode(TRICKY["long"]).ids) > 2 * MAX_LEN
    got = out[list(TRICKY).index("long")]
    assert got[features.MASK_KEY] == [1] * MAX_LEN
    assert got[features.WORD_IDS_KEY][0] == 101 and got[features.WORD_IDS_KEY][-1] == 102


@pytest.mark.slow  # tricky_run: a TF Transform run
def test_label_ids_follow_the_label_domain_not_frequency(tricky_run):
    rows, out, _ = tricky_run
    assert [r[features.LABEL_ID_KEY] for r in out] == [DOMAIN.index(r["label"]) for r in rows]
    counts = {label: [r["label"] for r in rows].count(label) for label in DOMAIN}
    assert max(counts, key=counts.get) == "pos" and DOMAIN.index("pos") == 2  # the most frequent keeps its place


@pytest.mark.slow  # tricky_run: a TF Transform run
def test_transformed_schema_is_fixed_length(tricky_run):
    _, _, out_dir = tricky_run
    spec = tft.TFTransformOutput(str(out_dir)).transformed_feature_spec()
    for key in (features.WORD_IDS_KEY, features.MASK_KEY, features.TYPE_IDS_KEY):
        assert spec[key] == tf.io.FixedLenFeature([MAX_LEN], tf.int64)
    assert spec[features.LABEL_ID_KEY] == tf.io.FixedLenFeature([], tf.int64)
    assert spec[features.RAW_TEXT_KEY] == tf.io.FixedLenFeature([], tf.string)  # passed through for the warm-up
    rows, out, _ = tricky_run
    assert [r[features.RAW_TEXT_KEY] for r in out] == [r["text"] for r in rows]


@pytest.mark.slow  # a TF Transform run of its own
def test_fixture_cases_without_label(tmp_path, vocab_file):
    """The recorded reference cases at max_length 32; `[1]`-shaped text and no label column."""
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    max_len = fixture["max_length"]
    rows = [{"text": [c["text"]]} for c in fixture["cases"]]
    spec = {"text": tf.io.FixedLenFeature([1], tf.string)}
    data = DataSettings("text", "label", vocab_file=vocab_file, lower_case=True)
    out, _ = analyze_and_transform(tmp_path, rows, spec, data, TransformSettings(max_seq_length=max_len))
    assert all(features.LABEL_ID_KEY not in r for r in out)
    for case, row in zip(fixture["cases"], out):
        assert row[features.WORD_IDS_KEY] == case["input_ids"], repr(case["text"])
        assert row[features.MASK_KEY] == case["attention_mask"], repr(case["text"])
        assert row[features.TYPE_IDS_KEY] == [0] * max_len


SERVE_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    import tensorflow_text  # registers the tf-text ops the graph uses
    loaded = tf.saved_model.load(sys.argv[1])
    fn = loaded.transform_fn
    texts = json.loads(sys.stdin.read())
    n = len(texts)
    # `row` is the test's own pass-through column; the label is needed only by the label_id output.
    inputs = {"text": tf.constant(texts), "label": tf.constant(["pos"] * n), "row": tf.range(n, dtype=tf.int64)}
    out = fn(inputs)
    print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if v.dtype != tf.string}))
    assert "tensorflow_transform" not in sys.modules and "components" not in sys.modules
""")


@pytest.mark.slow  # tricky_run: a TF Transform run
def test_exported_graph_serves_without_project_code(tricky_run, ckpt, vocab_file, tmp_path):
    _, _, out_dir = tricky_run
    saved = out_dir / "transform_fn"
    texts = list(TRICKY.values())
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH="")
    proc = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, str(saved)], input=json.dumps(texts),
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert_matches_reference(texts, out[features.WORD_IDS_KEY], out[features.MASK_KEY],
                             reference(ckpt, MAX_LEN), names=list(TRICKY))
    assert out[features.TYPE_IDS_KEY] == [[0] * MAX_LEN] * len(texts)
    assert out[features.LABEL_ID_KEY] == [DOMAIN.index("pos")] * len(texts)  # "pos": its place in the label domain

    # The vocabulary travels with the graph.
    assets = saved / "assets"
    copies = [p for p in assets.rglob("*") if p.is_file() and p.read_bytes() == Path(vocab_file).read_bytes()]
    assert copies, f"no copy of {vocab_file} under {assets}: {sorted(p.name for p in assets.rglob('*'))}"


@pytest.mark.slow  # tricky_run: a TF Transform run
def test_exported_graph_has_no_python_ops(tricky_run):
    _, _, out_dir = tricky_run
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((out_dir / "transform_fn" / "saved_model.pb").read_bytes())
    ops = set()
    for meta in proto.meta_graphs:
        ops.update(n.op for n in meta.graph_def.node)
        for fn in meta.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
    assert "WordpieceTokenizeWithOffsets" in ops
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}, sorted(ops)


# --- the plain-TF helpers, without a Beam pipeline ---

@pytest.fixture(scope="module")
def tokenizer(vocab_file):
    return wordpiece.build_tokenizer(vocab_file, lower_case=True)


def _tokenize(tokenizer, texts, max_len):
    out = wordpiece.tokenize(tf.constant(texts, tf.string), tokenizer, max_len,
                                 tokenizer.cls_id, tokenizer.sep_id)
    return {k: v.numpy().tolist() for k, v in out.items() if v.dtype != tf.string}


@pytest.mark.parametrize("max_len", [2, 3, 16, 512])
def test_tokenize_lengths(tokenizer, ckpt, max_len):
    texts = list(TRICKY.values())
    out = _tokenize(tokenizer, texts, max_len)
    assert_matches_reference(texts, out[features.WORD_IDS_KEY], out[features.MASK_KEY],
                             reference(ckpt, max_len), names=list(TRICKY))


def _code_point_blocks():
    blocks = [(0x20, 0x5FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1FFF),
              (0x2000, 0x2DFF), (0x2E80, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFFFD),
              (0x1F000, 0x1FAFF), (0x20000, 0x20100), (0x2F800, 0x2FA1F), (0xE0000, 0xE007F)]
    return [cp for lo, hi in blocks for cp in range(lo, hi + 1)]


def test_every_character_of_common_blocks(tokenizer, ckpt):
    """Each character alone, inside a word and after a space: exercises cleaning, accents, casing,
    punctuation and CJK rules character by character."""
    ref = reference(ckpt, 16)
    texts = [f"{chr(cp)}a{chr(cp)}b {chr(cp)}" for cp in _code_point_blocks()]
    got = _tokenize(tokenizer, texts, 16)[features.WORD_IDS_KEY]
    bad = [(hex(ord(t[0])), g, e.ids) for t, g, e in zip(texts, got, ref.encode_batch(texts)) if g != e.ids]
    assert not bad, f"{len(bad)} characters differ, e.g. {bad[:5]}"


def test_cased_vocabulary_settings(vocab_file):
    """lower_case=False: no lower-casing or accent stripping, the rest of BertNormalizer unchanged."""
    vocab = {t: i for i, t in enumerate(Path(vocab_file).read_text(encoding="utf-8").splitlines())}
    ref = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token=features.UNK))
    ref.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=False)
    ref.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    ref.add_special_tokens(list(features.SPECIAL_TOKENS))
    tok = wordpiece.build_tokenizer(vocab_file, lower_case=False)
    texts = list(TRICKY.values()) + ["Hello World", "café", "naïve"]
    got = tok.tokenize(tf.constant(texts)).to_list()
    for text, ids in zip(texts, got):
        assert ids == ref.encode(text, add_special_tokens=False).ids, repr(text)


@pytest.mark.parametrize("make", [
    lambda: tf.constant([["a b"], ["c"]]),
    lambda: tf.constant(["a b", "c"]),
    lambda: tf.sparse.from_dense(tf.constant([["a b"], [""]])),  # missing value in row 2
    lambda: tf.SparseTensor(indices=[[0, 0], [0, 1]], values=["a b", "x"], dense_shape=[2, 2]),
    lambda: tf.ragged.constant([["a b"], []]),
])
def test_to_dense_strings(make):
    got = preprocessing.to_dense_strings(make()).numpy().tolist()
    assert len(got) == 2 and got[0] in (b"a b", b"a b x")
    assert got[1] in (b"c", b"")


def test_to_dense_strings_formats_numbers():
    got = preprocessing.to_dense_strings(tf.constant([[3], [10]], tf.int64)).numpy().tolist()
    assert got == [b"3", b"10"]


def test_invalid_utf8_is_replaced_then_dropped(tokenizer, ckpt):
    raw = [b"bad \xff\xfebytes ok", b"\xc3(x"]
    got = _tokenize(tokenizer, raw, 16)[features.WORD_IDS_KEY]
    ref = reference(ckpt, 16)
    assert got == [ref.encode(r.decode("utf-8", errors="replace")).ids for r in raw]


def test_transform_settings_round_trip(vocab_file):
    s = TransformSettings(max_seq_length=64)
    data = DataSettings("review", "stars", label_names=("1", "2"), vocab_file=vocab_file, lower_case=False)
    config = component_config(s, data)
    assert json.loads(json.dumps(config)) == config
    assert read_config(TransformSettings, config) == (s, data)
    with pytest.raises(ValueError, match="Transform custom_config has missing key"):
        read_config(TransformSettings, {"text_key": "x"})
    with pytest.raises(ValueError, match="Transform custom_config holds the data settings too: .*missing key"):
        read_config(TransformSettings, s.to_custom_config())


# --- head+tail truncation (--truncation head_tail) ---

def _expected_cut(row, budget, truncation):
    if len(row) <= budget:
        return row
    if truncation == "head":
        return row[:budget]
    head = budget // 4
    return row[:head] + row[len(row) - (budget - head):]


@pytest.mark.parametrize("truncation", ["head", "head_tail"])
@pytest.mark.parametrize("budget", [0, 1, 2, 3, 5, 8, 13])
def test_truncate_keeps_the_head_or_the_head_and_tail(truncation, budget):
    # rows under, at and over the budget, an empty one, all in one batch
    rows = [[], [7], list(range(10, 10 + budget)), list(range(100, 100 + budget + 1)), list(range(200, 240))]
    ids = tf.ragged.constant(rows, dtype=tf.int64)
    got = wordpiece.truncate(ids, budget, truncation).to_list()
    assert got == [_expected_cut(r, budget, truncation) for r in rows]


def test_truncate_refuses_an_unknown_strategy():
    with pytest.raises(ValueError, match="truncation must be one of"):
        wordpiece.truncate(tf.ragged.constant([[1]], dtype=tf.int64), 4, "middle")


def test_head_tail_keeps_the_special_tokens_and_both_ends(tokenizer, ckpt):
    untruncated = tokenizers.Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    untruncated.no_truncation()
    untruncated.no_padding()
    texts = [TRICKY["long"], "short and sweet", TRICKY["empty"]]
    out = wordpiece.tokenize(tf.constant(texts), tokenizer, 16, tokenizer.cls_id, tokenizer.sep_id, "head_tail")
    ids, mask = out[features.WORD_IDS_KEY].numpy().tolist(), out[features.MASK_KEY].numpy().tolist()
    for text, row, row_mask in zip(texts, ids, mask):
        pieces = untruncated.encode(text).ids[1:-1]  # without its [CLS] and [SEP]
        kept = _expected_cut(pieces, 14, "head_tail")
        assert row == [101, *kept, 102] + [0] * (14 - len(kept)), text
        assert row_mask == [1] * (len(kept) + 2) + [0] * (14 - len(kept))
    assert len(untruncated.encode(TRICKY["long"]).ids) > 16  # the long text was cut: 3 from its head, 11 its tail


@pytest.mark.slow  # a TF Transform run of its own, and its exported graph in a fresh process
def test_head_tail_in_the_transform_graph_serves_the_same_ids(tmp_path, vocab_file, tokenizer):
    """The Transform run's ids with --truncation head_tail are the ids the exported graph (what serving runs)
    gives, in a fresh interpreter without the project's code."""
    texts = list(TRICKY.values())
    rows = [{"text": t, "label": "pos"} for t in texts]
    spec = {"text": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.string)}
    data = DataSettings("text", "label", label_names=DOMAIN, vocab_file=vocab_file, lower_case=True)
    out, out_dir = analyze_and_transform(tmp_path / "run", rows, spec, data,
                                         TransformSettings(max_seq_length=32, truncation="head_tail"))
    expected = _tokenize_cut(tokenizer, texts, 32)
    assert [r[features.WORD_IDS_KEY] for r in out] == expected
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH="")
    proc = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, str(out_dir / "transform_fn")], input=json.dumps(texts),
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])[features.WORD_IDS_KEY] == expected


def _tokenize_cut(tokenizer, texts, max_len):
    out = wordpiece.tokenize(tf.constant(texts, tf.string), tokenizer, max_len, tokenizer.cls_id, tokenizer.sep_id,
                             "head_tail")
    return out[features.WORD_IDS_KEY].numpy().tolist()
