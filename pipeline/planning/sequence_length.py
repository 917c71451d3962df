"""The run planned before it starts: the sequence length, and what training at it will cost on this machine.

Transform pads every text to one length, fixed in the transform graph, so `--max-seq-length auto` chooses it from the
training texts before anything runs: the shortest multiple of 32 that holds COVERAGE of them whole (in WordPiece
tokens, with [CLS] and [SEP], tokenized as Transform will; estimated from word counts when the vocabulary is still to
be learned), capped by the encoder's position embeddings, and shortened when training at it would take longer than
`--time-budget` minutes on this machine. A given `--max-seq-length` is never shortened; a note says so before the run
when it is over the budget.

The cost of a step grows with the length its batch is padded to: the dense layers with the length, attention with its
square. Length bucketing (components/module_files/training_loop.py) pads each batch only to its bucket, so the cost
of an epoch follows from the training texts' token counts: the batches of each bucket, each at its padded length. The
seconds of a step at a length come from a short timed probe of the run's own encoder on this machine (random weights
and ids: the speed does not depend on them) at two short lengths, fitted as a fixed part plus a part proportional to
the multiply-adds of a BERT layer at that length and extrapolated to longer ones (benchmarks/results.md compares the
estimate with the Trainer's measured time). A run so small that it would fit the budget even at a slow machine's speed
is not probed. The probe's timings are kept in the pipeline root's local state folder (TIMINGS_FILE): a later run of
the pipeline reuses them, so that the same data gets the same length (a new length would retrain from Transform on)
and no second probe is paid; deleting the file times again.

The cost model is pipeline/planning/training_cost.py. With it, the only part of the front door (pipeline/cli/) that
runs TensorFlow: the tokenizer and the probe, imported when they
run. It reads no flags: the front door hands it the texts (`Texts`) and what the run will train (`Workload`).
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import List, Optional, Sequence, Tuple, Union

from pipeline.planning.training_cost import (
    EVAL_COST,
    Encoder,
    RunCost,
    StepTime,
    duration,
    kept_timings,
    probe,
    training_seconds,
)

COVERAGE = 0.98  # the share of training texts kept whole
MULTIPLE = 32
SAMPLE = 5000  # texts tokenized to choose (a deterministic sample of larger data)
WORDPIECES_PER_WORD = 1.3  # estimate without a vocabulary (a learned one splits rare words into a few pieces)


# ----------------------------------------------------------------------------------------------------------------
# The texts' lengths

def token_counts(texts: Sequence[Union[str, Tuple[str, str]]], vocab_file: str, lower_case: bool) -> Sequence[int]:
    """WordPiece tokens per text with [CLS] and [SEP], tokenized as Transform will (the same tokenizer); without a
    vocabulary file (one to be learned), an estimate from the words. A pair of texts (a tuple) counts both texts
    and its three special tokens ([CLS] a [SEP] b [SEP]): the length a pair asks for is the pair's together."""
    import tensorflow as tf

    from components.module_files.wordpiece import BertPreTokenizer, build_tokenizer

    if texts and isinstance(texts[0], tuple):
        columns = [token_counts([pair[i] for pair in texts], vocab_file, lower_case) for i in range(len(texts[0]))]
        return [sum(n - 2 for n in ns) + len(ns) + 1 for ns in zip(*columns)]
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


def cut_by(counts: Sequence[int], length: int) -> int:
    return sum(1 for c in counts if c > length)


def counted_texts(seen: int, total: int, train_folder: bool) -> str:
    """What the auto length looked at, said as it is: the training split's texts when the data has a train/ folder,
    else every row; all of them, or a sample."""
    kind = "training texts" if train_folder else "texts"
    return f"the {total} {kind}" if seen == total else f"a sample of {seen} of the {total} {kind}"


# ----------------------------------------------------------------------------------------------------------------
# The plan

@dataclasses.dataclass(frozen=True)
class Texts:
    """The texts a run trains on, as the front door read them."""

    # the train/ folder's texts, or every row when the data is split by hash; a pair's two texts as a tuple
    training: Sequence[Union[str, Tuple[str, str]]]
    from_train_folder: bool
    eval_count: int  # the eval/ folder's texts (0 when split by hash)


@dataclasses.dataclass(frozen=True)
class Workload:
    """What the run will train, as its flags say: the encoder, the epochs of each stage, the batch."""

    batch_size: int
    epochs: int
    pretrain_epochs: int
    student_layers: int
    distill_epochs: int
    train_steps: Optional[int]  # --train-steps (None: whole epochs)
    precision: str  # --precision
    truncation: str  # --truncation (the note names head_tail when a cut text loses its end)
    budget_minutes: float  # --time-budget (0: no limit)
    checkpoint_config: Optional[dict]  # the checkpoint's config.json (None: a --model-size encoder from scratch)
    model_size: str
    vocab_size: int  # the learned vocabulary's size, from scratch (it matters little to the speed)


def _bert_config(workload: Workload):
    from components.model import bert

    if workload.checkpoint_config is not None:
        return bert.BertConfig.from_hf_config(workload.checkpoint_config)
    return bert.preset_config(workload.model_size, vocab_size=workload.vocab_size)


def cost_of(workload: Workload, counts: Sequence[int], texts: Texts, timings_file: str) -> RunCost:
    """The cost of this run's training by length: its training texts (`counts`, a sample of them; without split
    folders the training split is HASH_BUCKETS' share of them), the Trainer's, the masked-LM stage's and the
    distillation stage's epochs (a student's step costs its share of the teacher's layers, after one forward pass of
    the teacher over the data), the batch size, --train-steps, and the encoder; the probe's timings are kept in
    `timings_file`."""
    from components.ingestion.csv_files import HASH_BUCKETS

    shares = dict(HASH_BUCKETS)
    total = len(texts.training)
    train_texts = total if texts.from_train_folder else total * shares["train"] / sum(shares.values())
    eval_share = (texts.eval_count / max(train_texts, 1)) if texts.from_train_folder else \
        shares["eval"] / shares["train"]
    batch_size = workload.batch_size
    passes = workload.epochs + workload.pretrain_epochs
    try:
        config = _bert_config(workload)
    except ValueError:  # not a config this encoder builds: the Trainer says so; here there is nothing to estimate
        return RunCost(0.0, lambda step, length: 0.0, lambda length: 0.0, lambda: (lambda length: 0.0, ""))
    encoder = Encoder(config.num_layers, config.hidden_size, config.intermediate_size)
    if 0 < workload.student_layers < encoder.layers:
        passes += workload.distill_epochs * workload.student_layers / encoder.layers + EVAL_COST

    def estimate_with(step, length):
        return training_seconds(counts, length, batch_size, passes, eval_share, step,
                                scale=train_texts / max(len(counts), 1), max_steps=workload.train_steps)

    def measure():
        import tensorflow as tf

        from components.model import precision

        compute = precision.choose(workload.precision, len(tf.config.list_physical_devices("GPU")))
        key = f"{encoder.layers}x{encoder.hidden}x{encoder.intermediate} batch {batch_size} {compute}"
        timings, kept = kept_timings(timings_file, key, lambda: probe(config, batch_size, compute))
        return StepTime.fitted(timings, encoder, batch_size), (timings_file if kept else "")

    return RunCost(workload.budget_minutes, estimate_with, StepTime.slowest(encoder, batch_size), measure,
                   truncation=workload.truncation)


def given_length(length: int, texts: Texts, workload: Workload, vocab_file: str, lower_case: bool,
                 timings_file: str) -> Optional[str]:
    """--max-seq-length N, which is never capped: a line saying so before the run when its training would take
    longer than --time-budget, else None (a run that fits even with every text N tokens long on a slow machine is
    neither tokenized nor probed)."""
    longest = [length] * min(len(texts.training), SAMPLE)
    if not cost_of(workload, longest, texts, timings_file).over(length):
        return None
    cost = cost_of(workload, sample_counts(texts.training, vocab_file, lower_case), texts, timings_file)
    seconds = cost.over(length, probe=True)
    if seconds is None:
        return None
    return (f"--max-seq-length {length}: training will take about {duration(seconds)} on this "
            f"machine{cost.timed()}, over --time-budget {cost.budget_minutes:g} min; it runs as asked "
            "(--max-seq-length auto stays within the budget, and fewer --epochs or --max-examples make it shorter).")


def auto_length(texts: Texts, workload: Workload, vocab_file: str, lower_case: bool, positions: int,
                timings_file: str) -> Tuple[int, str]:
    """--max-seq-length auto: the length chosen from the training texts, at most `positions` (the encoder's position
    embeddings), within --time-budget, and a line saying so."""
    counts = sample_counts(texts.training, vocab_file, lower_case)
    wanted = covering(counts, positions)
    cost = cost_of(workload, counts, texts, timings_file)
    choice = cost.choose(wanted, MULTIPLE)
    length, cut, seen = choice.length, cut_by(counts, choice.length), len(counts)
    whole = f"{1 - cut_by(counts, wanted) / max(seen, 1):.0%} of them"
    estimated = " (estimated from word counts: the vocabulary is learned during the run)" if not vocab_file else ""
    aside = ("" if texts.from_train_folder else
             "; the texts are the rows of every split, as the training split is drawn from them during the run")
    return length, (f"--max-seq-length auto: {length} tokens, which holds {seen - cut} of "
                    f"{counted_texts(seen, len(texts.training), texts.from_train_folder)} whole and cuts {cut} "
                    f"({cut / max(seen, 1):.1%}){estimated}{aside}{cost.said(choice, wanted, whole)}; pass "
                    f"--max-seq-length N to choose.")
