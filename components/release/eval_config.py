"""The Evaluator's gates as a TFMA EvalConfig built from `EvaluatorSettings`: which models are blessed.

Every task (label column, components/tasks.py) gets the same gates on its own output: its accuracy and macro F1
against the absolute floors and against the model in service. TFMA blesses a model only when every threshold holds,
so one task that got worse blocks the push however much the others improved. Each task's metrics weigh the rows by
that task's example weight (0 where the row has no label in its column), so a missing label is left out, not scored.
"""

from __future__ import annotations

from typing import Sequence

from components.settings.evaluator import EvaluatorSettings
from components.tasks import PROBABILITIES, Task


def _task_specs(tfma, settings: EvaluatorSettings, task: Task):
    """The metrics specs of one task: its accuracy gate, one-vs-rest metrics per class and the macro F1 gate."""
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
    per_class = [tfma.MetricConfig(class_name="Precision"), tfma.MetricConfig(class_name="Recall"),
                 tfma.MetricConfig(class_name="F1Score")]
    if len(class_ids) == 2:
        per_class.append(tfma.MetricConfig(class_name="AUC"))
    return [
        # With several tasks the example count is the task's: the rows with its label (the others weigh 0).
        tfma.MetricsSpec(output_names=outputs, metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=accuracy_threshold)]),
        # One-vs-rest per class (precision/recall/F1, AUC for binary tasks) and their macro average.
        tfma.MetricsSpec(
            output_names=outputs, metrics=per_class,
            binarize=tfma.BinarizationOptions(class_ids={"values": class_ids}),
            aggregate=tfma.AggregationOptions(macro_average=True, class_weights={i: 1.0 for i in class_ids})),
        # The macro F1 gate: a spec of its own, aggregated only, so the threshold applies to the macro average
        # and not to each class's F1 (a threshold in the spec above would apply to both).
        tfma.MetricsSpec(
            output_names=outputs, metrics=[tfma.MetricConfig(class_name="F1Score", threshold=f1_threshold)],
            aggregate=tfma.AggregationOptions(macro_average=True, class_weights={i: 1.0 for i in class_ids})),
    ]


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
