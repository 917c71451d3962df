"""What both Trainer module files share (trainer.py fine-tunes the classifier, pretraining.py runs the masked-LM
stage; distillation.py trains the student): batching examples of similar length, counting batches, shaping raw text
like the schema's text feature and tokenizing raw texts through the transform graph, a local copy of a checkpoint
given as a URI, and the progress lines of training."""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from typing import List, Optional

import tensorflow as tf
import tf_keras as keras

from components import features
from components.model import heads
from components.runtime.progress import progress
from components.runtime.storage import copy_tree, is_uri

# Length buckets (in tokens, incl. [CLS]/[SEP]) for batching examples of similar length.
BUCKET_BOUNDARIES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384)


def trim_to_longest(word_ids, mask, type_ids):
    """Drops the padding columns that no example of the batch uses (mask is 1 on real tokens)."""
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
    longest = tf.maximum(longest, 1)
    return word_ids[:, :longest], mask[:, :longest], type_ids[:, :longest]


def bucket_batches(examples: tf.data.Dataset, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """(features, label) examples of any length -> batches of similar-length examples, each padded only to its
    longest example (benchmarks/bucketing.py measures the speed-up over padding to max_seq_length)."""
    ds = examples
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    boundaries = list(BUCKET_BOUNDARIES)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda f, _: tf.shape(f[features.WORD_IDS_KEY])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        drop_remainder=False)
    if shuffle:  # buckets fill at different rates: mix the order of batches too
        ds = ds.shuffle(64, seed=seed + 1, reshuffle_each_iteration=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# The loss as an exact metric: Keras' own 'loss' log weighs replicas as if they had as many examples each (see
# GlobalBatchCrossEntropy), a plain metric sums examples and counts across replicas. The history records it as 'loss'.
CROSS_ENTROPY = heads.CROSS_ENTROPY


def duration(seconds: float) -> str:
    """A time for people: '40 s', '7 min', '2 h 05 min'."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class EpochProgress(keras.callbacks.Callback):
    """One line every `every` steps (Keras' own progress bar floods non-interactive logs), with the time left.

    Before any cost is paid, a line says how many steps the run will take; once `probe_steps` steps are timed (the
    first step, which traces the function, is not), a line estimates the training time from their speed on this
    machine, and every later line says about how long is left of the epoch and of the training; after the first
    epoch an epoch's estimate includes its evaluation. Early stopping can only make it shorter."""

    def __init__(self, steps_per_epoch: int, epochs: int, every: int = 50, task: str = "", replicas: int = 1,
                 name: str = "Trainer", loss_key: str = "", probe_steps: int = 5, clock=time.perf_counter):
        super().__init__()
        # Keras sums the replicas' own running means in its per-step logs (its 'auto' reduction); the epoch logs are
        # the true means. Per step, the mean over replicas is shown.
        self.replicas = replicas
        self.steps_per_epoch, self.epochs, self.every, self.probe_steps = steps_per_epoch, epochs, every, probe_steps
        self.clock = clock  # a parameter so that the tests can give the callback a clock of their own
        self.epoch, self.start = 0, clock()
        self.name = f"{name} ({task})" if task else name
        self.loss_key = loss_key or CROSS_ENTROPY
        # Training speed after the first step (which includes tracing): the steps and seconds of each epoch's rest.
        self.timed_steps, self.timed_seconds, self.epoch_start, self.last_step = 0, 0.0, None, self.start
        self.eval_seconds: List[float] = []  # each finished epoch's evaluation time
        self.estimated = False
        self.step_loss: List[float] = []  # after each step: the epoch's mean training loss so far (Keras' own log)

    def on_train_begin(self, logs=None):
        self.start = self.clock()
        progress(f"{self.name}: {self.epochs} epoch(s) of {self.steps_per_epoch} steps, "
                 f"{self.epochs * self.steps_per_epoch} steps in all; a time estimate follows the first "
                 f"{self.probe_steps + 1} steps")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_start = epoch, None

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        loss = float((logs or {}).get(self.loss_key, float("nan"))) / self.replicas
        self.step_loss.append(round(loss, 7))
        if self.epoch_start is None:
            self.epoch_start = now
        else:
            self.timed_steps, self.timed_seconds = self.timed_steps + 1, self.timed_seconds + (now - self.last_step)
        self.last_step = now
        if not self.estimated and self.timed_steps >= self.probe_steps:
            self.estimated = True
            step = self.timed_seconds / self.timed_steps
            progress(f"{self.name}: {step:.2f} s a step on this machine after {self.timed_steps} timed steps: about "
                     f"{duration(step * self.epochs * self.steps_per_epoch)} of training for {self.epochs} "
                     "epoch(s), plus each epoch's evaluation")
        if (batch + 1) % self.every == 0:
            progress(f"{self.name}: epoch {self.epoch + 1}/{self.epochs} step {batch + 1}/{self.steps_per_epoch} "
                     f"loss {loss:.4f} ({self.clock() - self.start:.0f} s{self._left(batch + 1)})")

    def _left(self, steps_done: int) -> str:
        """', about 4 min left in the epoch, 12 min in all' once there is a speed to go by, else ''."""
        if not self.timed_steps:
            return ""
        in_epoch = max(self.steps_per_epoch - steps_done, 0) * self.timed_seconds / self.timed_steps
        epochs_after = self.epochs - self.epoch - 1
        whole_epoch = self._epoch_estimate()
        if not epochs_after:
            return f", about {duration(in_epoch)} left" if in_epoch else ""  # the last step: only evaluation is left
        total = in_epoch + epochs_after * whole_epoch
        return f", about {duration(in_epoch)} left in the epoch, {duration(total)} in all"

    def _epoch_estimate(self) -> float:
        """An epoch's seconds: its steps at the timed speed, and the last evaluation's time once there was one (the
        first epoch's own wall time would count the tracing of every new batch shape again)."""
        return self.steps_per_epoch * self.timed_seconds / max(self.timed_steps, 1) + \
            (self.eval_seconds[-1] if self.eval_seconds else 0.0)

    def steps_per_second(self) -> float:
        return self.timed_steps / self.timed_seconds if self.timed_seconds else 0.0

    def on_train_end(self, logs=None):
        if 0 < self.epochs_done < self.epochs:  # the estimates counted every epoch: say why fewer ran
            progress(f"{self.name}: stopped after epoch {self.epochs_done} of {self.epochs} (early stopping: the "
                     f"eval metric stopped improving) ({self.clock() - self.start:.0f} s)")

    @property
    def epochs_done(self) -> int:
        return len(self.eval_seconds)

    def on_epoch_end(self, epoch, logs=None):
        self.eval_seconds.append(self.clock() - self.last_step)  # Keras evaluates between the last step and here
        summary = " ".join(f"{k.replace(CROSS_ENTROPY, 'loss')} {v:.4f}" for k, v in (logs or {}).items()
                           if self.loss_key != CROSS_ENTROPY or not k.endswith("loss"))
        left = self.epochs - epoch - 1
        ahead = f"; about {duration(left * self._epoch_estimate())} left for {left} more epoch(s)" if left else ""
        progress(f"{self.name}: epoch {epoch + 1}/{self.epochs} done: {summary} ({self.clock() - self.start:.0f} s"
                 f"{ahead})")


def count_batches(ds: tf.data.Dataset) -> int:
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """How many steps a stage trains: `epochs` passes of `steps_per_epoch` steps (None: each a full pass of
    `batches_per_epoch` batches), `total_steps` in all."""

    epochs: int
    steps_per_epoch: Optional[int]
    total_steps: int
    batches_per_epoch: int


def plan_steps(train_ds: tf.data.Dataset, epochs: int, train_steps: Optional[int]):
    """(the training batches, the StepPlan) of `epochs` full passes, or of at most `train_steps` steps when that cap
    (--train-steps, quick runs) is smaller: then the batches repeat and the epochs are the cap's share of passes."""
    batches = count_batches(train_ds)
    total = batches * epochs
    if train_steps and train_steps < total:
        total = int(train_steps)
        per_epoch = min(batches, total)
        return train_ds.repeat(), StepPlan(math.ceil(total / per_epoch), per_epoch, total, batches)
    return train_ds, StepPlan(epochs, None, total, batches)


def raw_input_for_text(texts: tf.Tensor, spec) -> tf.Tensor:
    """Shapes a [batch] string tensor like the raw feature spec of the text column."""
    if isinstance(spec, tf.io.FixedLenFeature):
        return tf.reshape(texts, [-1] + list(spec.shape))
    # VarLenFeature: one value per example
    n = tf.shape(texts, out_type=tf.int64)[0]
    indices = tf.stack([tf.range(n), tf.zeros([n], tf.int64)], axis=1)
    return tf.SparseTensor(indices=indices, values=texts, dense_shape=tf.stack([n, tf.constant(1, tf.int64)]))


IDS = (features.WORD_IDS_KEY, features.MASK_KEY, features.TYPE_IDS_KEY)  # the encoder's inputs


def trim(example: dict) -> dict:
    """An example's encoder inputs cut to its real tokens (Transform pads every text to max_seq_length)."""
    length = tf.reduce_sum(tf.cast(example[features.MASK_KEY], tf.int32))
    return {k: tf.cast(tf.reshape(example[k], [-1])[:length], tf.int32) for k in IDS}


def tokenized_texts(texts: List[str], text_key: str, tf_transform_output) -> tf.data.Dataset:
    """Raw texts (never seen by Transform: unlabeled ones) through the transform graph, so they are tokenized and cut
    exactly as the labelled data: one dict of trimmed encoder inputs per text, in order."""
    layer = tf_transform_output.transform_features_layer()
    spec = tf_transform_output.raw_feature_spec()[text_key]

    def tokenize(batch):
        out = layer({text_key: raw_input_for_text(batch, spec)})
        return {k: out[k] for k in IDS}

    return (tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(256).map(tokenize)
            .unbatch().map(trim))


def local_folder(folder: str) -> str:
    """A local copy of a folder given as a URI (the checkpoint loader reads local files); local paths as they are."""
    if not is_uri(folder):
        return folder
    target = tempfile.mkdtemp(prefix="checkpoint-")
    copy_tree(folder, target)
    return target
