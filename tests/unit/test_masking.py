"""Tests of components/model/masking.py on real text: the Rotten Tomatoes reviews tokenized by the project's tokenizer
(components/module_files/preprocessing.py) with the packaged checkpoint's vocabulary, masked as a tf.data map would."""

import csv

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from components import features
from components.model import hf_checkpoint, masking
from components.module_files import wordpiece
from pipeline.data.assets import ensure_checkpoint, ensure_dataset

MAX_SEQ_LENGTH = 128
RATE = 0.15


@pytest.fixture(scope="module")
def vocab():
    return hf_checkpoint.read_vocab(ensure_checkpoint())


@pytest.fixture(scope="module")
def corpus(vocab):
    """All Rotten Tomatoes reviews as BERT inputs ([CLS] pieces [SEP], padded to 128): about 330,000 real tokens."""
    path = ensure_dataset("rotten_tomatoes") / "data.csv"
    with open(path, encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    tokenizer = wordpiece.build_tokenizer(str(ensure_checkpoint() / "vocab.txt"))
    inputs = wordpiece.tokenize(tf.constant(texts), tokenizer, MAX_SEQ_LENGTH, tokenizer.cls_id, tokenizer.sep_id)
    return {k: v.numpy() for k, v in inputs.items()}


def _special_ids(vocab):
    return np.array([vocab.index(t) for t in features.SPECIAL_TOKENS])


def _mask_all(masker, corpus, seed):
    """Masks the corpus in batches through a tf.data map (as the pretraining input pipeline does)."""
    tf.random.set_seed(seed)
    ds = tf.data.Dataset.from_tensor_slices(corpus).batch(2048).map(masker)
    parts = [{k: v.numpy() for k, v in batch.items()} for batch in ds]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _eligible(corpus, vocab):
    ids, mask = corpus[features.WORD_IDS_KEY], corpus[features.MASK_KEY]
    return (mask == 1) & ~np.isin(ids, _special_ids(vocab))


def _selected(out):
    """[batch, seq] bool: the positions chosen (weight 1)."""
    chosen = np.zeros(out[features.WORD_IDS_KEY].shape, bool)
    rows, slots = np.nonzero(out[masking.MASKED_WEIGHTS_KEY] == 1.0)
    chosen[rows, out[masking.MASKED_POSITIONS_KEY][rows, slots]] = True
    return chosen


def _check_layout_and_replacements(out, corpus, vocab):
    """Common invariants, and the shares of [MASK] / random / unchanged among the chosen tokens."""
    original, masked = corpus[features.WORD_IDS_KEY], out[features.WORD_IDS_KEY]
    positions, labels, weights = (out[k] for k in (masking.MASKED_POSITIONS_KEY, masking.MASKED_IDS_KEY,
                                                    masking.MASKED_WEIGHTS_KEY))
    # Fixed layout: real predictions first (ascending, distinct positions), then zero padding with weight 0.
    assert set(np.unique(weights)) <= {0.0, 1.0}
    real = weights == 1.0
    assert np.all(np.diff(real.astype(int), axis=1) <= 0), "padding slots must follow the real ones"
    assert np.all(positions[~real] == 0) and np.all(labels[~real] == 0)
    for row in range(len(positions)):
        p = positions[row][real[row]]
        assert np.all(np.diff(p) > 0)
    # Labels are the original ids at the chosen positions; padding and special tokens are never chosen.
    rows, slots = np.nonzero(real)
    at = positions[rows, slots]
    np.testing.assert_array_equal(labels[rows, slots], original[rows, at])
    assert np.all(corpus[features.MASK_KEY][rows, at] == 1), "padding was chosen"
    assert not np.isin(labels[rows, slots], _special_ids(vocab)).any(), "a special token was chosen"
    # Only chosen positions change; the mask and everything else are passed through.
    chosen = _selected(out)
    np.testing.assert_array_equal(masked[~chosen], original[~chosen])
    np.testing.assert_array_equal(out[features.MASK_KEY], corpus[features.MASK_KEY])
    np.testing.assert_array_equal(out[features.TYPE_IDS_KEY], corpus[features.TYPE_IDS_KEY])

    replaced = masked[rows, at]
    mask_id = vocab.index(features.MASK)
    to_mask = np.mean(replaced == mask_id)
    unchanged = np.mean(replaced == labels[rows, slots])
    random = 1.0 - to_mask - unchanged
    return to_mask, random, unchanged


def _check_rates(out, corpus, vocab):
    """(eligible count, chosen count, rate, [MASK] / random / unchanged shares) after checking them against the
    stated tolerances: only eligible tokens chosen, 15% +- 0.5 points, 80/10/10 +- 1.5 points."""
    eligible, chosen = _eligible(corpus, vocab), _selected(out)
    assert not (chosen & ~eligible).any()
    rate = chosen.sum() / eligible.sum()
    assert abs(rate - RATE) <= 0.005, rate
    shares = _check_layout_and_replacements(out, corpus, vocab)
    assert all(abs(share - want) <= 0.015 for share, want in zip(shares, (0.8, 0.1, 0.1))), shares
    return eligible.sum(), chosen.sum(), rate, shares


@pytest.mark.slow  # statistics over the whole corpus (~330,000 tokens)
def test_token_masking_statistics(corpus, vocab):
    masker = masking.MlmMasker.from_vocab(vocab, selection_rate=RATE,
                                          max_predictions=masking.max_predictions_for(MAX_SEQ_LENGTH, RATE))
    # [UNK] is special here: never chosen, not counted as eligible.
    assert vocab.index(features.UNK) in masker.unselectable_ids
    out = _mask_all(masker, corpus, seed=1)
    eligible, chosen, rate, (to_mask, random, unchanged) = _check_rates(out, corpus, vocab)
    assert eligible >= 100_000
    print(f"\ntoken masking: {eligible} eligible tokens, {chosen} chosen ({rate:.4f}); "
          f"[MASK] {to_mask:.4f}, random {random:.4f}, unchanged {unchanged:.4f}")


@pytest.mark.slow  # statistics over the whole corpus (~330,000 tokens)
def test_stock_selector_over_selects_short_texts(corpus, vocab):
    """Why masking.py replaces RandomItemSelector's count: ceil(rate x n) on review-length rows is well above 15%."""
    ids = tf.RaggedTensor.from_tensor(corpus[features.WORD_IDS_KEY][:1000],
                                      lengths=corpus[features.MASK_KEY][:1000].sum(axis=1))
    stock = tf_text.RandomItemSelector(max_selections_per_batch=1000, selection_rate=RATE,
                                       unselectable_ids=[int(i) for i in _special_ids(vocab)])
    chosen = stock.get_selection_mask(ids, axis=1)
    eligible = stock.get_selectable(ids, axis=1)
    rate = tf.reduce_sum(tf.cast(chosen.flat_values, tf.float32)) / tf.reduce_sum(
        tf.cast(eligible.flat_values, tf.float32))
    assert float(rate) > RATE + 0.01, float(rate)
    print(f"\ntf_text.RandomItemSelector (ceil): {float(rate):.4f} of eligible tokens")


def _word_ids(ids, mask, vocab):
    """[batch, seq] -> word index per token (a word starts at every non-'##' token), -1 on padding."""
    continuation = np.array([t.startswith("##") for t in vocab])[ids]
    starts = (~continuation | (np.arange(ids.shape[1]) == 0)) & (mask == 1)
    words = np.cumsum(starts, axis=1) - 1
    return np.where(mask == 1, words, -1)


@pytest.mark.slow  # statistics over the whole corpus (~330,000 tokens)
def test_whole_word_masking_chooses_whole_words(corpus, vocab):
    masker = masking.MlmMasker.from_vocab(vocab, selection_rate=RATE, whole_word=True,
                                          max_predictions=masking.max_predictions_for(MAX_SEQ_LENGTH, RATE) + 4)
    out = _mask_all(masker, corpus, seed=2)
    ids, mask = corpus[features.WORD_IDS_KEY], corpus[features.MASK_KEY]
    words = _word_ids(ids, mask, vocab)
    chosen = _selected(out)
    # Per (row, word): the number of its pieces chosen is 0 or all of them.
    row_index = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
    real = mask == 1
    key = row_index[real].astype(np.int64) * (MAX_SEQ_LENGTH + 1) + words[real]
    pieces = np.bincount(key)
    picked = np.bincount(key, weights=chosen[real].astype(float))
    used = pieces > 0
    assert np.all((picked[used] == 0) | (picked[used] == pieces[used])), "a word was chosen partially"
    multi_piece_chosen = np.sum((pieces[used] > 1) & (picked[used] == pieces[used]))
    assert multi_piece_chosen > 1000  # the corpus has many multi-piece words; they are chosen whole

    eligible, n_chosen, rate, (to_mask, random, unchanged) = _check_rates(out, corpus, vocab)
    print(f"\nwhole-word masking: {n_chosen} of {eligible} eligible tokens ({rate:.4f}), "
          f"{multi_piece_chosen} multi-piece words chosen whole; [MASK] {to_mask:.4f}, random {random:.4f}, "
          f"unchanged {unchanged:.4f}")


def test_cap_in_tokens_never_cuts_a_word(vocab):
    """With every word chosen (rate 1) but room for 3 tokens, rows get whole words only, at most 3 tokens."""
    tokenizer = wordpiece.build_tokenizer(str(ensure_checkpoint() / "vocab.txt"))
    ids = tokenizer.tokenize(tf.constant(["unbelievably overwrought melodrama about a dog",
                                          "a thoroughly unremarkable film", ""]))
    masker = masking.MlmMasker.from_vocab(vocab, selection_rate=1.0, max_predictions=3, whole_word=True)
    tf.random.set_seed(3)
    for _ in range(20):
        out = {k: v.numpy() for k, v in masker.mask_ragged(ids).items()}
        for row, tokens in enumerate(ids.numpy()):
            n = int(out[masking.MASKED_WEIGHTS_KEY][row].sum())
            assert n <= 3
            chosen = set(out[masking.MASKED_POSITIONS_KEY][row][:n].tolist())
            word_of = _word_ids(np.asarray(tokens)[None], np.ones((1, len(tokens)), int), vocab)[0] if len(
                tokens) else []
            for w in set(word_of[list(chosen)]) if chosen else ():
                assert chosen >= set(np.nonzero(word_of == w)[0].tolist()), (row, tokens, chosen)
        # The ragged path builds the mask and pads to the longest row.
        assert out[features.MASK_KEY].tolist()[2] == [0] * out[features.MASK_KEY].shape[1]
        assert out[features.MASK_KEY][0].sum() == len(ids[0])


def test_masking_runs_in_a_graph_with_ragged_input(vocab):
    masker = masking.MlmMasker.from_vocab(vocab)
    ids = tf.ragged.constant([[2023, 2003, 1037, 3231], [7592]], tf.int64)
    spec = tf.RaggedTensorSpec([None, None], tf.int64, ragged_rank=1)
    out = tf.function(masker.mask_ragged, input_signature=[spec])(ids)
    assert out[masking.MASKED_POSITIONS_KEY].shape.as_list() == [2, masker.max_predictions]
    assert out[masking.MASKED_IDS_KEY].dtype == tf.int64 and out[masking.MASKED_POSITIONS_KEY].dtype == tf.int32


@pytest.mark.parametrize("settings, message", [
    ({"selection_rate": 0.0}, "selection_rate"),
    ({"mask_token_rate": 0.95, "random_token_rate": 0.1}, "sum of at most 1"),
    ({"max_predictions": 0}, "max_predictions"),
])
def test_bad_settings_fail_in_python(vocab, settings, message):
    with pytest.raises(ValueError, match=message):
        masking.MlmMasker.from_vocab(vocab, **settings)


def test_vocabulary_requirements():
    with pytest.raises(ValueError, match=r"no \[MASK\] token"):
        masking.MlmMasker.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])
    with pytest.raises(ValueError, match="continuation pieces"):
        masking.MlmMasker(10, 4, [0, 1, 2, 3], whole_word=True)
