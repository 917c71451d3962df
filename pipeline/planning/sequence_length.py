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

The only part of the front door (pipeline/cli/) that runs TensorFlow: the tokenizer and the probe, imported when they
run. It reads no flags: the front door hands it the texts (`Texts`) and what the run will train (`Workload`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

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
# What training costs by length

DEFAULT_MINUTES = 30.0  # the flag's default: --time-budget
PROBE_LENGTHS = (64, 128)  # short enough to probe in seconds, far enough apart to fit the two parts
# Timed steps per length, after an untimed one that traces the function; the median. The steps run as the Trainer's
# do, in Keras' fit over a dataset (train_on_batch's steps took half as long again every other call).
PROBE_STEPS, PROBE_WARMUP = 4, 1
# Training FLOP/s below which no machine this runs on falls (a tenth of a 2-core laptop's measured speed with the
# default encoder): a run that fits the budget at this speed is not probed.
SLOWEST_FLOPS = 1e10
TIMINGS_FILE = "step_timings.json"  # in the pipeline root's local state folder
EVAL_COST = 1 / 3  # an example's evaluation (the forward pass) against its training step (forward and backward)


@dataclasses.dataclass(frozen=True)
class Encoder:
    """The shape of the encoder that matters for its speed."""

    layers: int
    hidden: int
    intermediate: int

    def multiply_adds(self, length: int) -> float:
        """Multiply-adds of one sequence through the encoder, forward: per token per layer the four attention
        projections (4 h^2), the feed-forward block (2 h i) and attention over the sequence (2 L h)."""
        return self.layers * length * (4 * self.hidden ** 2 + 2 * self.hidden * self.intermediate
                                       + 2 * length * self.hidden)


@dataclasses.dataclass(frozen=True)
class StepTime:
    """Seconds of a training step at a padded length: fixed + per_work x the multiply-adds of the batch."""

    fixed: float
    per_work: float
    encoder: Encoder
    batch_size: int

    def __call__(self, length: int) -> float:
        return self.fixed + self.per_work * self.batch_size * self.encoder.multiply_adds(length)

    @classmethod
    def fitted(cls, timings: Dict[int, float], encoder: Encoder, batch_size: int) -> "StepTime":
        """The two parts from the step seconds at two lengths; a noisy probe cannot make either part negative."""
        (short, t_short), (long_, t_long) = sorted(timings.items())[:1] + sorted(timings.items())[-1:]
        work_short, work_long = (batch_size * encoder.multiply_adds(n) for n in (short, long_))
        per_work = max((t_long - t_short) / (work_long - work_short), 0.0)
        fixed = t_short - per_work * work_short
        if per_work == 0.0 or fixed < 0:  # all of it proportional, from the longer probe
            per_work, fixed = t_long / work_long, 0.0
        return cls(fixed, per_work, encoder, batch_size)

    @classmethod
    def slowest(cls, encoder: Encoder, batch_size: int) -> "StepTime":
        """A step's seconds at SLOWEST_FLOPS: 2 FLOPs a multiply-add, and the backward pass twice the forward."""
        return cls(0.0, 3 * 2 / SLOWEST_FLOPS, encoder, batch_size)


def padded_batches(counts: Sequence[int], length: int, batch_size: int) -> List[int]:
    """The padded length of every batch of one epoch: texts cut to `length`, grouped by bucket, a bucket's batches
    each padded to about its longest text (the bucket's upper end, or its longest text when shorter)."""
    from components.module_files.training_loop import BUCKET_BOUNDARIES  # (imports TensorFlow: not for --help)

    buckets: Dict[int, List[int]] = {}
    for count in counts:
        n = min(count, length)
        buckets.setdefault(sum(1 for b in BUCKET_BOUNDARIES if n >= b), []).append(n)
    lengths = []
    for members in buckets.values():
        lengths += [max(members)] * math.ceil(len(members) / batch_size)
    return lengths


def training_seconds(counts: Sequence[int], length: int, batch_size: int, passes: int, eval_share: float,
                     step: Callable[[int], float], scale: float = 1.0, max_steps: Optional[int] = None) -> float:
    """Seconds of `passes` epochs over texts of these token counts (a sample: `scale` texts each) at `length`, each
    epoch followed by an evaluation of eval_share as many texts; at most `max_steps` steps (--train-steps)."""
    batches = padded_batches(counts, length, batch_size)
    if not batches:
        return 0.0
    mean_step = sum(step(n) for n in batches) / len(batches)
    steps = passes * len(batches) * scale
    if max_steps:
        steps = min(steps, max_steps)
    return steps * mean_step * (1 + eval_share * EVAL_COST)


def _StepTimer(clock):
    """A Keras callback that keeps each training step's seconds."""
    import tf_keras as keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: List[float] = []
            self.start = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self.start = clock()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(clock() - self.start)

    return StepTimer()


def probe(bert_config, batch_size: int, compute: str = "float32", lengths: Sequence[int] = PROBE_LENGTHS,
          steps: int = PROBE_STEPS, clock=time.perf_counter) -> Dict[int, float]:
    """Seconds of one training step (the median of `steps`) of a classifier on this encoder configuration
    (components/model/bert.py's BertConfig) at each length: random weights and ids, the optimizer the Trainer uses,
    under `compute`'s dtype policy. The Keras state it builds is cleared afterwards."""
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from components.model import bert, optimization, precision

    timings = {}
    try:
        with precision.keras_policy(compute):
            encoder = bert.build_encoder(bert_config)
            inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in bert.INPUT_NAMES}
            pooled = bert.pool(encoder(inputs), inputs[bert.INPUT_MASK], "mean")
            outputs = keras.layers.Dense(2, activation="softmax", dtype="float32")(pooled)
            model = keras.Model(inputs, outputs)
            model.compile(optimizer=optimization.make_optimizer(1e-5, 0.0, 0.01, 1000),
                          loss="sparse_categorical_crossentropy")
            rng = np.random.default_rng(0)
            for length in lengths:  # tensors, as the Trainer's dataset gives them (no conversion in the timing)
                batch = {bert.INPUT_WORD_IDS: tf.constant(rng.integers(1, bert_config.vocab_size, (batch_size, length)),
                                                          tf.int32),
                         bert.INPUT_MASK: tf.ones((batch_size, length), tf.int32),
                         bert.INPUT_TYPE_IDS: tf.zeros((batch_size, length), tf.int32)}
                labels = tf.constant(rng.integers(0, 2, batch_size))
                timer = _StepTimer(clock)
                model.fit(tf.data.Dataset.from_tensors((batch, labels)).repeat(PROBE_WARMUP + steps), verbose=0,
                          callbacks=[timer])
                timings[length] = statistics.median(timer.seconds[PROBE_WARMUP:])
    finally:
        keras.backend.clear_session()
    return timings


@dataclasses.dataclass(frozen=True)
class Choice:
    """A length within the budget: the length, its estimated seconds, and the estimate of the length the texts asked
    for (None when not over the budget)."""

    length: int
    seconds: float
    wanted_seconds: Optional[float] = None

    @property
    def capped(self) -> bool:
        return self.wanted_seconds is not None


def within_budget(wanted: int, budget_seconds: float, multiple: int,
                  estimate: Callable[[int], float]) -> Choice:
    """The longest multiple of `multiple` up to `wanted` whose estimated training time fits the budget (at least
    `multiple`: some length has to run)."""
    seconds = estimate(wanted)
    if seconds <= budget_seconds:
        return Choice(wanted, seconds)
    length = (wanted - 1) // multiple * multiple
    while length > multiple and estimate(length) > budget_seconds:
        length -= multiple
    length = max(length, multiple)
    return Choice(length, estimate(length), seconds)


@dataclasses.dataclass
class RunCost:
    """The estimate of one run's training time by length, and what its note says (`budget_minutes` 0: no budget)."""

    budget_minutes: float
    estimate_with: Callable[[Callable[[int], float], int], float]  # (step time, length) -> seconds
    slowest: Callable[[int], float]
    measure: Callable[[], Tuple[Callable[[int], float], str]]  # the probe (when needed): step time, file reused
    truncation: str = "head"
    probed: bool = False
    reused: str = ""  # the file of an earlier run's timings, when they were reused

    def over(self, length: int, probe: bool = False) -> Optional[float]:
        """The estimated seconds at `length` when over the budget, else None: at the slowest speed first (an upper
        bound that needs no probe), then, with `probe`, at this machine's."""
        budget = self.budget_minutes * 60
        if not budget or self.estimate_with(self.slowest, length) <= budget:
            return None
        seconds = self.estimate_with(self._step(), length) if probe else self.estimate_with(self.slowest, length)
        return seconds if seconds > budget else None

    def _step(self) -> Callable[[int], float]:
        step, self.reused = self.measure()
        self.probed = True
        return step

    def choose(self, wanted: int, multiple: int) -> Choice:
        if self.over(wanted) is None:
            return Choice(wanted, 0.0)  # no budget, or it fits even at the slowest speed: no probe
        step = self._step()
        return within_budget(wanted, self.budget_minutes * 60, multiple, lambda n: self.estimate_with(step, n))

    def timed(self) -> str:
        return f" (timed by an earlier run: {self.reused})" if self.reused else ""

    def said(self, choice: Choice, wanted: int, whole_at_wanted: str) -> str:
        """The clause of the auto-length note about the time: nothing when the run is too small to probe."""
        if not self.probed:
            return ""
        budget = f"--time-budget {self.budget_minutes:g} min"
        timed = self.timed()
        if not choice.capped:
            return f"; training at it: about {duration(choice.seconds)} on this machine{timed} (within {budget})"
        ends = " (--truncation head_tail keeps the end of a cut text too)" if self.truncation == "head" else ""
        over = "" if choice.seconds <= self.budget_minutes * 60 else \
            f"; even {choice.length} tokens take about {duration(choice.seconds)}: fewer --epochs or --max-examples " \
            "make the run shorter"
        lift = math.ceil(choice.wanted_seconds / 60 / 5) * 5
        return (f"; capped by {budget}: {wanted} tokens would hold {whole_at_wanted} whole but take about "
                f"{duration(choice.wanted_seconds)} of training on this machine{timed}, {choice.length} tokens about "
                f"{duration(choice.seconds)}{over}{ends}; pass --time-budget {lift} (0: none) to keep {wanted}")


def duration(seconds: float) -> str:
    """A time for people (training_loop.duration)."""
    from components.module_files.training_loop import duration  # (imports TensorFlow: not for --help)

    return duration(seconds)


def kept_timings(path: str, key: str, measure: Callable[[], Dict[int, float]]) -> Tuple[Dict[int, float], bool]:
    """(the probe's timings for `key` (the encoder's shape, batch size and precision), whether they were kept from
    an earlier run): from the file when it holds them, else measured now and added to it."""
    from components.runtime import storage
    from components.runtime.progress import progress

    kept = {}
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                kept = json.load(f)
        except ValueError:
            kept = {}  # a damaged file is timed again
    if key in kept:
        return {int(n): float(t) for n, t in kept[key].items()}, True
    progress(f"--time-budget: timing a few training steps at {' and '.join(map(str, PROBE_LENGTHS))} tokens on this "
             f"machine to estimate the training time (kept in {path})")
    timings = measure()
    kept[key] = {str(n): t for n, t in timings.items()}
    storage.write_file(path, json.dumps(kept, indent=1))
    return timings, False


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
