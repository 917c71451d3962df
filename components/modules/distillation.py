"""The Distiller: a second TFX Trainer whose `run_fn` trains a smaller student from the fine-tuned classifier.

Inputs: Transform's examples and graph, and the Trainer's Model artifact (its `base_model`): the teacher's SavedModel
and its record (training_history.json: the teacher's settings and encoder architecture). The student has the
teacher's width, vocabulary, pooling and head, and --student-layers encoder layers, each initialised from one of the
teacher's (components/model/student.py: spread over its depth, the top one kept; the embeddings and head copied), every
tensor checked. It trains on the training split with the teacher's softened probabilities and the labels
(DistillationLoss); the teacher's probabilities are computed once, before training, since the teacher runs without
dropout. Batching (length buckets), batch size, seed, precision and early stopping are the teacher's.

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
from typing import Tuple

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the WordPiece ops the transform graph uses)
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx

from components import tasks
from components.model import bert, optimization, precision, student
from components.modules import trainer, training_loop
from components.runtime.progress import progress
from components.settings.distillation import DistillerSettings
from components.settings.trainer import TrainerSettings

PREDICT_BATCH = 64  # examples per batch of the teacher's one pass over the data


def teacher_record(teacher_model: str) -> dict:
    """The teacher's training_history.json (beside its Format-Serving folder, `teacher_model`)."""
    path = os.path.join(os.path.dirname(teacher_model.rstrip("/")), trainer.HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"the teacher model {teacher_model} has no {trainer.HISTORY_FILE} beside it: the Distiller "
                         "needs the Trainer's Model artifact as its base_model.")
    record = json.loads(tf.io.gfile.GFile(path).read())
    if not record.get("encoder"):
        raise ValueError(f"{path} does not record the teacher's encoder architecture (a Trainer of an older version "
                         "of this code wrote it); run the pipeline again so the Trainer re-runs.")
    return record


def build_teacher(teacher_model: str, record: dict) -> Tuple[keras.Model, bert.BertConfig, TrainerSettings]:
    """The teacher classifier as the Trainer exported it (every variable restored, float32), its encoder's
    architecture and its settings."""
    settings = TrainerSettings.from_custom_config(record["settings"])
    config = bert.BertConfig(**record["encoder"])
    with precision.keras_policy("float32"):
        model = trainer.build_classifier(bert.build_encoder(config), len(settings.label_names), settings.pooling,
                                         settings.dropout)
    try:
        trainer.read_classifier(model, teacher_model)
    except ValueError as e:
        raise ValueError(f"cannot read the teacher classifier from {teacher_model} ({e}).") from None
    return model, config, settings


def build_student(teacher: keras.Model, config: bert.BertConfig, settings: TrainerSettings, layers: int):
    """(student classifier with the teacher's weights copied, the teacher layers it started from, the copy map)."""
    sources = student.teacher_layers(config.num_layers, layers)
    model = trainer.build_classifier(bert.build_encoder(dataclasses.replace(config, num_layers=layers)),
                                     len(settings.label_names), settings.pooling, settings.dropout)
    return model, sources, student.copy_from_teacher(teacher, model, sources)


def teacher_probabilities(teacher: keras.Model, examples: tf.data.Dataset) -> np.ndarray:
    """A classifier's (the teacher's) probabilities for every example of `examples`, in its order: one pass over
    length-bucketed batches (each example tagged with its position, so the bucketed order maps back)."""
    tagged = tf.data.Dataset.zip((examples.map(lambda f, _: f), tf.data.Dataset.range(2**62)))
    batches = training_loop.bucket_batches(tagged, PREDICT_BATCH, shuffle=False, seed=0)
    positions, probabilities = [], []

    @tf.function(reduce_retracing=True)
    def predict(feats):
        return teacher(trainer.to_model_inputs(feats), training=False)

    for feats, position in batches:
        positions.append(position.numpy())
        probabilities.append(predict(feats).numpy())
    positions, probabilities = np.concatenate(positions), np.concatenate(probabilities)
    ordered = np.empty_like(probabilities)
    ordered[positions] = probabilities
    return ordered


def with_soft_targets(examples: tf.data.Dataset, probabilities: np.ndarray) -> tf.data.Dataset:
    """(features, [label id, teacher probabilities...]) per example."""
    soft = tf.data.Dataset.from_tensor_slices(probabilities.astype(np.float32))
    return tf.data.Dataset.zip((examples, soft)).map(
        lambda pair, q: (pair[0], tf.reshape(student.pack_targets(pair[1], q[tf.newaxis]), [-1]))).cache()


def _log(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(probabilities, 1e-7))


def accuracy_of(probabilities: np.ndarray, examples: tf.data.Dataset) -> float:
    labels = np.fromiter((int(label) for _, label in examples.as_numpy_iterator()), dtype=np.int64)
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels)) if len(labels) else float("nan")


def eval_figures(model: keras.Model, eval_examples: tf.data.Dataset, eval_soft: np.ndarray) -> dict:
    """The student's kept weights (early stopping restored the best epoch's) on the eval split: its accuracy, how
    often it answers what the teacher answers, and how far its probabilities are from the teacher's
    (KL(teacher || student): what the soft targets teach)."""
    mine = teacher_probabilities(model, eval_examples)
    return {"student_eval_accuracy": accuracy_of(mine, eval_examples),
            "eval_agreement_with_teacher": float(np.mean(np.argmax(mine, axis=-1) == np.argmax(eval_soft, axis=-1))),
            "eval_kl_from_teacher": float(np.mean(np.sum(eval_soft * (_log(eval_soft) - _log(mine)), axis=-1)))}


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    settings = DistillerSettings.from_custom_config(fn_args.custom_config)
    if not settings.enabled:
        raise ValueError("the Distiller runs only with student_layers above 0 (--student-layers N).")
    if not fn_args.base_model:
        raise ValueError("the Distiller has no base_model input (the Trainer's model, its teacher).")
    started = time.time()
    record = teacher_record(fn_args.base_model)
    teacher, config, teacher_settings = build_teacher(fn_args.base_model, record)
    keras.utils.set_random_seed(teacher_settings.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    if tasks.is_multi(teacher_settings.label_key):  # the front door refuses this pair; a hand-made config too
        raise ValueError("the Distiller distils one-label classifiers; this teacher has several label columns "
                         f"({teacher_settings.label_key}).")

    train_examples = trainer.examples(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
    eval_examples = trainer.examples(fn_args.eval_files, fn_args.data_accessor, tf_transform_output)
    train_soft = teacher_probabilities(teacher, train_examples)
    eval_soft = teacher_probabilities(teacher, eval_examples)
    teacher_eval = accuracy_of(eval_soft, eval_examples)
    progress(f"Distiller: the teacher's probabilities on {len(train_soft)} training and {len(eval_soft)} eval examples "
             f"(teacher eval accuracy {teacher_eval:.3f}, {time.time() - started:.0f} s)")
    batch = teacher_settings.batch_size
    train_ds = trainer.batches(with_soft_targets(train_examples, train_soft), batch, True, teacher_settings.seed)
    eval_ds = trainer.batches(with_soft_targets(eval_examples, eval_soft), batch, False, teacher_settings.seed)
    train_ds, plan = training_loop.plan_steps(train_ds, settings.distill_epochs, fn_args.train_steps)
    epochs, steps_per_epoch, total_steps, batches_per_epoch = (plan.epochs, plan.steps_per_epoch, plan.total_steps,
                                                               plan.batches_per_epoch)

    compute = precision.choose(teacher_settings.precision, len(tf.config.list_physical_devices("GPU")))
    with precision.keras_policy(compute):
        model, sources, copied = build_student(teacher, config, teacher_settings, settings.student_layers)
        model.compile(
            optimizer=optimization.make_optimizer(settings.distill_learning_rate, teacher_settings.warmup_ratio,
                                                  teacher_settings.weight_decay, total_steps),
            loss=student.DistillationLoss(settings.temperature, settings.soft_weight),
            metrics=[student.LabelAccuracy(), student.LabelCrossEntropy(name=training_loop.CROSS_ENTROPY)])
    progress(f"Distiller: a student of {settings.student_layers} layers from the teacher's layers "
             f"{', '.join(str(i + 1) for i in sources)} of {config.num_layers} ({len(copied)} tensors copied); "
             f"{total_steps} steps, soft weight {settings.soft_weight:g}, temperature {settings.temperature:g}")

    speed = training_loop.EpochProgress(steps_per_epoch or batches_per_epoch, epochs, name="Distiller")
    callbacks = [keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq=50), speed]
    if epochs > 1:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=teacher_settings.early_stopping_patience,
            restore_best_weights=True))
    history = model.fit(train_ds, validation_data=eval_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=callbacks, verbose=0).history
    figures = eval_figures(model, eval_examples, eval_soft)
    progress(f"Distiller: student eval accuracy {figures['student_eval_accuracy']:.3f} (teacher {teacher_eval:.3f}), "
             f"same answer as the teacher on {figures['eval_agreement_with_teacher']:.1%} of the eval split, "
             f"{time.time() - started:.0f} s")
    if compute != "float32":  # served in float32 whatever the training precision, as the Trainer's model
        with precision.keras_policy("float32"):
            trained, model = model, build_student(teacher, config, teacher_settings, settings.student_layers)[0]
            model.set_weights(trained.get_weights())
    serving_model_dir = fn_args.serving_model_dir
    tf.io.gfile.makedirs(os.path.dirname(serving_model_dir.rstrip("/")))
    trainer.write_history(  # one record layout for both models
        serving_model_dir, history, teacher_settings, total_steps, steps_per_epoch or batches_per_epoch,
        restored_best=epochs > 1, steps_per_second=speed.steps_per_second(), step_loss=speed.step_loss,
        compute=compute, started_from=fn_args.base_model,
        encoder=dataclasses.replace(config, num_layers=settings.student_layers),
        peak_learning_rate=settings.distill_learning_rate,
        extra={"distillation": {
            "settings": settings.to_custom_config(), "teacher": fn_args.base_model,
            "teacher_layers": config.num_layers, "student_layers": settings.student_layers,
            "copied_from_teacher_layers": list(sources), "copied_tensors": copied,
            "teacher_eval_accuracy": teacher_eval, **figures, "seconds": time.time() - started}})
    trainer.export(model, fn_args, tf_transform_output, teacher_settings, tasks.of_settings(teacher_settings),
                   serving_model_dir)
