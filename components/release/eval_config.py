"""The Evaluator's gates as a TFMA EvalConfig built from `EvaluatorSettings`: which models are blessed."""

from __future__ import annotations

from components import features
from components.settings.evaluator import EvaluatorSettings


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
