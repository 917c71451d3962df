"""The classifier on top of the encoder: one softmax head per task, and how the heads learn together.

One label column is one head and one output, the classifier it always was. Several (components/tasks.py) share the
encoder and the pooled vector; each has its own dense softmax head, and the model's output is a dict {column:
probabilities}. Keras sums the per-task losses with their weights (`--task-weights`, equal by default). A row with no
value in a task's column (label id tasks.MISSING) adds nothing to that task's loss or metrics: the loss and the
metrics here mask it out, so no answer is ever invented for it.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import tensorflow as tf
import tf_keras as keras

from components import features
from components.model import bert
from components.tasks import MISSING, Task

CROSS_ENTROPY = "cross_entropy"  # the exact loss as a metric (see GlobalBatchCrossEntropy); the history's 'loss'
TASK_MEANS = ("accuracy", CROSS_ENTROPY)  # the logs averaged over the tasks, under their one-task names


def build_classifier(encoder: keras.Model, num_classes: Union[int, Mapping[str, int]], pooling: str,
                     dropout: float) -> keras.Model:
    """Encoder + dropout + a dense softmax head on the [CLS] vector or the mean over real tokens. `num_classes` an int:
    one head, the output its probabilities; a mapping {column: classes}: one head per column, the output a dict."""
    inputs = {key: keras.Input(shape=(None,), dtype=tf.int32, name=key)
              for key in (features.WORD_IDS_KEY, features.MASK_KEY, features.TYPE_IDS_KEY)}
    sequence = encoder(inputs)
    pooled = bert.pool(sequence, inputs[features.MASK_KEY], pooling)
    pooled = keras.layers.Dropout(dropout, name="head_dropout")(pooled)

    def head(classes: int, name: str):
        # float32 under any mixed-precision policy: a softmax to compare and serve
        return keras.layers.Dense(classes, activation="softmax", name=name, dtype=tf.float32,
                                  kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))(pooled)

    if isinstance(num_classes, int):
        return keras.Model(inputs, head(num_classes, "classifier"), name="bert_classifier")
    # The layer is named after the column, so Keras' output names, loss keys and logs ("rating_accuracy") are the
    # columns'.
    return keras.Model(inputs, {column: head(n, column) for column, n in num_classes.items()},
                       name="bert_classifier")


def head_sizes(tasks: Sequence[Task]) -> Union[int, Dict[str, int]]:
    """build_classifier's `num_classes` for these tasks."""
    if len(tasks) == 1 and not tasks[0].multi:
        return len(tasks[0].classes)
    return {t.column: len(t.classes) for t in tasks}


def labelled(y_true):
    """(label ids with MISSING replaced by 0, 1.0 where the row has a label else 0.0), both `[batch]`."""
    y_true = tf.reshape(tf.cast(y_true, tf.int32), [-1])
    present = y_true > MISSING
    return tf.where(present, y_true, 0), tf.cast(present, tf.float32)


class GlobalBatchCrossEntropy(keras.losses.Loss):
    """Sparse categorical cross-entropy averaged over the global batch's labelled rows, however tf.distribute splits
    the batch.

    Keras' default reduction averages each replica's examples and then the replicas, which is the global mean only
    when every replica gets as many examples; length bucketing makes batches of any size, so a batch of 13 split 7 + 6
    would weigh examples unequally. Dividing each replica's sum by the global count (one scalar all-reduce) makes every
    step exactly the single-process step on the same global batch. On one replica this is the plain batch mean. Rows
    without a label for this task (tasks.MISSING) are neither summed nor counted. With `class_weights`, each row's
    loss is multiplied by its class's weight (the count is unchanged, so balanced weights keep the loss's scale)."""

    def __init__(self, name: str = "sparse_categorical_crossentropy", class_weights: Optional[Sequence[float]] = None):
        super().__init__(reduction=keras.losses.Reduction.SUM, name=name)
        self._class_weights = None if class_weights is None else [float(w) for w in class_weights]

    def call(self, y_true, y_pred):
        labels, present = labelled(y_true)
        weight = tf.cast(present, y_pred.dtype)
        if self._class_weights is not None:  # each row weighs its class's weight (balanced_class_weights)
            weight *= tf.gather(tf.constant(self._class_weights, y_pred.dtype), labels)
        per_example = keras.losses.sparse_categorical_crossentropy(labels, y_pred) * weight
        count = tf.reduce_sum(tf.cast(present, per_example.dtype))
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            count = replica.all_reduce(tf.distribute.ReduceOp.SUM, count)
        return per_example / tf.maximum(count, 1.0)


class LabelledAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Accuracy over the rows that have a label for the task (the others weigh 0)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, present = labelled(y_true)
        return super().update_state(labels, y_pred, sample_weight=present)


class LabelledCrossEntropy(keras.metrics.SparseCategoricalCrossentropy):
    """The loss as an exact metric, over the rows that have a label for the task (see GlobalBatchCrossEntropy)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, present = labelled(y_true)
        return super().update_state(labels, y_pred, sample_weight=present)


def metrics():
    return [LabelledAccuracy(name="accuracy"), LabelledCrossEntropy(name=CROSS_ENTROPY)]


def balanced_class_weights(counts: Sequence[int]) -> List[float]:
    """Per-class loss weights that give every class of a task the same total weight: n / (k * n_c) for the k classes
    and n labelled rows (a class with no training row gets 1.0: it has no row to weigh). A row of a rare class then
    counts as much, in sum, as the rows of a frequent one, which pays in macro F1 (the mean over the classes) at some
    cost in accuracy."""
    total, present = sum(counts), [c for c in counts if c > 0]
    return [total / (len(present) * c) if c > 0 else 1.0 for c in counts]


def per_task_compile_args(tasks: Sequence[Task], weights: Sequence[float], loss: Callable[[Task], keras.losses.Loss],
                          task_metrics: Callable[[], List[keras.metrics.Metric]]) -> dict:
    """model.compile's loss, loss weights and metrics: `loss(task)` and `task_metrics()` on each task's output, the
    losses summed with `weights`; one task (one output): its plain loss and metrics."""
    if len(tasks) == 1 and not tasks[0].multi:
        return {"loss": loss(tasks[0]), "metrics": task_metrics()}
    return {"loss": {t.column: loss(t) for t in tasks},
            "loss_weights": {t.column: float(w) for t, w in zip(tasks, weights)},
            "metrics": {t.column: task_metrics() for t in tasks}}


def compile_args(tasks: Sequence[Task], weights: Sequence[float],
                 class_weights: Optional[Mapping[str, Sequence[float]]] = None) -> dict:
    """The Trainer's model.compile arguments for these tasks; `class_weights`: {column: per-class loss weights} (the
    one task's column for one task)."""
    class_weights = class_weights or {}
    return per_task_compile_args(
        tasks, weights, lambda t: GlobalBatchCrossEntropy(class_weights=class_weights.get(t.column)), metrics)


class TaskMeans(keras.callbacks.Callback):
    """With several tasks, adds to each epoch's logs the mean over the tasks of their accuracy and cross-entropy
    (and the eval split's), under the one-task names: early stopping watches `val_accuracy` and the run report plots
    `accuracy` for any number of tasks, and each task's own figures stay in the logs ("rating_accuracy"); after each
    step too, for the progress line's loss. Listed first among the callbacks, since Keras hands every callback the
    same logs."""

    def __init__(self, tasks: Sequence[Task]):
        super().__init__()
        self._columns = [t.column for t in tasks]

    def on_train_batch_end(self, batch, logs=None):  # the step's loss the progress line shows
        self._average(logs, ("",))

    def on_epoch_end(self, epoch, logs=None):
        self._average(logs, ("", "val_"))

    def _average(self, logs, prefixes) -> None:
        if logs is None or len(self._columns) < 2:
            return
        for prefix in prefixes:
            for name in TASK_MEANS:
                values = [logs.get(f"{prefix}{column}_{name}") for column in self._columns]
                if all(v is not None for v in values):
                    logs[f"{prefix}{name}"] = float(sum(values) / len(values))
