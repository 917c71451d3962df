"""The Evaluator's gates: which models are blessed, as a TFMA EvalConfig built from `EvaluatorSettings`."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from components import features
from components.settings import setting, validate


@dataclasses.dataclass(frozen=True)
class EvaluatorSettings:
    """A model is blessed only when, on the eval split, its accuracy is at least `min_accuracy` and its macro F1 at
    least `min_macro_f1`, and neither is lower than the model in service's by more than `max_accuracy_drop` /
    `max_macro_f1_drop` (TFX drops those two checks on the first run: no model in service). Macro F1 is what a model
    that only the majority class likes fails: its F1 is 0 on every other class, so its macro F1 is at most 1/k for
    k classes (at most 0.5 for two), however high its accuracy."""

    COMPONENT: ClassVar[str] = "Evaluator"

    min_accuracy: float = setting(0.6, "eval accuracy a model needs to be blessed", flag="--min-accuracy",
                                  unit_interval=True)
    max_accuracy_drop: float = setting(
        0.01, "how far below the model in service a new model's eval accuracy may be and still be blessed",
        flag="--max-accuracy-drop", unit_interval=True)
    min_macro_f1: float = setting(0.5, "eval macro F1 (the mean of the classes' F1) a model needs to be blessed; a "
                                       "model that predicts only the majority class has at most 1/classes",
                                  flag="--min-macro-f1", unit_interval=True)
    max_macro_f1_drop: float = setting(
        0.02, "how far below the model in service a new model's eval macro F1 may be and still be blessed",
        flag="--max-macro-f1-drop", unit_interval=True)
    accept_new_classes: bool = setting(
        False, "bless a model whose classes differ from the model in service's (after a class was added to the "
               "schema) on the absolute gates alone; without it such a model is not comparable and not blessed",
        flag="--accept-new-classes")

    def __post_init__(self):
        validate(self)


def make_eval_config(settings: EvaluatorSettings, num_classes: int):
    """Metrics on the eval split, and the thresholds that decide the blessing."""
    import tensorflow_model_analysis as tfma  # deferred: heavy, and the runners' --help does not need it

    class_ids = list(range(num_classes))
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
    if num_classes == 2:
        per_class.append(tfma.MetricConfig(class_name="AUC"))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="serving_examples",
            prediction_key="probabilities",
            label_key=features.LABEL_ID_KEY,
            preprocessing_function_names=["transform_features"])],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=accuracy_threshold),
            ]),
            # One-vs-rest per class (precision/recall/F1, AUC for binary tasks) and their macro average.
            tfma.MetricsSpec(
                metrics=per_class,
                binarize=tfma.BinarizationOptions(class_ids={"values": class_ids}),
                aggregate=tfma.AggregationOptions(
                    macro_average=True, class_weights={i: 1.0 for i in class_ids})),
            # The macro F1 gate: a spec of its own, aggregated only, so the threshold applies to the macro average
            # and not to each class's F1 (a threshold in the spec above would apply to both).
            tfma.MetricsSpec(
                metrics=[tfma.MetricConfig(class_name="F1Score", threshold=f1_threshold)],
                aggregate=tfma.AggregationOptions(
                    macro_average=True, class_weights={i: 1.0 for i in class_ids})),
        ])
