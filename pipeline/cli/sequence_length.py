"""`--max-seq-length auto`: the sequence length that fits the data, chosen before the run.

Transform pads every text to one length, fixed in the transform graph, so it is chosen from the training texts
before anything runs: the shortest multiple of 32 that holds COVERAGE of them whole (in WordPiece tokens, with
[CLS] and [SEP]), capped by the encoder's position embeddings. Length bucketing (components/modules/trainer.py) keeps
short texts cheap whatever the length. With a vocabulary still to be learned, lengths are estimated from word counts."""

from __future__ import annotations

import math
import random
from typing import Sequence, Tuple

COVERAGE = 0.98  # the share of training texts kept whole
MULTIPLE = 32
SAMPLE = 5000  # texts tokenized to choose (a deterministic sample of larger data)
WORDPIECES_PER_WORD = 1.3  # estimate without a vocabulary (a learned one splits rare words into a few pieces)


def token_counts(texts: Sequence[str], vocab_file: str, lower_case: bool) -> Sequence[int]:
    """WordPiece tokens per text with [CLS] and [SEP], tokenized as Transform will (the same tokenizer); without a
    vocabulary file (one to be learned), an estimate from the words."""
    import tensorflow as tf

    from components.modules.wordpiece import BertPreTokenizer, build_tokenizer

    counts = []
    tokenizer = build_tokenizer(vocab_file, lower_case) if vocab_file else BertPreTokenizer(lower_case=lower_case)
    for start in range(0, len(texts), 512):
        batch = tf.constant(list(texts[start:start + 512]))
        if vocab_file:
            lengths = tokenizer.tokenize(batch).row_lengths()
            counts += [int(n) + 2 for n in lengths.numpy()]
        else:
            words = tokenizer.split_words(batch).row_lengths()
            counts += [math.ceil(int(n) * WORDPIECES_PER_WORD) + 2 for n in words.numpy()]
    return counts


def choose(texts: Sequence[str], vocab_file: str, lower_case: bool, cap: int) -> Tuple[int, int, int]:
    """(length, texts that will be cut, texts looked at)."""
    sample = list(texts)
    if len(sample) > SAMPLE:
        sample = random.Random(0).sample(sample, SAMPLE)
    counts = sorted(token_counts(sample, vocab_file, lower_case))
    if not counts:
        return min(128, cap), 0, 0
    needed = counts[min(len(counts) - 1, math.ceil(COVERAGE * len(counts)) - 1)]
    length = min(cap, max(MULTIPLE, math.ceil(needed / MULTIPLE) * MULTIPLE))
    return length, sum(1 for c in counts if c > length), len(counts)
