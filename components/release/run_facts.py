"""Facts of a run read from its artifacts (by URI, local or remote): the anomalies and warnings the validators
recorded, the examples per split, and why TFMA did not bless a model. Read by the run summary
(components/release/run_summary.py) and each step's key figure (pipeline/local/step_figures.py)."""

from __future__ import annotations

import math
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


def _metric_name(failure) -> str:
    """The failed metric's name as the run summary shows it: "macro_f1_score", "rating/sparse_categorical_accuracy"."""
    name = failure.metric_key.name
    if "f1" in name.lower() and failure.metric_key.HasField("aggregation_type") and not name.startswith("macro_"):
        name = f"macro_{name}"  # TFMA's own macro average (an eval_config given whole on Kubeflow)
    if failure.metric_key.output_name:  # one task among several: "rating/macro_f1_score ..."
        name = f"{failure.metric_key.output_name}{OUTPUT_SEPARATOR}{name}"
    return name


def _flag(key) -> str:
    """The flag that sets a gate of ours ("" for a threshold of a whole eval_config given on Kubeflow)."""
    metric = key.name.lower()  # not the task's column, which may hold "f1"
    kind = "macro-f1" if "f1" in metric else "accuracy" if "accuracy" in metric else ""
    if not kind:
        return ""
    return f"--max-{kind}-drop" if key.is_diff else f"--min-{kind}"


def _not_judged(failure, name: str, flag: str, metrics: Dict[str, float]) -> Optional[str]:
    """The sentence for a gate that received no number (a NaN, or no value at all): which metric, and why, never
    as a threshold it failed; None when the metric is a number."""
    missing = not failure.metric_value.HasField("double_value")
    if not missing and not math.isnan(failure.metric_value.double_value.value):
        return None
    head = f"{name} was not judged" + (f" ({flag})" if flag else "")
    if missing:
        told = (failure.message or "Metric not found.").strip()
        if failure.metric_key.is_diff:
            return (f"{head}: TFMA has no value of it for the candidate or for the model in service, so there is "
                    f"nothing to compare ({told})")
        return f"{head}: TFMA computed no value of it on the eval split ({told})"
    task = f"{failure.metric_key.output_name}{OUTPUT_SEPARATOR}" if failure.metric_key.output_name else ""
    if failure.metric_key.is_diff and metrics.get(name) is not None:
        return f"{head}: the model in service's value is NaN (not a number), so there is nothing to compare with"
    if not metrics.get(f"{task}example_count"):
        return (f"{head}: its value is NaN (not a number) because the eval split has no example labelled in "
                f"{'this column' if task else 'the label column'}")
    return f"{head}: its value is NaN (not a number): TFMA had nothing to divide by on the eval split"


def describe_failure(failure, metrics: Dict[str, float]) -> str:
    """One failed threshold as a sentence; with several label columns the metric's name starts with its task's
    column ("rating/sparse_categorical_accuracy is 0.0400 below the model in service's ..."). A NaN or a missing
    metric is said to be one, naming the cause: no gate compares it with its bound."""
    name = _metric_name(failure)
    flag = _flag(failure.metric_key)
    unjudged = _not_judged(failure, name, flag, metrics)
    if unjudged:
        return unjudged
    flag = f" ({flag})" if flag else ""
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if failure.metric_key.is_diff:
        bound = threshold.change_threshold.absolute.value
        candidate = metrics.get(name)
        values = (f" ({candidate:.4f} against {candidate - value:.4f})" if candidate is not None else "")
        return (f"{name} is {-value:.4f} below the model in service's{values}; the most it may drop is "
                f"{-bound:.4g}{flag}")
    bounds = threshold.value_threshold
    if bounds.HasField("lower_bound") and value < bounds.lower_bound.value:
        return f"{name} {value:.4f} is below the minimum {bounds.lower_bound.value:.4g}{flag}"
    if bounds.HasField("upper_bound") and value > bounds.upper_bound.value:
        return f"{name} {value:.4f} is above the maximum {bounds.upper_bound.value:.4g}"
    return f"{name} {value:.4f} fails its threshold ({str(threshold).replace(chr(10), ' ')})"
