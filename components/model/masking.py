"""Masking for masked-language-model (MLM) training, inside the TensorFlow graph (usable in a `tf.data` map).

BERT's recipe: choose `selection_rate` (15%) of the real tokens of each sequence; of the chosen, replace 80% by
`[MASK]`, 10% by a random token and leave 10% unchanged; predict the original token at the chosen positions only.
`MlmMasker` does this with tensorflow-text's masking utilities (`tf_text.mask_language_model`, a
`tf_text.RandomItemSelector` and a `tf_text.MaskValuesChooser`) and returns a fixed layout a Keras model takes:

* `input_word_ids` [batch, seq] – the ids with the chosen positions replaced (same dtype as the input ids),
* `input_mask` [batch, seq] – 1 on real tokens (passed through for dense input, built for ragged input),
* `masked_lm_positions` [batch, max_predictions] int32 – chosen positions in ascending order, then 0,
* `masked_lm_ids` [batch, max_predictions] – the original ids there (the labels), then 0,
* `masked_lm_weights` [batch, max_predictions] float32 – 1.0 for a real prediction, 0.0 for padding.

Never chosen: padding, and the ids in `unselectable_ids` — by default (`from_vocab`) every special token of the
vocabulary: [CLS] and [SEP] (always at the same places, nothing to learn), [PAD], [MASK] (a user may type it; its
"original" would be the mask itself) and [UNK]: predicting [UNK] teaches nothing about the language, and the word
behind it is unknown, so it counts neither as a target nor in the 15%; it stays in the input as context. The rate
is a share of the *eligible* tokens (real tokens that are not special).

Whole-word masking (`whole_word=True`): a word's `##` continuation pieces are chosen together with the word. The ids
are grouped into ragged [batch, (words), (pieces)], on which tensorflow-text's selector chooses whole words; the 15%
stays a share of tokens (pieces) in expectation, because each word of a row is equally likely to be chosen. Each
chosen piece then independently gets [MASK] / a random token / itself (tensorflow-text's chooser works per piece).
Random tokens are drawn uniformly from the whole vocabulary, as BERT's original data generator and Hugging Face's
collator do.

Two deliberate departures from tensorflow-text's `RandomItemSelector`, whose `get_selection_mask` this module's
selector replaces (it keeps the base class's `get_selectable`, i.e. `unselectable_ids`):

* How many: the stock selector takes ceil(rate x eligible) per row, which over-selects short texts (a review of
  21 eligible tokens gets 4, i.e. 19%; on Rotten Tomatoes reviews it chose 16.85% instead of 15%).
  Here the count is rounded stochastically, floor(rate x eligible + u) with u ~ U[0, 1), so its expectation is
  exactly rate x eligible for every row length.
* Capped in tokens: at most `max_predictions` tokens per row are chosen (the fixed layout has that many slots).
  Items are taken in random order while their pieces fit, so a chosen word is never cut. The stock selector caps
  items (words), which for whole-word masking could overflow the layout. Choose `max_predictions` at least
  ceil(rate x longest sequence) (`max_predictions_for`) so the cap does not lower the rate.

It also chooses with a vectorised random ranking instead of a per-row `map_fn`, which keeps a `tf.data` map cheap.

Randomness comes from TensorFlow's stateful random ops: `tf.random.set_seed` makes a run repeatable.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Optional, Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from components import features

# Keys of the masked-LM features (the names BERT's original pre-training data used).
MASKED_POSITIONS_KEY = "masked_lm_positions"
MASKED_IDS_KEY = "masked_lm_ids"
MASKED_WEIGHTS_KEY = "masked_lm_weights"

CONTINUATION_PREFIX = "##"


def max_predictions_for(max_seq_length: int, selection_rate: float = 0.15) -> int:
    """The smallest max_predictions with which the cap never binds for token-level masking of sequences of up to
    `max_seq_length` tokens (stochastic rounding chooses at most ceil(rate x eligible))."""
    return max(1, math.ceil(max_seq_length * selection_rate))


class TokenBudgetSelector(tf_text.RandomItemSelector):
    """tensorflow-text's random item selector with an unbiased count and a cap in tokens (module docstring).

    Works on ragged [batch, (tokens)] or [batch, (words), (pieces)] ids at axis 1; returns the boolean selection
    [batch, (items)] that `tf_text.mask_language_model` expects.
    """

    def __init__(self, max_tokens_per_row: int, selection_rate: float,
                 unselectable_ids: Optional[Sequence[int]] = None):
        super().__init__(max_selections_per_batch=max_tokens_per_row, selection_rate=selection_rate,
                         unselectable_ids=list(unselectable_ids or []))

    def get_selection_mask(self, input_ids: tf.RaggedTensor, axis: int = 1) -> tf.RaggedTensor:
        if axis != 1:
            raise ValueError(f"TokenBudgetSelector selects along axis 1 only, got axis={axis}.")
        selectable = self.get_selectable(input_ids, axis)  # [batch, (items)] bool
        if input_ids.ragged_rank == 2:  # [batch, (words), (pieces)]: an item costs its pieces
            sizes = input_ids.row_lengths(axis=2)
        elif input_ids.ragged_rank == 1:
            sizes = tf.ones_like(selectable, tf.int64)
        else:
            raise ValueError(f"expected ragged rank 1 or 2 ids, got ragged rank {input_ids.ragged_rank}.")

        # Stochastic rounding of the number of items to choose per row: floor(rate * n + u), expectation rate * n.
        n_items = tf.cast(tf.reduce_sum(tf.cast(selectable, tf.int32), axis=1), tf.float32)
        u = tf.random.uniform(tf.shape(n_items), dtype=tf.float32)
        count = tf.cast(tf.floor(n_items * self.selection_rate + u), tf.int64)

        # A random rank per item; unselectable items rank after all selectable ones.
        keys = tf.where(selectable.flat_values, tf.random.uniform(tf.shape(selectable.flat_values)), 2.0)
        dense_keys = selectable.with_flat_values(keys).to_tensor(default_value=3.0)
        order = tf.argsort(dense_keys, axis=1, stable=True)
        rank = tf.cast(tf.argsort(order, axis=1, stable=True), tf.int64)
        # Tokens used by items up to and including this one, in rank order: the cap in tokens.
        dense_sizes = sizes.to_tensor(default_value=0)
        used_in_order = tf.cumsum(tf.gather(dense_sizes, order, batch_dims=1), axis=1)
        used = tf.gather(used_in_order, rank, batch_dims=1)
        chosen = (rank < count[:, tf.newaxis]) & (used <= self.max_selections_per_batch)
        return tf.RaggedTensor.from_tensor(chosen, lengths=selectable.row_lengths())


class MlmMasker:
    """Masks batches of token ids for masked-LM training (see the module docstring for the recipe and layout).

    `vocab_size` bounds the random replacement tokens; `mask_id` is [MASK]'s id; `unselectable_ids` are never chosen;
    `continuation_ids` (needed for `whole_word`) are the ids of `##` pieces. `from_vocab` derives all of them from a
    vocabulary. Rates are checked here, in Python, so a bad setting fails before any graph runs.
    """

    def __init__(self, vocab_size: int, mask_id: int, unselectable_ids: Iterable[int], *,
                 selection_rate: float = 0.15, max_predictions: int = 20, mask_token_rate: float = 0.8,
                 random_token_rate: float = 0.1, whole_word: bool = False,
                 continuation_ids: Iterable[int] = ()):
        if not 0.0 < selection_rate <= 1.0:
            raise ValueError(f"masking selection_rate must be in (0, 1], got {selection_rate!r}.")
        if not (0.0 <= mask_token_rate and 0.0 <= random_token_rate and mask_token_rate + random_token_rate <= 1.0):
            raise ValueError(f"masking mask_token_rate ({mask_token_rate!r}) and random_token_rate "
                             f"({random_token_rate!r}) must be non-negative with a sum of at most 1.")
        if isinstance(max_predictions, bool) or not isinstance(max_predictions, int) or max_predictions < 1:
            raise ValueError(f"masking max_predictions must be a positive integer, got {max_predictions!r}.")
        if not 0 <= mask_id < vocab_size:
            raise ValueError(f"mask id {mask_id} is outside the vocabulary of {vocab_size} tokens.")
        self.vocab_size = int(vocab_size)
        self.mask_id = int(mask_id)
        self.unselectable_ids = tuple(sorted({int(i) for i in unselectable_ids}))
        self.selection_rate = float(selection_rate)
        self.max_predictions = int(max_predictions)
        self.mask_token_rate = float(mask_token_rate)
        self.random_token_rate = float(random_token_rate)
        self.whole_word = bool(whole_word)
        continuation = sorted({int(i) for i in continuation_ids})
        if self.whole_word and not continuation:
            raise ValueError("whole-word masking needs the ids of the '##' continuation pieces (use from_vocab).")
        flags = [False] * self.vocab_size
        for i in continuation:
            flags[i] = True
        self._is_continuation = tf.constant(flags, tf.bool)
        self._selector = TokenBudgetSelector(self.max_predictions, self.selection_rate, self.unselectable_ids)
        self._chooser = tf_text.MaskValuesChooser(self.vocab_size, self.mask_id, self.mask_token_rate,
                                                  self.random_token_rate)

    @classmethod
    def from_vocab(cls, vocab: Sequence[str], **settings) -> "MlmMasker":
        """A masker for a WordPiece vocabulary (list of tokens, line number = id): [MASK] from it, every special
        token of `features.SPECIAL_TOKENS` it contains unselectable, `##` tokens as continuation pieces."""
        index = {token: i for i, token in enumerate(vocab)}
        if features.MASK not in index:
            raise ValueError(f"the vocabulary has no {features.MASK} token, which masked-LM training needs.")
        special = [index[t] for t in features.SPECIAL_TOKENS if t in index]
        continuation = [i for i, t in enumerate(vocab) if t.startswith(CONTINUATION_PREFIX)]
        return cls(len(vocab), index[features.MASK], special, continuation_ids=continuation, **settings)

    # ---------------------------------------------------------------------------------------------------------

    def _group_words(self, ids: tf.RaggedTensor) -> tf.RaggedTensor:
        """[batch, (tokens)] -> [batch, (words), (pieces)]: a word starts at every non-'##' token and at row starts
        (so a word never spans two rows)."""
        flat = ids.flat_values
        continuation = tf.gather(self._is_continuation,
                                 tf.clip_by_value(tf.cast(flat, tf.int32), 0, self.vocab_size - 1))
        index = tf.range(tf.size(flat, out_type=tf.int64))
        row_start = tf.equal(index, tf.gather(ids.row_starts(), ids.value_rowids()))
        starts = tf.logical_or(tf.logical_not(continuation), row_start)
        words = tf.RaggedTensor.from_row_starts(flat, tf.where(starts)[:, 0])
        words_per_row = tf.math.unsorted_segment_sum(tf.cast(starts, tf.int64), ids.value_rowids(), ids.nrows())
        return tf.RaggedTensor.from_row_lengths(words, words_per_row)

    def mask_ragged(self, ids: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        """Ragged [batch, (tokens)] ids (no padding) -> the features of the module docstring, padded to the longest
        row."""
        if ids.ragged_rank != 1:
            raise ValueError(f"expected [batch, (tokens)] ids, got ragged rank {ids.ragged_rank}.")
        items = self._group_words(ids) if self.whole_word else ids
        masked, positions, labels = tf_text.mask_language_model(items, self._selector, self._chooser, axis=1)
        return {
            features.WORD_IDS_KEY: masked.to_tensor(default_value=0),
            features.MASK_KEY: tf.ones_like(masked).to_tensor(default_value=0),
            **self._fixed_layout(positions, labels),
        }

    def mask_dense(self, word_ids: tf.Tensor, input_mask: tf.Tensor) -> dict[str, tf.Tensor]:
        """Right-padded [batch, seq] ids and mask (1 = real token, as `preprocessing.to_bert_inputs` makes) -> the
        features of the module docstring; padding is never chosen and keeps its values."""
        word_ids = tf.convert_to_tensor(word_ids)
        input_mask = tf.convert_to_tensor(input_mask)
        lengths = tf.reduce_sum(tf.cast(input_mask != 0, tf.int64), axis=1)
        ids = tf.RaggedTensor.from_tensor(word_ids, lengths=lengths)
        items = self._group_words(ids) if self.whole_word else ids
        masked, positions, labels = tf_text.mask_language_model(items, self._selector, self._chooser, axis=1)
        real = tf.sequence_mask(lengths, tf.shape(word_ids, out_type=tf.int64)[1])
        masked_dense = masked.to_tensor(default_value=0, shape=tf.shape(word_ids, out_type=tf.int64))
        return {
            features.WORD_IDS_KEY: tf.where(real, masked_dense, word_ids),
            features.MASK_KEY: input_mask,
            **self._fixed_layout(positions, labels),
        }

    def __call__(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """A `tf.data` map over BERT input dicts (`input_word_ids`, `input_mask`, optional `input_type_ids`, other
        keys passed through): the same dict with the word ids masked plus the three masked-LM features."""
        out = dict(inputs)
        out.update(self.mask_dense(inputs[features.WORD_IDS_KEY], inputs[features.MASK_KEY]))
        return out

    def _fixed_layout(self, positions: tf.RaggedTensor, labels: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        """Ragged [batch, (chosen)] -> [batch, max_predictions], zero-padded, with 1.0/0.0 weights."""
        shape = tf.stack([positions.nrows(), tf.constant(self.max_predictions, tf.int64)])
        return {
            MASKED_POSITIONS_KEY: tf.cast(positions, tf.int32).to_tensor(default_value=0, shape=shape),
            MASKED_IDS_KEY: labels.to_tensor(default_value=0, shape=shape),
            MASKED_WEIGHTS_KEY: tf.ones_like(labels, tf.float32).to_tensor(default_value=0.0, shape=shape),
        }


__all__ = ["MASKED_IDS_KEY", "MASKED_POSITIONS_KEY", "MASKED_WEIGHTS_KEY", "MlmMasker", "TokenBudgetSelector",
           "max_predictions_for"]
