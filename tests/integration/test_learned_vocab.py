"""Training from scratch in any language: Transform learns a WordPiece vocabulary from the training split.

On a small Korean corpus (support/korean.py), through a real TF Transform run: the learned vocabulary, the ids against
the reference WordPiece tokenizer over that vocabulary, the exported graph alone in a fresh process; and the command
line's vocabulary flags. The whole pipeline with a learned vocabulary is tests/e2e/test_korean_run.py.
"""

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

from components import features
from components.module_files import learned_vocab, wordpiece
from components.settings.data import DataSettings, component_config, read_config
from components.settings.transform import TransformSettings
from support import run_local
from support.korean import COMMON_WORDS, LABELS, UNK_ID, korean_corpus, nfd
from support.tft_run import analyze_and_transform


def reference_tokenizer(vocab: list[str]) -> tokenizers.Tokenizer:
    """Hugging Face's BERT WordPiece pipeline (uncased normalizer, BERT pre-tokenizer) over the learned vocab."""
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(
        {t: i for i, t in enumerate(vocab)}, unk_token=features.UNK, max_input_chars_per_word=100))
    tok.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(list(features.SPECIAL_TOKENS))
    return tok


# --- the learner alone ---

def test_learn_wordpiece_vocab_layout_and_determinism():
    counts = [("영화", 30), ("재미있어요", 12), ("movie", 9), ("movies", 4), ("[UNK]", 50), ("x", 1)]
    vocab = learned_vocab.learn_wordpiece_vocab(counts, vocab_size=200)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == len(set(vocab)) <= 200
    assert "영화" in vocab and "movie" in vocab and "##s" in vocab
    assert vocab.count("[UNK]") == 1  # specials written in the text are not learned again
    # Every character alone and as a continuation: no word of known characters becomes [UNK].
    for char in "영화재미있어요movix":
        assert char in vocab and f"##{char}" in vocab, char
    assert learned_vocab.learn_wordpiece_vocab(list(reversed(counts)), vocab_size=200) == vocab
    assert learned_vocab.learn_wordpiece_vocab([], vocab_size=200) == list(features.SPECIAL_TOKENS)


def test_learned_vocab_settings():
    s, data = TransformSettings(learned_vocab_size=500), DataSettings(vocab_mode="learn")
    config = component_config(s, data)
    assert json.loads(json.dumps(config)) == config
    assert read_config(TransformSettings, config) == (s, data)
    assert TransformSettings().learned_vocab_size == 8000
    for bad in (dict(vocab_file="v.txt", vocab_mode="learn"), dict(vocab_file="", vocab_mode="checkpoint"),
                dict(vocab_file="", vocab_mode="bpe")):
        with pytest.raises(ValueError):
            DataSettings(**bad)
    with pytest.raises(ValueError):
        TransformSettings(learned_vocab_size=5)


# --- a real TF Transform run ---

MAX_LEN = 32


@pytest.fixture(scope="module")
def korean_run(tmp_path_factory):
    rows = korean_corpus(200, seed=1)
    # A few rows exercise specials written in the text, Latin script and an empty text.
    rows += [{"text": "[CLS] 영화 [SEP] 최고 MOVIE", "label": LABELS[0]}, {"text": "", "label": LABELS[1]}]
    spec = {"text": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.string)}
    data = DataSettings("text", "label", label_names=LABELS, vocab_mode="learn")
    out, out_dir = analyze_and_transform(tmp_path_factory.mktemp("korean"), rows, spec, data,
                                         TransformSettings(max_seq_length=MAX_LEN))
    vocab_file = tft.TFTransformOutput(str(out_dir)).vocabulary_file_by_name(features.LEARNED_VOCAB_NAME)
    assert vocab_file, f"no {features.LEARNED_VOCAB_NAME} among the assets of {out_dir}"
    vocab = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    return rows, out, out_dir, vocab


@pytest.mark.slow  # korean_run: a TF Transform run, ~20 s
def test_learned_vocabulary_is_an_asset_with_specials_first(korean_run):
    _, _, out_dir, vocab = korean_run
    assert vocab[:5] == list(features.SPECIAL_TOKENS)
    assert len(vocab) == len(set(vocab)) <= TransformSettings.learned_vocab_size
    # Frequent words are whole tokens (as the normalization spells them: Hangul as conjoining jamo).
    missing = [w for w in COMMON_WORDS if nfd(w) not in vocab]
    assert not missing, f"common words not learned whole: {missing}"
    assert (out_dir / "transform_fn" / "assets" / features.LEARNED_VOCAB_NAME).is_file()


@pytest.mark.slow  # korean_run: a TF Transform run, ~20 s
def test_common_hangul_words_are_not_unknown(korean_run):
    rows, out, _, vocab = korean_run
    index = {t: i for i, t in enumerate(vocab)}
    for row, got in zip(rows, out):
        n = sum(got[features.MASK_KEY])
        ids = got[features.WORD_IDS_KEY]
        assert ids[0] == index[features.CLS] and ids[n - 1] == index[features.SEP], row["text"]
        assert UNK_ID not in ids[:n], row["text"]
    first = rows[0]["text"].rstrip(".!?")
    assert out[0][features.WORD_IDS_KEY][1:1 + len(first.split())] == [index[nfd(w)] for w in first.split()]


@pytest.mark.slow  # korean_run: a TF Transform run, ~20 s
def test_ids_match_reference_wordpiece_over_the_learned_vocabulary(korean_run):
    rows, out, _, vocab = korean_run
    ref = reference_tokenizer(vocab)
    # Unseen text too: new words made of jamo seen in training are split into subwords, never [UNK].
    unseen = "한국 영화는 재미있었어요 감독님 배우들 연기가 좋았어요 이야기는 지루했어요"
    assert set(nfd(unseen.replace(" ", ""))) <= set(nfd("".join(COMMON_WORDS)))
    for text, got in [(r["text"], o) for r, o in zip(rows, out)]:
        n = sum(got[features.MASK_KEY])
        assert got[features.WORD_IDS_KEY][1:n - 1] == ref.encode(text, add_special_tokens=False).ids[:MAX_LEN - 2]
    tokenizer = wordpiece.BertWordpieceTokenizer(str(_vocab_path(korean_run)), learned=True)
    ids = tokenizer.tokenize(tf.constant([unseen])).to_list()[0]
    assert ids == ref.encode(unseen, add_special_tokens=False).ids
    assert UNK_ID not in ids and len(ids) > len(unseen.split())


def _vocab_path(korean_run) -> Path:
    _, _, out_dir, _ = korean_run
    return out_dir / "transform_fn" / "assets" / features.LEARNED_VOCAB_NAME


SERVE_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the tf-text ops the graph uses
    loaded = tf.saved_model.load(sys.argv[1])
    texts = json.loads(sys.stdin.read())
    n = len(texts)
    out = loaded.transform_fn({"text": tf.constant(texts), "label": tf.constant(["긍정"] * n),
                               "row": tf.range(n, dtype=tf.int64)})
    print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if v.dtype != tf.string}))
    assert "tensorflow_transform" not in sys.modules and "components" not in sys.modules
""")


@pytest.mark.slow  # korean_run: a TF Transform run, ~20 s
def test_exported_graph_serves_the_learned_vocabulary_without_project_code(korean_run, tmp_path):
    rows, out, out_dir, _ = korean_run
    texts = [r["text"] for r in rows[:20]] + [rows[-2]["text"]]
    expected = out[:20] + [out[-2]]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH="")
    proc = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, str(out_dir / "transform_fn")],
                          input=json.dumps(texts), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    assert served[features.WORD_IDS_KEY] == [e[features.WORD_IDS_KEY] for e in expected]
    assert served[features.MASK_KEY] == [e[features.MASK_KEY] for e in expected]


# --- the command line ---

def test_help_explains_the_vocabulary_flags():
    proc = run_local("--help", timeout=120)
    assert proc.returncode == 0
    assert "--vocab {checkpoint,learn}" in proc.stdout and "--vocab-size" in proc.stdout


def test_pretrained_checkpoint_with_learned_vocab_is_refused(tmp_path):
    proc = run_local("--pretrained", tmp_path, "--vocab", "learn", "--pipeline-root", tmp_path / "root", timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--vocab learn" in errors[0] and "own vocabulary" in errors[0], proc.stderr
    assert not (tmp_path / "root").exists()
