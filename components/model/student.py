"""A smaller student of a fine-tuned classifier: which teacher layers it starts from, the strict copy of those
weights, and the distillation loss it learns with.

* `teacher_layers(teacher, student)` – the teacher layer each student layer is initialised from.
* `copy_from_teacher(teacher, student, sources)` – every weight of the student classifier set from the teacher's:
  the embeddings and the head as they are, student layer i from teacher layer sources[i]; all or nothing, and any
  student tensor without exactly one teacher tensor of its shape is named in the error.
* `DistillationLoss`, `LabelAccuracy`, `LabelCrossEntropy` – the loss and metrics of targets packed as
  [label id, teacher probabilities...] (`pack_targets`), one set per task with several label columns. A row without
  a label for a task (label id tasks.MISSING) adds nothing to that task's loss or metrics, soft term included: the
  teacher's answer there is a guess, and the Trainer never learns from one either. A text of the transfer set that
  has no label by design (label id UNLABELED: --distill-unlabeled's texts, which the teacher never trained on) adds
  the soft term alone, at full weight (it has nothing else to teach), and nothing to the label metrics.

Why a layer copy rather than a random student: a student that starts from the teacher's own layers begins close to
a good solution (DistilBERT's initialisation), so it needs a few epochs on the task's data, not pre-training.
Plain Keras 2 and TensorFlow; no TFX.
"""

from __future__ import annotations

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

import re
from typing import Dict, List, Sequence, Tuple

import tensorflow as tf
import tf_keras as keras

from components.model import heads

_LAYER = re.compile(r"layer_(\d+)")
# Probabilities are floored before their logarithm: a softmax can round a class to exactly 0 in float32.
_FLOOR = 1e-7


class StudentError(ValueError):
    """The student does not fit the teacher (a layer, tensor count or shape differs); the message names them."""


def teacher_layers(teacher: int, student: int) -> Tuple[int, ...]:
    """The teacher layer (0-based) each of `student` layers starts from: spread evenly over the teacher's depth, the
    top one always included, since the teacher's head was trained on its output (6 -> 2: 2, 5; 6 -> 3: 1, 3, 5)."""
    if not 0 < student < teacher:
        raise StudentError(f"a student has between 1 and {teacher - 1} layers (fewer than the teacher's {teacher}); "
                           f"got {student}.")
    return tuple((i + 1) * teacher // student - 1 for i in range(student))


def _weighted_layers(model: keras.Model, prefix: str = "") -> Dict[str, keras.layers.Layer]:
    """Every layer with weights, by its path (a nested model's layers under its name: 'bert_encoder/layer_0/...')."""
    found = {}
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            found.update(_weighted_layers(layer, f"{path}/"))
        elif layer.weights:
            found[path] = layer
    return found


def _source_path(path: str, sources: Sequence[int]) -> str:
    """The teacher layer path a student layer path copies: layer_i -> layer_{sources[i]}, others unchanged."""
    parts = path.split("/")
    for k, part in enumerate(parts):
        match = _LAYER.fullmatch(part)
        if match:
            index = int(match.group(1))
            if index >= len(sources):
                raise StudentError(f"student layer {index} has no teacher layer to copy (sources {list(sources)}).")
            parts[k] = f"layer_{sources[index]}"
            break
    return "/".join(parts)


def copy_from_teacher(teacher: keras.Model, student: keras.Model, sources: Sequence[int]) -> Dict[str, str]:
    """Sets every weight of `student` from `teacher` (two classifiers of the same width, head and vocabulary; the
    student's encoder has len(sources) layers) and returns student tensor -> teacher tensor it was copied from.

    Strict: every student tensor must have exactly one teacher tensor of the same shape; otherwise nothing is
    assigned and StudentError names every tensor that does not fit."""
    teacher_by_path, student_by_path = _weighted_layers(teacher), _weighted_layers(student)
    plan: List[Tuple[tf.Variable, tf.Variable]] = []
    copied: Dict[str, str] = {}
    problems: List[str] = []
    for path, layer in student_by_path.items():
        source = _source_path(path, sources)
        origin = teacher_by_path.get(source)
        if origin is None:
            problems.append(f"{path}: the teacher has no layer {source}")
            continue
        if len(origin.weights) != len(layer.weights):
            problems.append(f"{path}: {len(layer.weights)} tensors, the teacher's {source} has {len(origin.weights)}")
            continue
        for mine, theirs in zip(layer.weights, origin.weights):
            mine_short, their_short = _short(layer, mine), _short(origin, theirs)
            name, their_name = f"{path}/{mine_short}", f"{source}/{their_short}"
            if mine_short != their_short or mine.shape != theirs.shape:
                problems.append(f"{name} {mine.shape.as_list()} does not match {their_name} "
                                f"{theirs.shape.as_list()}")
                continue
            plan.append((mine, theirs))
            copied[name] = their_name
    if problems:
        raise StudentError(f"the student does not fit the teacher ({len(problems)} tensor(s)): " + "; ".join(problems))
    for mine, theirs in plan:
        mine.assign(theirs)
    return copied


def _short(layer: keras.layers.Layer, variable: tf.Variable) -> str:
    """A variable's name within its layer ('kernel', 'query/kernel', 'gamma', ...)."""
    name = variable.name.split(":")[0]
    return name[len(layer.name) + 1:] if name.startswith(f"{layer.name}/") else name.rsplit("/", 1)[-1]


# The label id of a transfer-set text without a label (below tasks.MISSING, so heads.labelled counts it as unlabelled).
UNLABELED = -2


def pack_targets(label_id: tf.Tensor, teacher_probabilities: tf.Tensor) -> tf.Tensor:
    """[label id, teacher probabilities...] as one float32 row per example (Keras passes one target tensor)."""
    label = tf.cast(tf.reshape(label_id, [-1, 1]), tf.float32)
    return tf.concat([label, tf.cast(teacher_probabilities, tf.float32)], axis=-1)


def _unpack(y_true):
    """(label ids with MISSING replaced by 0, 1.0 where the row has a label else 0.0, teacher probabilities)."""
    labels, present = heads.labelled(y_true[:, 0])
    return labels, present, y_true[:, 1:]


def _weighted(present, sample_weight):
    return present if sample_weight is None else present * tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)


def _log_softened(probabilities: tf.Tensor, temperature: float) -> tf.Tensor:
    """log softmax(log p / T): the probabilities at temperature T (p^(1/T), normalised), as logarithms."""
    return tf.nn.log_softmax(tf.math.log(tf.maximum(tf.cast(probabilities, tf.float32), _FLOOR)) / temperature)


class DistillationLoss(keras.losses.Loss):
    """(1 - soft_weight) x cross-entropy with the label + soft_weight x T² x KL(teacher_T || student_T), where x_T is
    x's probabilities softened at temperature T (Hinton et al.'s knowledge distillation; T² keeps the soft term's
    gradients on the scale of the hard one's as T changes), averaged over the batch's rows that have a label (all of
    them with one label column; the Trainer's loss averages the same way). A row labelled UNLABELED (a transfer-set
    text) adds T² x KL alone and counts in that average."""

    def __init__(self, temperature: float, soft_weight: float, name: str = "distillation_loss"):
        super().__init__(reduction=keras.losses.Reduction.SUM, name=name)
        self.temperature, self.soft_weight = float(temperature), float(soft_weight)

    def call(self, y_true, y_pred):
        labels, present, teacher = _unpack(y_true)
        transfer = tf.cast(tf.equal(tf.cast(y_true[:, 0], tf.int32), UNLABELED), tf.float32)
        loss = keras.losses.sparse_categorical_crossentropy(labels, y_pred)
        log_teacher = _log_softened(teacher, self.temperature)
        soft = self.temperature ** 2 * tf.reduce_sum(
            tf.exp(log_teacher) * (log_teacher - _log_softened(y_pred, self.temperature)), axis=-1)
        if self.soft_weight > 0.0:
            loss = (1.0 - self.soft_weight) * loss + self.soft_weight * soft
        # Averaged over the rows with something to learn: a label (the rows of the training split), or only the
        # teacher's answer (the transfer set's unlabeled texts).
        return (loss * present + soft * transfer) / tf.maximum(tf.reduce_sum(present + transfer), 1.0)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "soft_weight": self.soft_weight}


class LabelAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Accuracy against the label of packed targets, over the rows that have one."""

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, present, _ = _unpack(y_true)
        return super().update_state(labels, y_pred, _weighted(present, sample_weight))


class LabelCrossEntropy(keras.metrics.SparseCategoricalCrossentropy):
    """Cross-entropy with the label of packed targets (the number comparable with the teacher's training loss), over
    the rows that have one."""

    def __init__(self, name: str = "cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, present, _ = _unpack(y_true)
        return super().update_state(labels, y_pred, _weighted(present, sample_weight))
