"""Training from scratch in any language, end to end: `pipeline/run_local.py --pretrained none --vocab learn` on a small
Korean corpus (support/korean.py); the pushed model maps common Hangul words to real tokens, in a fresh process with
nothing of the project, TFX or TF Transform. The learned vocabulary itself is tests/integration/test_learned_vocab.py's.
"""

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import tensorflow as tf

from components import features
from support import refusal, run_local
from support.korean import LABELS, NEGATIVE, NEUTRAL, POSITIVE, UNK_ID, korean_corpus, nfd
from support.retraining import assert_actionable, assert_short

E2E_CHECK = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the tf-text ops the graph uses
    model_dir, texts = sys.argv[1], json.loads(sys.stdin.read())
    m = tf.saved_model.load(model_dir)

    def example(text):
        f = {"text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
             "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=["긍정".encode()]))}
        return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()

    feats = m.signatures["transform_features"](examples=tf.constant([example(t) for t in texts]))
    out = m.signatures["serving_default"](text=tf.constant(texts))
    print(json.dumps({"ids": feats["input_word_ids"].numpy().tolist(), "mask": feats["input_mask"].numpy().tolist(),
                      "labels": [l.decode() for l in out["label"].numpy()],
                      "mods": sorted(k for k in sys.modules if k.split(".")[0] in ("components", "tfx",
                                                                                  "tensorflow_transform"))}))
""")


def korean_reviews(tmp_path: Path) -> Path:
    """A folder with support/korean.py's corpus as one CSV file."""
    data = tmp_path / "korean_reviews"
    data.mkdir()
    with open(data / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(korean_corpus(400, seed=2))
    return data


def test_korean_end_to_end_with_a_learned_vocabulary(tmp_path):
    data = korean_reviews(tmp_path)
    summary_path = tmp_path / "summary.json"
    proc = run_local("--data-root", data, "--pretrained", "none", "--vocab", "learn", "--vocab-size", "2000",
                     "--model-size", "tiny", "--max-seq-length", "32", "--epochs", "2", "--batch-size", "32",
                     "--learning-rate", "1e-3", "--min-accuracy", "0",
                     "--pipeline-root", tmp_path / "root", "--serving-dir", tmp_path / "serving",
                     "--summary-json", summary_path)
    assert proc.returncode == 0, f"run_local failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    summary = json.loads(summary_path.read_text())
    assert summary["components"]["Transform"]["state"] == "COMPLETE"
    assert summary["blessed"] is True and summary["pushed"] is True
    pushed = Path(summary["pushed_dir"])
    vocab = (pushed / "assets" / features.LEARNED_VOCAB_NAME).read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == list(features.SPECIAL_TOKENS) and len(vocab) <= 2000

    texts = [r["text"] for r in korean_corpus(50, seed=3)] + [" ".join(NEUTRAL), " ".join(POSITIVE + NEGATIVE)]
    proc = subprocess.run([sys.executable, "-c", E2E_CHECK, str(pushed)], input=json.dumps(texts),
                          capture_output=True, text=True, env=dict(os.environ, TF_USE_LEGACY_KERAS="1"),
                          cwd="/", timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["mods"] == []  # nothing of the project, TFX or TF Transform was needed
    real = [i for ids, mask in zip(result["ids"], result["mask"]) for i, m in zip(ids[1:], mask[1:]) if m]
    real = [i for i in real if i != features.SPECIAL_TOKENS.index(features.SEP)]
    assert len(real) > 5 * len(texts)
    unk_share = real.count(UNK_ID) / len(real)
    assert unk_share < 0.05, f"{unk_share:.1%} of the tokens are [UNK]"
    # Every common word is one token of its own, and the encoder's embedding has one row per token.
    for ids, words in zip(result["ids"][-2:], (NEUTRAL, POSITIVE + NEGATIVE)):
        assert ids[1:1 + len(words)] == [vocab.index(nfd(w)) for w in words]
    shapes = tf.train.list_variables(str(pushed / "variables" / "variables"))
    assert [s for name, s in shapes if name.startswith("model/variables/") and s[0] == len(vocab)], shapes
    assert set(result["labels"]) <= set(LABELS)


def test_korean_at_the_default_flags_is_refused_with_the_flag_that_makes_it_train(tmp_path):
    """The packaged English checkpoint's vocabulary barely covers Hangul: the text gate refuses, and says to learn a
    vocabulary with --pretrained none, which the test above follows to a pushed model."""
    data = korean_reviews(tmp_path)
    proc = run_local("--data-root", data, "--pipeline-root", tmp_path / "root", "--serving-dir", tmp_path / "serving",
                     "--summary-json", tmp_path / "summary.json")
    assert proc.returncode == 2, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    block = refusal(proc.stderr)
    assert "LOW_WORD_COVERAGE" in block or "UNKNOWN_TOKENS" in block, block
    assert "the checkpoint's vocabulary does not cover these texts" in block
    assert "what to do: pass --pretrained none" in block and "Training from scratch, in any language" in block
    assert_short(block)
    assert_actionable(block)  # the flags, files and docs section it names exist
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["pushed"] is False and "Trainer" not in summary["components"]
