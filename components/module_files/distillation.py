"""The Distiller: a second TFX Trainer whose `run_fn` trains a smaller student from the fine-tuned classifier.

Inputs: Transform's examples and graph, and the Trainer's Model artifact (its `base_model`): the teacher's SavedModel
and its record (training_history.json: the teacher's settings and encoder architecture). The student has the
teacher's width, vocabulary, pooling and heads, and --student-layers encoder layers, each initialised from one of the
teacher's (components/model/student.py: spread over its depth, the top one kept; the embeddings and heads copied),
every tensor checked. It trains on the training split with the teacher's softened probabilities and the labels
(DistillationLoss); the teacher's probabilities are computed once, before training, since the teacher runs without
dropout. Batching (length buckets), batch size, seed, precision and early stopping are the teacher's. With several
label columns, each task has its own soft targets and loss, summed with the teacher's --task-weights; a row without a
label for a task is left out of that task's loss, as in the Trainer.

With --distill-unlabeled the transfer set grows: --unlabeled-data's texts (a folder of texts, or the request log of
the model in service: texts the teacher never trained on), tokenized by the transform graph, with the teacher's
probabilities and no label (student.UNLABELED: the soft term alone), are added to the training split's.

Output: a Model artifact laid out exactly as the Trainer's (Format-Serving with the same four signatures and warm-up
requests, class_names.json, training_history.json with a `distillation` block), so the ServingCheck, Evaluator, model
card and Pusher take the student as they would the teacher, and the teacher is never pushed.

One process (the default tf.distribute strategy): with --trainer-workers only the Trainer is a multi-worker job.
"""

from __future__ import annotations

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

import dataclasses
import json
import os
import time
from typing import Dict, Tuple, Union

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the WordPiece ops the transform graph uses)
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx

from components import tasks
from components.features import TRAINING_HISTORY_FILE
from components.model import bert, heads, optimization, precision, student
from components.model.heads import build_classifier
from components.module_files import trainer, training_loop, unlabeled
from components.runtime.progress import progress
from components.settings.data import DataSettings, read_config
from components.settings.distillation import DistillerSettings
from components.settings.trainer import TrainerSettings

PREDICT_BATCH = 64  # examples per batch of the teacher's one pass over the data


def teacher_record(teacher_model: str) -> dict:
    """The teacher's training_history.json (beside its Format-Serving folder, `teacher_model`)."""
    path = os.path.join(os.path.dirname(teacher_model.rstrip("/")), TRAINING_HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"the teacher model {teacher_model} has no {TRAINING_HISTORY_FILE} beside it: the Distiller "
                         "needs the Trainer's Model artifact as its base_model.")
    record = json.loads(tf.io.gfile.GFile(path).read())
    if not record.get("encoder"):
        raise ValueError(f"{path} does not record the teacher's encoder architecture (a Trainer of an older version "
                         "of this code wrote it); run the pipeline again so the Trainer re-runs.")
    return record


def build_teacher(teacher_model: str, record: dict
                  ) -> Tuple[keras.Model, bert.BertConfig, TrainerSettings, DataSettings]:
    """The teacher classifier as the Trainer exported it (every variable restored, float32), its encoder's
    architecture, its settings and the data's (its columns, classes and vocabulary: the student's too)."""
    settings, data = read_config(TrainerSettings, record["settings"])
    config = bert.BertConfig(**record["encoder"])
    with precision.keras_policy("float32"):
        model = build_classifier(bert.build_encoder(config), heads.head_sizes(data.tasks), settings.pooling,
                                 settings.dropout)
    try:
        trainer.read_classifier(model, teacher_model)
    except ValueError as e:
        raise ValueError(f"cannot read the teacher classifier from {teacher_model} ({e}).") from None
    return model, config, settings, data


def build_student(teacher: keras.Model, config: bert.BertConfig, settings: TrainerSettings, data: DataSettings,
                  layers: int):
    """(student classifier with the teacher's weights copied, the teacher layers it started from, the copy map): the
    teacher's heads, one or one per label column of the data."""
    sources = student.teacher_layers(config.num_layers, layers)
    model = build_classifier(bert.build_encoder(dataclasses.replace(config, num_layers=layers)),
                             heads.head_sizes(data.tasks), settings.pooling, settings.dropout)
    return model, sources, student.copy_from_teacher(teacher, model, sources)


Probabilities = Union[np.ndarray, Dict[str, np.ndarray]]  # as the classifier answers: one array, or one per task


def teacher_probabilities(teacher: keras.Model, examples: tf.data.Dataset) -> Probabilities:
    """A classifier's (the teacher's) probabilities for every example of `examples`, in its order (one array, or
    {column: array} for a classifier of several tasks): one pass over length-bucketed batches (each example tagged
    with its position, so the bucketed order maps back)."""
    tagged = tf.data.Dataset.zip((examples.map(lambda f, _: f), tf.data.Dataset.range(2**62)))
    batches = training_loop.bucket_batches(tagged, PREDICT_BATCH, shuffle=False, seed=0)
    positions, probabilities = [], []

    @tf.function(reduce_retracing=True)
    def predict(feats):
        return teacher(trainer.to_model_inputs(feats), training=False)

    for feats, position in batches:
        positions.append(position.numpy())
        probabilities.append(tf.nest.map_structure(lambda p: p.numpy(), predict(feats)))
    positions = np.concatenate(positions)

    def in_order(*parts):
        joined = np.concatenate(parts)
        ordered = np.empty_like(joined)
        ordered[positions] = joined
        return ordered

    return tf.nest.map_structure(in_order, *probabilities)


def with_soft_targets(examples: tf.data.Dataset, probabilities: Probabilities) -> tf.data.Dataset:
    """(features, [label id, teacher probabilities...]) per example; with several tasks the target is {column: that
    row}."""
    soft = tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda p: p.astype(np.float32), probabilities))

    def pack(label, q):
        return tf.reshape(student.pack_targets(label, q[tf.newaxis]), [-1])

    return tf.data.Dataset.zip((examples, soft)).map(
        lambda pair, q: (pair[0], tf.nest.map_structure(pack, pair[1], q))).cache()


def _by_task(values) -> Dict[str, np.ndarray]:
    """A one-task array as {"": array}; several tasks' dict as it is."""
    return values if isinstance(values, dict) else {"": values}


def labels_of(examples: tf.data.Dataset) -> Dict[str, np.ndarray]:
    """Every example's label id, by task ("" for the one task of a one-label model); tasks.MISSING without one."""
    rows = [label for _, label in examples.as_numpy_iterator()]
    if rows and isinstance(rows[0], dict):
        return {column: np.array([r[column] for r in rows], dtype=np.int64) for column in rows[0]}
    return {"": np.array(rows, dtype=np.int64)}


def _log(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(probabilities, 1e-7))


def accuracies(probabilities: Probabilities, labels: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Each task's accuracy over its rows with a label."""
    found = {}
    for column, p in _by_task(probabilities).items():
        labelled = labels[column] > tasks.MISSING
        found[column] = (float(np.mean(np.argmax(p[labelled], axis=-1) == labels[column][labelled]))
                         if labelled.any() else float("nan"))
    return found


def _mean(values: Dict[str, float]) -> float:
    """The mean over the tasks (as the Trainer's `val_accuracy`), the value itself for one task."""
    return float(np.mean(list(values.values())))


def eval_figures(model: keras.Model, eval_examples: tf.data.Dataset, eval_soft: Probabilities,
                 labels: Dict[str, np.ndarray]) -> dict:
    """The student's kept weights (early stopping restored the best epoch's) on the eval split: its accuracy, how
    often it answers what the teacher answers, and how far its probabilities are from the teacher's
    (KL(teacher || student): what the soft targets teach); each the mean over the tasks, and with several tasks
    each task's under `tasks`."""
    mine, theirs = _by_task(teacher_probabilities(model, eval_examples)), _by_task(eval_soft)
    per_task = {column: {
        "eval_agreement_with_teacher": float(np.mean(np.argmax(p, axis=-1) == np.argmax(theirs[column], axis=-1))),
        "eval_kl_from_teacher": float(np.mean(np.sum(theirs[column] * (_log(theirs[column]) - _log(p)), axis=-1)))}
        for column, p in mine.items()}
    for column, accuracy in accuracies(mine, labels).items():
        per_task[column]["student_eval_accuracy"] = accuracy
    figures = {name: _mean({c: f[name] for c, f in per_task.items()}) for name in next(iter(per_task.values()))}
    if "" not in per_task:
        figures["tasks"] = per_task
    return figures


def transfer_texts(settings: DistillerSettings, data: DataSettings, tf_transform_output) -> Tuple[tf.data.Dataset, int]:
    """--unlabeled-data's texts as examples of the transfer set, (encoder inputs, student.UNLABELED for each task),
    and how many there are."""
    texts = unlabeled.texts(settings.unlabeled_data, data.text_key, settings.unlabeled_digest,
                            settings.unlabeled_until)
    if not texts:
        raise ValueError(f"--unlabeled-data {settings.unlabeled_data} holds no text for --distill-unlabeled.")
    progress(f"Distiller: {len(texts)} unlabeled texts from {settings.unlabeled_data} join the transfer set")
    label_tasks = data.tasks
    several = len(label_tasks) > 1 or any(t.multi for t in label_tasks)  # as trainer.examples shapes the target

    def unlabelled(feats):
        return feats, ({t.column: tf.constant(student.UNLABELED) for t in label_tasks} if several
                       else tf.constant(student.UNLABELED))

    return training_loop.tokenized_texts(texts, data.text_key, tf_transform_output).map(unlabelled).cache(), len(texts)


def compile_args(label_tasks, task_weights: str, temperature: float, soft_weight: float) -> dict:
    """model.compile's loss and metrics: one distillation loss (and its metrics) per task, summed with the teacher's
    --task-weights as the Trainer sums its losses."""
    return heads.per_task_compile_args(
        label_tasks, tasks.parse_weights(task_weights, [t.column for t in label_tasks]),
        lambda _: student.DistillationLoss(temperature, soft_weight),
        lambda: [student.LabelAccuracy(), student.LabelCrossEntropy(name=training_loop.CROSS_ENTROPY)])


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    settings = DistillerSettings.from_custom_config(fn_args.custom_config)
    if not settings.enabled:
        raise ValueError("the Distiller runs only with student_layers above 0 (--student-layers N).")
    if not fn_args.base_model:
        raise ValueError("the Distiller has no base_model input (the Trainer's model, its teacher).")
    started = time.time()
    record = teacher_record(fn_args.base_model)
    teacher, config, teacher_settings, data = build_teacher(fn_args.base_model, record)
    keras.utils.set_random_seed(teacher_settings.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    label_tasks = data.tasks
    over = f" (mean over {', '.join(t.column for t in label_tasks)})" if len(label_tasks) > 1 else ""

    train_examples = trainer.examples(fn_args.train_files, fn_args.data_accessor, tf_transform_output, label_tasks)
    eval_examples = trainer.examples(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, label_tasks)
    eval_labels = labels_of(eval_examples)
    transfer_count = 0
    if settings.distill_unlabeled:
        transfer, transfer_count = transfer_texts(settings, data, tf_transform_output)
        train_examples = train_examples.concatenate(transfer)
    train_soft = teacher_probabilities(teacher, train_examples)
    eval_soft = teacher_probabilities(teacher, eval_examples)
    teacher_by_task = accuracies(eval_soft, eval_labels)
    teacher_eval = _mean(teacher_by_task)
    train_count, eval_count = (len(next(iter(_by_task(p).values()))) for p in (train_soft, eval_soft))
    progress(f"Distiller: the teacher's probabilities on {train_count} training and {eval_count} eval examples "
             f"(teacher eval accuracy {teacher_eval:.3f}{over}, {time.time() - started:.0f} s)")
    batch = teacher_settings.batch_size
    train_ds = trainer.batches(with_soft_targets(train_examples, train_soft), batch, True, teacher_settings.seed)
    eval_ds = trainer.batches(with_soft_targets(eval_examples, eval_soft), batch, False, teacher_settings.seed)
    train_ds, plan = training_loop.plan_steps(train_ds, settings.distill_epochs, fn_args.train_steps)
    epochs, steps_per_epoch, total_steps, batches_per_epoch = (plan.epochs, plan.steps_per_epoch, plan.total_steps,
                                                               plan.batches_per_epoch)

    compute = precision.choose(teacher_settings.precision, len(tf.config.list_physical_devices("GPU")))
    with precision.keras_policy(compute):
        model, sources, copied = build_student(teacher, config, teacher_settings, data, settings.student_layers)
        model.compile(
            optimizer=optimization.make_optimizer(settings.distill_learning_rate, teacher_settings.warmup_ratio,
                                                  teacher_settings.weight_decay, total_steps),
            **compile_args(label_tasks, teacher_settings.task_weights, settings.temperature, settings.soft_weight))
    progress(f"Distiller: a student of {settings.student_layers} layers from the teacher's layers "
             f"{', '.join(str(i + 1) for i in sources)} of {config.num_layers} ({len(copied)} tensors copied); "
             f"{total_steps} steps, soft weight {settings.soft_weight:g}, temperature {settings.temperature:g}")

    speed = training_loop.EpochProgress(steps_per_epoch or batches_per_epoch, epochs, name="Distiller")
    # TaskMeans first: with several tasks, early stopping watches the mean over them (`val_accuracy`), as the Trainer's.
    callbacks = [heads.TaskMeans(label_tasks), keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir,
                                                                           update_freq=50), speed]
    if epochs > 1:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=teacher_settings.early_stopping_patience,
            restore_best_weights=True))
    history = model.fit(train_ds, validation_data=eval_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=callbacks, verbose=0).history
    figures = eval_figures(model, eval_examples, eval_soft, eval_labels)
    if len(label_tasks) > 1:
        for column, accuracy in teacher_by_task.items():
            figures["tasks"][column]["teacher_eval_accuracy"] = accuracy
    progress(f"Distiller: student eval accuracy {figures['student_eval_accuracy']:.3f} (teacher {teacher_eval:.3f})"
             f"{over}, "
             f"same answer as the teacher on {figures['eval_agreement_with_teacher']:.1%} of the eval split, "
             f"{time.time() - started:.0f} s")
    if compute != "float32":  # served in float32 whatever the training precision, as the Trainer's model
        with precision.keras_policy("float32"):
            trained, model = model, build_student(teacher, config, teacher_settings, data, settings.student_layers)[0]
            model.set_weights(trained.get_weights())
    serving_model_dir = fn_args.serving_model_dir
    tf.io.gfile.makedirs(os.path.dirname(serving_model_dir.rstrip("/")))
    trainer.write_history(  # one record layout for both models
        serving_model_dir, history, teacher_settings, data, total_steps, steps_per_epoch or batches_per_epoch,
        restored_best=epochs > 1, steps_per_second=speed.steps_per_second(), step_loss=speed.step_loss,
        compute=compute, started_from=fn_args.base_model,
        encoder=dataclasses.replace(config, num_layers=settings.student_layers),
        peak_learning_rate=settings.distill_learning_rate,
        extra={"distillation": {
            "settings": settings.to_custom_config(), "teacher": fn_args.base_model,
            "teacher_layers": config.num_layers, "student_layers": settings.student_layers,
            "copied_from_teacher_layers": list(sources), "copied_tensors": copied,
            "teacher_eval_accuracy": teacher_eval, "unlabeled_transfer_texts": transfer_count, **figures,
            "seconds": time.time() - started}})
    trainer.export(model, fn_args, tf_transform_output, data.text_key, label_tasks, serving_model_dir)
