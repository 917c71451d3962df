"""The macro F1 the Evaluator reports and gates: a TFMA metric that is never NaN on a split with examples.

TFMA's own macro average of the one-vs-rest F1Score averages every class of the model: a class with no example in
the eval split and never predicted has F1 0/0 = NaN, the average is NaN, and its gate fails every model of a column
with a long tail of rare classes. This metric takes TFMA's multi-class confusion matrix (each example's class is its
highest probability, the served model's `label`) and averages the F1 of the classes that occur in the split judged
(a weighted count above 0: with several label columns a row without this task's label weighs 0). A class answered
but absent from the split adds no F1 of its own; its wrong answers still lower the recall of the classes they were
given for. The classes averaged and those left out are metrics of their own (`macro_f1_classes`,
`macro_f1_absent_classes`), so the run report can say which. A split without any example still gives NaN: there is
nothing to judge, and the gate says so (components/release/run_facts.py).

The test split's macro F1 (components/release/model_metrics.py) is the same definition, through scikit-learn.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_util, multi_class_confusion_matrix_metrics

NAME = "macro_f1_score"
CLASSES_NAME = "macro_f1_classes"  # the classes averaged, by name
ABSENT_NAME = "macro_f1_absent_classes"  # the model's classes with no example in the split judged
_ARGMAX = 0.0  # TFMA's multi-class matrix counts the top class when its probability is above this: always


def average_f1(counts: Dict[Tuple[int, int], float]) -> Tuple[float, List[int]]:
    """(macro F1, the class ids averaged) of a confusion matrix given as {(true id, predicted id): weighted count}:
    each class with a count above 0 among the true ids, F1 = 2 TP / (true + predicted); NaN and [] when no class
    has one."""
    true, predicted, right = {}, {}, {}
    for (actual, answer), count in counts.items():
        true[actual] = true.get(actual, 0.0) + count
        predicted[answer] = predicted.get(answer, 0.0) + count
        if actual == answer:
            right[actual] = right.get(actual, 0.0) + count
    present = sorted(c for c, n in true.items() if n > 0)
    if not present:
        return math.nan, []
    scores = [2 * right.get(c, 0.0) / (true[c] + predicted.get(c, 0.0)) for c in present]
    return float(sum(scores) / len(scores)), present


def _names(ids: Sequence[int], classes: Sequence[str]) -> np.ndarray:
    return np.array([classes[i] if 0 <= i < len(classes) else str(i) for i in ids], dtype=object)


def _computations(name: str = NAME, classes: Optional[List[str]] = None, eval_config=None, model_name: str = "",
                  output_name: str = "", example_weighted: bool = False):
    classes = list(classes or [])
    key = tfma.metrics.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    averaged_key = key._replace(name=CLASSES_NAME)
    absent_key = key._replace(name=ABSENT_NAME)
    computations = multi_class_confusion_matrix_metrics.multi_class_confusion_matrices(
        thresholds=[_ARGMAX], name=f"_{name}_matrices", eval_config=eval_config, model_name=model_name,
        output_name=output_name, example_weighted=example_weighted)
    matrices_key = computations[-1].keys[-1]

    def result(metrics):
        matrix = metrics[matrices_key].get(_ARGMAX, {})
        value, averaged = average_f1({(k.actual_class_id, k.predicted_class_id): n for k, n in matrix.items()})
        absent = [i for i in range(len(classes)) if i not in averaged]
        return {key: value, averaged_key: _names(averaged, classes), absent_key: _names(absent, classes)}

    computations.append(tfma.metrics.DerivedMetricComputation(keys=[key, averaged_key, absent_key], result=result))
    return computations


class MacroF1Score(tfma.metrics.Metric):
    """Macro F1 over the classes that occur in the split judged (`classes`: the task's class names, by label id)."""

    def __init__(self, name: str = NAME, classes: Optional[List[str]] = None):
        super().__init__(metric_util.merge_per_key_computations(_computations), name=name, classes=classes)
