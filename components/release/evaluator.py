"""The Evaluator's executor: TFX's, except that a candidate and a model in service with different classes are never
compared (TFMA would fail comparing a 6-class candidate with a 5-class baseline).

Such a pair is "not comparable": the candidate is evaluated alone, and it is not blessed, with the reason written to
the evaluation artifact (`not_comparable.json`, read by the run summary). After a class was added to the schema on
purpose, `--accept-new-classes` (EvaluatorSettings.accept_new_classes) blesses it on the absolute gates alone.
The classes of a model are the `class_names.json` the Trainer writes beside its serving model.

The baseline is BaselineLookup's copy of the model in service (components/baselines/lookup.py); when nothing is in
service yet the candidate is evaluated alone, and the blessing names the served folder it was compared with.
"""

import json
import os
from typing import Optional, Sequence, Union

from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_component_specs

from components.baselines import lookup
from components.features import CLASS_NAMES_FILE

NOT_COMPARABLE_FILE = "not_comparable.json"  # in the evaluation artifact, when the classes differ


UNKNOWN_NAME = "?"  # a class of a model whose names were not recorded (only their number is known)


def class_names_of(model_uri: str) -> Optional[Union[Sequence[str], dict]]:
    """The class names of a Model artifact, in label-id order: the Trainer's class_names.json ({column: classes} with
    several label columns). A model trained before
    the Trainer wrote that file tells only how many classes it has (its output's width): UNKNOWN_NAME for each. None
    when neither can be read."""
    import tensorflow as tf

    path = os.path.join(model_uri, CLASS_NAMES_FILE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
    try:
        import tensorflow_text  # noqa: F401  (the serving model's tokenizer ops)

        serve = tf.saved_model.load(os.path.join(model_uri, "Format-Serving")).signatures["serving_default"]
        width = int(serve(text=tf.constant(["a"]))["probabilities"].shape[-1])
    except (OSError, KeyError, ValueError, tf.errors.OpError):
        return None
    return [UNKNOWN_NAME] * width


def same_classes(theirs, ours) -> bool:
    """Whether two models' outputs mean the same classes (by number alone when a model's names are unknown). With
    several label columns class_names.json is {column: classes}: the same columns, each with the same classes."""
    if isinstance(theirs, dict) or isinstance(ours, dict):
        return isinstance(theirs, dict) and isinstance(ours, dict) and list(theirs) == list(ours) and all(
            same_classes(theirs[c], ours[c]) for c in ours)
    if UNKNOWN_NAME in theirs or UNKNOWN_NAME in ours:
        return len(theirs) == len(ours)
    return list(theirs) == list(ours)


def flat_classes(names) -> Sequence[str]:
    """A model's classes as one list: "column: class" for each task's with several label columns."""
    if isinstance(names, dict):
        return [f"{column}: {name}" for column, classes in names.items() for name in classes]
    return list(names)


def not_comparable_reason(evaluation_uri: str) -> Optional[dict]:
    import tensorflow as tf

    path = os.path.join(evaluation_uri, NOT_COMPARABLE_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


class Executor(evaluator_executor.Executor):
    """Refuses to compare models whose classes differ: not blessed (the default) or judged alone."""

    accept_new_classes = False

    def Do(self, input_dict, output_dict, exec_properties):
        import tensorflow as tf

        baseline = [m for m in input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or [] if lookup.found(m)]
        input_dict = {**input_dict, standard_component_specs.BASELINE_MODEL_KEY: baseline}
        served = lookup.source(baseline[0]) if baseline else ""
        note = None
        if baseline:
            theirs = class_names_of(baseline[0].uri)
            ours = class_names_of(input_dict[standard_component_specs.MODEL_KEY][0].uri)
            if theirs is not None and ours is not None and not same_classes(theirs, ours):
                note = {"baseline_model": served or baseline[0].uri, "baseline_classes": flat_classes(theirs),
                        "candidate_classes": flat_classes(ours), "accepted": self.accept_new_classes}
                input_dict = {**input_dict, standard_component_specs.BASELINE_MODEL_KEY: []}
        super().Do(input_dict, output_dict, exec_properties)
        if served and not note:  # the model card and the run report name the folder in service, not its copy
            output_dict[standard_component_specs.BLESSING_KEY][0].set_string_custom_property(
                constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, served)
        if note is None:
            return
        evaluation = output_dict[standard_component_specs.EVALUATION_KEY][0]
        with tf.io.gfile.GFile(os.path.join(evaluation.uri, NOT_COMPARABLE_FILE), "w") as f:
            json.dump(note, f)
        if self.accept_new_classes:
            return
        blessing = output_dict[standard_component_specs.BLESSING_KEY][0]
        blessed = os.path.join(blessing.uri, constants.BLESSED_FILE_NAME)
        if tf.io.gfile.exists(blessed):
            tf.io.gfile.remove(blessed)
        with tf.io.gfile.GFile(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME), "w") as f:
            f.write("")
        blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY, constants.NOT_BLESSED_VALUE)


class AcceptNewClassesExecutor(Executor):
    accept_new_classes = True
