"""What the Trainer (and the Distiller) export: the classifier, the transform graph and the class names, with four
signatures.

- `serving_default`: a batch of raw text strings (`text`) -> per task `probabilities` [batch, classes], `label`
  (class name) and `label_id`; with a pair of text columns (`--text-column question,passage`), one string input per
  column, named after it (`question`, `passage`);
- `serving_examples`: serialized tf.Examples (no label needed; a pair's both text features) -> the same outputs
  (the Evaluator uses it);
- `classification`: TF Serving's classify signature (components/module_files/serving_signatures.py): serialized
  tf.Examples as `inputs` -> `classes` and `scores`, for Classify over gRPC and `:classify` over REST;
- `transform_features`: serialized tf.Examples -> the transformed features (for the Evaluator's labels).

One label column gives the plain output names. With several (components/tasks.py) each task's outputs carry its
column, `rating/probabilities`, `rating/label`, `rating/label_id`, so TF Serving's REST answers (row and columnar) and
gRPC responses hold one entry per task named by the column. TF Serving's Classify answers one set of classes per
example, so the classify signature answers the first label column's task (Predict answers them all).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tf_keras as keras

from components import tasks as tasks_lib
from components.module_files import serving_signatures, training_loop
from components.settings.data import text_columns
from components.tasks import LABEL, LABEL_ID, PROBABILITIES, Task


class ServingModule(tf.Module):
    """The exported module: `model` (the classifier; a warm start restores it by this name), the transform layer and
    each task's class names."""

    def __init__(self, model: keras.Model, tf_transform_output, text_key: str, tasks: Sequence[Task],
                 to_model_inputs):
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        raw_spec = tf_transform_output.raw_feature_spec()
        self._tasks = tuple(tasks)
        self._to_model_inputs = to_model_inputs
        self._text_columns = text_columns(text_key)
        self._serving_spec = {k: v for k, v in raw_spec.items() if k in self._text_columns}
        self._full_spec = {k: v for k, v in raw_spec.items() if k in (*self._text_columns, *(t.column for t in tasks))}
        # The raw texts: one string input `text`, or a pair's one input per text column, named after it (the REST
        # instances' keys).
        names = self._text_columns if len(self._text_columns) > 1 else ("text",)
        self.serve_text = tf.function(self._serve_texts, input_signature=[
            tf.TensorSpec([None], tf.string, name=name) for name in names])
        if len(self._tasks) == 1 and not self._tasks[0].multi:
            self.class_names = tf.constant(self._tasks[0].classes, dtype=tf.string)
        else:  # one tracked constant per task, so the SavedModel holds every task's names
            self.task_class_names = {t.column: tf.constant(t.classes, dtype=tf.string) for t in self._tasks}

    def _names(self, task: Task) -> tf.Tensor:
        return self.class_names if not task.multi else self.task_class_names[task.column]

    def _predict(self, transformed):
        outputs = self.model(self._to_model_inputs(transformed), training=False)
        answers = {}
        for task in self._tasks:
            probabilities = outputs[task.column] if task.multi else outputs
            label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            answers.update({task.output(PROBABILITIES): probabilities, task.output(LABEL_ID): label_id,
                            task.output(LABEL): tf.gather(self._names(task), label_id)})
        return answers

    def _serve_texts(self, *texts):
        return self._predict(self.tft_layer({
            column: training_loop.raw_input_for_text(text, self._serving_spec[column])
            for column, text in zip(self._text_columns, texts)}))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        raw = tf.io.parse_example(examples, self._serving_spec)
        return self._predict(self.tft_layer(raw))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving_signatures.CLASSIFY_INPUT)])
    def classify_examples(self, inputs):
        first = self._tasks[0]
        answers = self._predict(self.tft_layer(tf.io.parse_example(inputs, self._serving_spec)))
        probabilities = answers[first.output(PROBABILITIES)]
        classes = tf.tile(self._names(first)[tf.newaxis, :], [tf.shape(probabilities)[0], 1])
        return {serving_signatures.CLASSES: classes, serving_signatures.SCORES: probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples):
        raw = tf.io.parse_example(examples, self._full_spec)
        transformed = self.tft_layer(raw)
        for task in self._tasks:
            if task.multi and task.label_id_key in transformed:
                # TFMA's labels: a row without this task's label weighs 0 and gets a valid id, so the task's
                # metrics leave it out (and TFMA's one-hot encoding sees no -1).
                label = transformed[task.label_id_key]
                present = label > tasks_lib.MISSING
                transformed[task.weight_key] = tf.cast(present, tf.float32)
                transformed[task.label_id_key] = tf.where(present, label, tf.zeros_like(label))
        return transformed

    def signatures(self):
        return {"serving_default": self.serve_text.get_concrete_function(),
                "serving_examples": self.serve_examples.get_concrete_function(),
                serving_signatures.CLASSIFY_SIGNATURE: self.classify_examples.get_concrete_function(),
                "transform_features": self.transform_features.get_concrete_function()}
