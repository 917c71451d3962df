"""Facts of a run read from its artifacts (by URI, local or remote): the anomalies and warnings the validators
recorded, the examples per split, and why TFMA did not bless a model. Shared by the local run's summary
(pipeline/cli/summary.py, which finds the artifacts in ML Metadata) and the Kubeflow run report
(components/release/run_report.py, which is handed them)."""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from components.tasks import OUTPUT_SEPARATOR


def anomalies_and_warnings(artifacts: List[Tuple[str, str, str]]) -> Tuple[List[dict], List[str]]:
    """(anomalies, warnings) of ExampleAnomalies artifacts given as (found_by node, uri, split names): each anomaly
    a record naming the node that found it, each warning (a kind that does not stop the run) a sentence, said once
    for all the splits it was found in."""
    from components.validation.gates import anomaly_problems, is_warning, load_anomalies, said_once

    problems = [{**p, "found_by": node} for node, uri, split_names in artifacts
                for p in anomaly_problems(load_anomalies(uri, split_names))]
    return [p for p in problems if not is_warning(p)], said_once([p for p in problems if is_warning(p)])


def split_counts(statistics_uri: str) -> Dict[str, int]:
    """Examples per split, from StatisticsGen's output (a local folder or a URI)."""
    import tensorflow as tf
    from tensorflow_data_validation.utils import stats_util

    counts = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(statistics_uri, "Split-*", "FeatureStats.pb"))):
        split = os.path.basename(os.path.dirname(path))[len("Split-"):]
        stats = stats_util.load_stats_binary(path)
        counts[split] = int(stats.datasets[0].num_examples) if stats.datasets else 0
    return counts



def validation_failures(evaluation_uri: str, metrics: Optional[Dict[str, float]] = None) -> List[str]:
    """Why TFMA did not bless the model, one sentence per failed threshold: the metric, its value and the bound.
    `metrics` (the candidate's, from `evaluator_metrics`) lets a failed change threshold name both values."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    if result.validation_ok:  # every threshold passed (not blessed for another reason, e.g. not comparable)
        return []
    reasons = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            reasons.append(describe_failure(failure, metrics or {}))
    if not reasons and result.HasField("validation_details"):
        reasons.append(str(result.validation_details).replace("\n", " "))
    return reasons


def describe_failure(failure, metrics: Dict[str, float]) -> str:
    """One failed threshold as a sentence; with several label columns the metric's name starts with its task's
    column ("rating/sparse_categorical_accuracy is 0.0400 below the model in service's ...")."""
    name = failure.metric_key.name
    if not failure.metric_value.HasField("double_value"):
        return f"{name}: {failure.message or str(failure).replace(chr(10), ' ')}"
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    f1 = "f1" in name.lower()
    if f1 and failure.metric_key.HasField("aggregation_type"):
        name = f"macro_{name}"
    if failure.metric_key.output_name:  # one task among several: "task 'rating': rating/macro_f1_score ..."
        name = f"{failure.metric_key.output_name}{OUTPUT_SEPARATOR}{name}"
    if failure.metric_key.is_diff:
        bound = threshold.change_threshold.absolute.value
        candidate = metrics.get(name)
        values = (f" ({candidate:.4f} against {candidate - value:.4f})" if candidate is not None else "")
        return (f"{name} is {-value:.4f} below the model in service's{values}; the most it may drop is "
                f"{-bound:.4g} ({'--max-macro-f1-drop' if f1 else '--max-accuracy-drop'})")
    bounds = threshold.value_threshold
    if bounds.HasField("lower_bound") and value < bounds.lower_bound.value:
        return (f"{name} {value:.4f} is below the minimum {bounds.lower_bound.value:.4g} "
                f"({'--min-macro-f1' if f1 else '--min-accuracy'})")
    if bounds.HasField("upper_bound") and value > bounds.upper_bound.value:
        return f"{name} {value:.4f} is above the maximum {bounds.upper_bound.value:.4g}"
    return f"{name} {value:.4f} fails its threshold ({str(threshold).replace(chr(10), ' ')})"
