"""`--max-seq-length auto`: the sequence length that fits the data, chosen before the run.

Transform pads every text to one length, fixed in the transform graph, so it is chosen from the training texts
before anything runs: the shortest multiple of 32 that holds COVERAGE of them whole (in WordPiece tokens, with
[CLS] and [SEP]), capped by the encoder's position embeddings, and shortened when training at it would take longer
than --time-budget minutes on this machine (pipeline/cli/training_cost.py). Length bucketing
(components/module_files/training_loop.py) keeps short texts cheap whatever the length. With a vocabulary still to be
learned, lengths are estimated from word counts."""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

COVERAGE = 0.98  # the share of training texts kept whole
MULTIPLE = 32
SAMPLE = 5000  # texts tokenized to choose (a deterministic sample of larger data)
WORDPIECES_PER_WORD = 1.3  # estimate without a vocabulary (a learned one splits rare words into a few pieces)


def token_counts(texts: Sequence[str], vocab_file: str, lower_case: bool) -> Sequence[int]:
    """WordPiece tokens per text with [CLS] and [SEP], tokenized as Transform will (the same tokenizer); without a
    vocabulary file (one to be learned), an estimate from the words."""
    import tensorflow as tf

    from components.module_files.wordpiece import BertPreTokenizer, build_tokenizer

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


def sample_counts(texts: Sequence[str], vocab_file: str, lower_case: bool) -> List[int]:
    """The sorted token counts of the texts, or of a deterministic sample of SAMPLE of them."""
    sample = list(texts)
    if len(sample) > SAMPLE:
        sample = random.Random(0).sample(sample, SAMPLE)
    return sorted(token_counts(sample, vocab_file, lower_case))


def covering(counts: Sequence[int], cap: int) -> int:
    """The shortest multiple of MULTIPLE (at most `cap`) that holds COVERAGE of these sorted counts whole."""
    if not counts:
        return min(128, cap)
    needed = counts[min(len(counts) - 1, math.ceil(COVERAGE * len(counts)) - 1)]
    return min(cap, max(MULTIPLE, math.ceil(needed / MULTIPLE) * MULTIPLE))


def choose(texts: Sequence[str], vocab_file: str, lower_case: bool, cap: int) -> Tuple[int, int, int]:
    """(length, texts that will be cut, texts looked at), without a time budget."""
    counts = sample_counts(texts, vocab_file, lower_case)
    length = covering(counts, cap)
    return length, cut_by(counts, length), len(counts)


def cut_by(counts: Sequence[int], length: int) -> int:
    return sum(1 for c in counts if c > length)


def _training_texts(args: argparse.Namespace, data_root: Path, splits):
    """(the training texts, whether they are a train/ folder's, the eval/ folder's number of texts)."""
    from components.ingestion.csv_files import read_rows, split_files, training_files

    texts = [row[0] for path in training_files(data_root, splits) for row in
             read_rows(path, args.text_key, args.label_key)]
    eval_texts = sum(len(read_rows(path, args.text_key, args.label_key))
                     for path in split_files(data_root, splits).get("eval", []))
    return texts, bool(splits), eval_texts


def given_length(args: argparse.Namespace, data_root: Path, splits, model, state: Path) -> Optional[str]:
    """--max-seq-length N, which is never capped: a line saying so before the run when its training would take
    longer than --time-budget, else None (a run that fits even with every text N tokens long on a slow machine is
    neither tokenized nor probed)."""
    from pipeline.cli import training_cost

    length = args.max_seq_length
    texts, train_folder, eval_texts = _training_texts(args, data_root, splits)
    timings = str(state / training_cost.TIMINGS_FILE)
    longest = [length] * min(len(texts), SAMPLE)
    if not training_cost.for_run(args, model, longest, len(texts), train_folder, eval_texts, timings).over(length):
        return None
    counts = sample_counts(texts, model.vocab_file, model.lower_case)
    cost = training_cost.for_run(args, model, counts, len(texts), train_folder, eval_texts, timings)
    seconds = cost.over(length, probe=True)
    if seconds is None:
        return None
    return (f"--max-seq-length {length}: training will take about {training_cost.duration(seconds)} on this "
            f"machine{cost.timed()}, over --time-budget {cost.budget_minutes:g} min; it runs as asked "
            "(--max-seq-length auto stays within the budget, and fewer --epochs or --max-examples make it shorter).")


def auto_length(args: argparse.Namespace, data_root: Path, splits, model, state: Path) -> Tuple[int, str]:
    """--max-seq-length auto for a local run: the length chosen from the training texts (`model`: the
    pipeline/cli/model_choice.py ModelChoice) within --time-budget, and a line saying so; `state` is the pipeline
    root's local folder, where the timings of this machine are kept."""
    from pipeline.cli import training_cost

    texts, train_folder, eval_texts = _training_texts(args, data_root, splits)
    counts = sample_counts(texts, model.vocab_file, model.lower_case)
    wanted = covering(counts, model.positions)
    cost = training_cost.for_run(args, model, counts, len(texts), train_folder, eval_texts,
                                 str(state / training_cost.TIMINGS_FILE))
    choice = cost.choose(wanted, MULTIPLE)
    length, cut, seen = choice.length, cut_by(counts, choice.length), len(counts)
    whole = f"{1 - cut_by(counts, wanted) / max(seen, 1):.0%} of them"
    estimated = " (estimated from word counts: the vocabulary is learned during the run)" \
        if not model.vocab_file else ""
    aside = ("" if train_folder else
             "; the texts are the rows of every split, as the training split is drawn from them during the run")
    return length, (f"--max-seq-length auto: {length} tokens, which holds {seen - cut} of "
                    f"{counted_texts(seen, len(texts), train_folder)} whole and cuts {cut} "
                    f"({cut / max(seen, 1):.1%}){estimated}{aside}{cost.said(choice, wanted, whole)}; pass "
                    f"--max-seq-length N to choose.")


def counted_texts(seen: int, total: int, train_folder: bool) -> str:
    """What the auto length looked at, said as it is: the training split's texts when the data has a train/ folder,
    else every row; all of them, or a sample."""
    kind = "training texts" if train_folder else "texts"
    return f"the {total} {kind}" if seen == total else f"a sample of {seen} of the {total} {kind}"
