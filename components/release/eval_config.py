"""The Evaluator's gates as a TFMA EvalConfig built from `EvaluatorSettings`: which models are blessed.

Every task (label column, components/tasks.py) gets the same gates on its own output: its accuracy and macro F1
against the absolute floors and against the model in service. TFMA blesses a model only when every threshold holds,
so one task that got worse blocks the push however much the others improved. Each task's metrics weigh the rows by
that task's example weight (0 where the row has no label in its column), so a missing label is left out, not scored.

Macro F1 is this project's TFMA metric (components/release/macro_f1.py): the mean F1 of the classes that occur in
the eval split, never NaN because a rare class has no eval example. The per-class figures keep every class.
"""

from __future__ import annotations

import json
from typing import Sequence

from components.settings.evaluator import EvaluatorSettings
from components.tasks import PROBABILITIES, Task

MACRO_F1_MODULE = "components.release.macro_f1"  # the module TFMA imports MacroF1Score from


def _task_specs(tfma, settings: EvaluatorSettings, task: Task):
    """The metrics specs of one task: its accuracy and macro F1 gates, and one-vs-rest metrics per class."""
    class_ids = list(range(len(task.classes)))
    outputs = [task.column] if task.multi else []
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": settings.min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -settings.max_accuracy_drop}))
    f1_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": settings.min_macro_f1}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -settings.max_macro_f1_drop}))
    specs = [
        # With several tasks the example count is the task's: the rows with its label (the others weigh 0).
        tfma.MetricsSpec(output_names=outputs, metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=accuracy_threshold),
            tfma.MetricConfig(class_name="MacroF1Score", module=MACRO_F1_MODULE, threshold=f1_threshold,
                              config=json.dumps({"classes": list(task.classes)}))]),
        # One-vs-rest per class, every class of the task, without a macro average: TFMA's averages every class,
        # and a class without an eval example would make it NaN (the macro F1 above does not).
        tfma.MetricsSpec(
            output_names=outputs, metrics=[tfma.MetricConfig(class_name=name)
                                           for name in ("Precision", "Recall", "F1Score")],
            binarize=tfma.BinarizationOptions(class_ids={"values": class_ids})),
    ]
    if len(class_ids) == 2:  # AUC per class and its mean: a two-class split without one of them has no AUC at all
        specs.append(tfma.MetricsSpec(
            output_names=outputs, metrics=[tfma.MetricConfig(class_name="AUC")],
            binarize=tfma.BinarizationOptions(class_ids={"values": class_ids}),
            aggregate=tfma.AggregationOptions(macro_average=True, class_weights={i: 1.0 for i in class_ids})))
    return specs


def make_eval_config(settings: EvaluatorSettings, label_tasks: Sequence[Task]):
    """Metrics on the eval split, and the thresholds that decide the blessing (`label_tasks`: the run's tasks)."""
    import tensorflow_model_analysis as tfma  # deferred: heavy, and the runners' --help does not need it
    if len(label_tasks) == 1 and not label_tasks[0].multi:
        task = label_tasks[0]
        spec = tfma.ModelSpec(signature_name="serving_examples", prediction_key=PROBABILITIES,
                              label_key=task.label_id_key, preprocessing_function_names=["transform_features"])
    else:
        spec = tfma.ModelSpec(
            signature_name="serving_examples",
            prediction_keys={t.column: t.output(PROBABILITIES) for t in label_tasks},
            label_keys={t.column: t.label_id_key for t in label_tasks},
            example_weight_keys={t.column: t.weight_key for t in label_tasks},
            preprocessing_function_names=["transform_features"])
    return tfma.EvalConfig(model_specs=[spec], slicing_specs=[tfma.SlicingSpec()],
                           metrics_specs=[s for t in label_tasks for s in _task_specs(tfma, settings, t)])
