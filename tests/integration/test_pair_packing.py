"""Two texts packed as one BERT input (components/module_files/pair_packing.py): parity with the reference
tokenizer's pair encoding (Hugging Face `tokenizers`, `longest_first`) on 301 real pairs, the cut rule on small
lengths, head_tail within each text's share, and an op set that stock TF Serving has."""

import json

import pytest
import tensorflow as tf

from components import features
from components.module_files import pair_packing, wordpiece
from components.release.serving_ops import load_serving_ops
from pipeline.data.assets import ensure_checkpoint
from support import FIXTURES

FIXTURE = json.loads((FIXTURES / "pair_encoding_reference.json").read_text())


@pytest.fixture(scope="module")
def tokenizer():
    return wordpiece.build_tokenizer(str(ensure_checkpoint() / "vocab.txt"), lower_case=True)


def pack(tokenizer, texts_a, texts_b, max_len, truncation="head"):
    return pair_packing.pack_pair(tokenizer.tokenize(tf.convert_to_tensor(texts_a, tf.string)),
                                  tokenizer.tokenize(tf.convert_to_tensor(texts_b, tf.string)), max_len,
                                  tokenizer.cls_id, tokenizer.sep_id, truncation)


def test_parity_with_the_reference_pair_encoding(tokenizer):
    """ids and token type ids equal the reference's for every case, padded with 0 to the length; the mask is 1 on the
    reference's ids. Every group of the fixture is there (fits, either text cut, both cut, ties, non-ASCII)."""
    cases = FIXTURE["cases"]
    max_len = FIXTURE["max_length"]
    assert len(cases) >= 300 and {c["group"] for c in cases} == set(FIXTURE["groups"])
    out = pack(tokenizer, [c["text_a"] for c in cases], [c["text_b"] for c in cases], max_len)
    ids = out[features.WORD_IDS_KEY].numpy().tolist()
    types = out[features.TYPE_IDS_KEY].numpy().tolist()
    mask = out[features.MASK_KEY].numpy().tolist()
    wrong = []
    for i, case in enumerate(cases):
        pad = [0] * (max_len - len(case["input_ids"]))
        if (ids[i], types[i], mask[i]) != (case["input_ids"] + pad, case["token_type_ids"] + pad,
                                           [1] * len(case["input_ids"]) + pad):
            wrong.append(f"{case['group']} ({case['tokens_a']}+{case['tokens_b']} tokens): {case['text_a'][:40]!r}")
    assert not wrong, f"{len(wrong)} of {len(cases)} pairs differ from the reference:\n" + "\n".join(wrong[:10])


@pytest.mark.parametrize("len_a, len_b, budget, kept", [
    (3, 4, 10, (3, 4)),  # fits
    (2, 20, 10, (2, 8)),  # the longer, second, text is cut to what the first leaves
    (20, 2, 10, (8, 2)),
    (7, 9, 11, (5, 6)),  # both over half: the shorter keeps half, the longer the odd token
    (9, 7, 11, (6, 5)),
    (8, 8, 11, (5, 6)),  # a tie: the second text gets the odd token (BERT's _truncate_seq_pair: 6, 5)
    (8, 8, 10, (5, 5)),
    (0, 30, 10, (0, 10)),  # an empty text leaves the other the whole budget
    (6, 5, 10, (5, 5)),
])
def test_pair_lengths(len_a, len_b, budget, kept):
    keep_a, keep_b = pair_packing.pair_lengths(tf.constant([len_a]), tf.constant([len_b]), budget)
    assert (int(keep_a[0]), int(keep_b[0])) == kept


def test_head_tail_cuts_within_each_texts_share():
    """With head_tail, longest_first decides how many tokens each text keeps, and each keeps the first quarter of its
    share and then its last tokens; a text that fits its share is kept whole."""
    a = tf.ragged.constant([list(range(10, 30))], tf.int64)  # 20 tokens
    b = tf.ragged.constant([[90, 91, 92]], tf.int64)
    out = pair_packing.pack_pair(a, b, 3 + 3 + 9, cls_id=1, sep_id=2, truncation="head_tail")
    # a keeps 9 = 2 of its head + 7 of its tail
    assert out[features.WORD_IDS_KEY].numpy().tolist() == [[1, 10, 11, 23, 24, 25, 26, 27, 28, 29, 2, 90, 91, 92, 2]]
    assert out[features.TYPE_IDS_KEY].numpy().tolist() == [[0] * 11 + [1] * 4]
    head = pair_packing.pack_pair(a, b, 15, cls_id=1, sep_id=2)
    assert head[features.WORD_IDS_KEY].numpy().tolist() == [[1, *range(10, 19), 2, 90, 91, 92, 2]]


def test_the_packing_graph_uses_only_stock_tf_serving_ops(tokenizer):
    """The ops of a graph that tokenizes and packs two texts are all in the pinned TF Serving image's list."""
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    def packed(a, b):
        return pack(tokenizer, a, b, 16, "head_tail")

    graph = packed.get_concrete_function().graph
    ops = {op.type for op in graph.get_operations()}
    for function in graph.as_graph_def().library.function:
        ops |= {node.op for node in function.node_def}
    stock = load_serving_ops().ops
    assert ops and not ops - stock, f"ops stock TF Serving lacks: {sorted(ops - stock)}"
    assert "RaggedRange" in ops  # the cut is in the graph, not folded away


@pytest.mark.slow  # two TF Transform runs
@pytest.mark.parametrize("vocab", ["checkpoint", "learn"])
def test_transform_packs_the_two_text_columns(tmp_path, vocab):
    """preprocessing_fn with --text-column question,passage: the Transform run's inputs are the reference's pair
    encoding (with the checkpoint's vocabulary), segment ids 0/1 in either vocabulary; the text counts are both
    texts', and each text's under its column; both raw texts pass through."""
    from components.settings.data import DataSettings
    from components.settings.transform import TransformSettings
    from support.tft_run import analyze_and_transform

    cases = FIXTURE["cases"][::30]
    rows = [{"question": c["text_a"], "passage": c["text_b"], "label": "yes"} for c in cases]
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("question", "passage", "label")}
    vocab_file = str(ensure_checkpoint() / "vocab.txt") if vocab == "checkpoint" else ""
    data = DataSettings("question,passage", "label", label_names=("no", "yes"), vocab_mode=vocab,
                        vocab_file=vocab_file)
    out, _ = analyze_and_transform(tmp_path, rows, spec, data,
                                   TransformSettings(max_seq_length=64, learned_vocab_size=200))
    for case, row in zip(cases, out):
        ids, types, mask = row[features.WORD_IDS_KEY], row[features.TYPE_IDS_KEY], row[features.MASK_KEY]
        if vocab == "checkpoint":
            pad = [0] * (64 - len(case["input_ids"]))
            assert (ids, types) == (case["input_ids"] + pad, case["token_type_ids"] + pad)
            assert mask == [1] * len(case["input_ids"]) + pad
            assert row[features.NUM_WORDPIECES_KEY] == case["tokens_a"] + case["tokens_b"]
            assert (row[features.column_stat_key(features.NUM_WORDPIECES_KEY, "question")],
                    row[features.column_stat_key(features.NUM_WORDPIECES_KEY, "passage")]) == (
                case["tokens_a"], case["tokens_b"])
        else:  # the learned vocabulary's [CLS] a [SEP] b [SEP]: ids 2 and 3
            sep = [i for i, t in enumerate(ids) if t == features.SPECIAL_TOKENS.index(features.SEP)]
            length = sum(mask)
            assert ids[0] == features.SPECIAL_TOKENS.index(features.CLS) and len(sep) == 2 and sep[1] == length - 1
            assert types == [0] * (sep[0] + 1) + [1] * (length - sep[0] - 1) + [0] * (64 - length)
        assert (row[features.RAW_TEXT_KEY], row[features.RAW_SECOND_TEXT_KEY]) == (case["text_a"], case["text_b"])
        assert row[features.LABEL_ID_KEY] == 1
