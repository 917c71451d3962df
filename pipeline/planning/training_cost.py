"""What training costs on this machine by sequence length: the seconds of a step at a length, from a short timed probe
of the run's own encoder (random weights and ids: the speed does not depend on them) at two short lengths, fitted as a
fixed part plus a part proportional to a BERT layer's multiply-adds at that length; an epoch's seconds from the
training texts' token counts under length bucketing; the longest length within a time budget. Timings are kept in
the pipeline root's local state folder (TIMINGS_FILE) so that a later run reuses them. Read by the length planning
(pipeline/planning/sequence_length.py); TensorFlow is imported only when the probe runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

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
