"""The Evaluator's gates: which models are blessed, as a TFMA EvalConfig built from `EvaluatorSettings`."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from components import features
from components.settings import setting, validate


@dataclasses.dataclass(frozen=True)
class EvaluatorSettings:
    """A model is blessed only when its eval accuracy is at least `min_accuracy` and not lower than the model in
    service's by more than `max_accuracy_drop` (TFX drops the second check on the first run: no model in service)."""

    COMPONENT: ClassVar[str] = "Evaluator"

    min_accuracy: float = setting(0.6, "eval accuracy a model needs to be blessed", flag="--min-accuracy",
                                  unit_interval=True)
    max_accuracy_drop: float = setting(
        0.01, "how far below the model in service a new model's eval accuracy may be and still be blessed",
        flag="--max-accuracy-drop", unit_interval=True)

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
        ])
