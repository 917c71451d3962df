"""The classification tasks of a run: one per label column, each with its own classes.

`--label-column rating,condition` names several columns; each is a task, and one model with one shared encoder and
one head per task learns them all. A run with one label column is the single task it always was: its keys are the
plain ones (`label_id`, `probabilities`, `label`), so its examples, signatures and metrics are unchanged. With several,
every key carries the column's name (`label_id_rating`, `rating/probabilities`, ...), the same in Transform's output,
the trainer, the serving signatures, the Evaluator and the clients.

A task's column may leave a row without a value (an aspect the text does not mention) when the schema lets it (no
`presence.min_fraction: 1`): Transform gives that row the label id MISSING, and the loss, the metrics and the
Evaluator leave it out of that task, never guessing it.

No TensorFlow here: the runners and the servers read the names before TensorFlow is loaded.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence, Tuple

from components import features

SEPARATOR = ","  # between the columns of --label-column
MISSING = -1  # the label id of a row with no value in a task's column (and, refused before Transform, an unknown one)
OUTPUT_SEPARATOR = "/"  # between a task's column and an output's name: "rating/probabilities"
# The serving outputs of each task (ServingModule in components/module_files/trainer.py).
PROBABILITIES, LABEL, LABEL_ID = "probabilities", "label", "label_id"
WEIGHT_PREFIX = "label_weight_"  # the Evaluator's example weight of a task: 1 with a label, 0 without


def label_columns(label_key: str) -> Tuple[str, ...]:
    """The label columns `--label-column` names, in its order; ValueError for an empty or repeated one."""
    columns = tuple(c.strip() for c in label_key.split(SEPARATOR))
    if not all(columns):
        raise ValueError(f"--label-column {label_key!r} has an empty column name; name the columns separated by "
                         f"commas, e.g. --label-column rating,condition.")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"--label-column {label_key!r} names {', '.join(repeated)} more than once.")
    bad = [c for c in columns if OUTPUT_SEPARATOR in c]
    if bad:
        raise ValueError(f"--label-column: the column name {bad[0]!r} holds {OUTPUT_SEPARATOR!r}, which separates a "
                         "task from its outputs in the serving signatures; rename the column.")
    return columns


@dataclasses.dataclass(frozen=True)
class Task:
    """One label column: its classes (label id i is classes[i]) and the names its values travel under."""

    column: str
    classes: Tuple[str, ...]
    multi: bool = False  # one of several tasks: its keys carry the column's name

    @property
    def label_id_key(self) -> str:
        """Transform's output: the label's position in the column's domain (MISSING without a value)."""
        return f"{features.LABEL_ID_KEY}_{self.column}" if self.multi else features.LABEL_ID_KEY

    @property
    def weight_key(self) -> str:
        """The Evaluator's example weight of this task (the transform_features signature adds it)."""
        return f"{WEIGHT_PREFIX}{self.column}"

    def output(self, name: str) -> str:
        """A serving output of this task: `probabilities` alone, `rating/probabilities` among several."""
        return f"{self.column}{OUTPUT_SEPARATOR}{name}" if self.multi else name

    @property
    def name(self) -> str:
        """The task's name in the model's outputs, metrics and messages ("" for the one task of a one-label run)."""
        return self.column if self.multi else ""


def tasks_of(label_key: str, label_names: Sequence[str] = (),
             task_label_names: Sequence[Sequence[str]] = ()) -> Tuple[Task, ...]:
    """The tasks of a run from its settings: one task with `label_names` for one label column, else one per column
    with its domain from `task_label_names` (in the columns' order)."""
    columns = label_columns(label_key)
    if len(columns) == 1:
        return (Task(columns[0], tuple(label_names)),)
    if len(task_label_names) != len(columns):
        raise ValueError(f"{len(columns)} label columns ({', '.join(columns)}) but {len(task_label_names)} label "
                         "domains (task_label_names).")
    return tuple(Task(c, tuple(names), multi=True) for c, names in zip(columns, task_label_names))


def parse_weights(text: str, columns: Sequence[str]) -> Tuple[float, ...]:
    """--task-weights ("2,1": one per label column, in order) as numbers; equal weights when empty. ValueError
    otherwise."""
    if not text.strip():
        return tuple(1.0 for _ in columns)
    parts = [p.strip() for p in text.split(SEPARATOR)]
    try:
        weights = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--task-weights {text!r}: the weights must be numbers, one per label column "
                         f"({', '.join(columns)}), separated by commas.") from None
    if len(weights) != len(columns):
        raise ValueError(f"--task-weights {text!r} gives {len(weights)} weight(s) for {len(columns)} label column(s) "
                         f"({', '.join(columns)}); give one per column, in that order.")
    if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
        raise ValueError(f"--task-weights {text!r}: the weights must not be negative, and one must be above 0.")
    return weights


def class_names_record(tasks: Sequence[Task]):
    """What class_names.json holds: the class list of the one task, or {column: classes} for several."""
    if len(tasks) == 1 and not tasks[0].multi:
        return list(tasks[0].classes)
    return {t.column: list(t.classes) for t in tasks}


def classes_by_task(record) -> Mapping[str, Tuple[str, ...]]:
    """class_names.json read back as {task name: classes} ("" for a one-label model's list)."""
    if isinstance(record, Mapping):
        return {k: tuple(v) for k, v in record.items()}
    return {"": tuple(record)}


def task_of_output(output_name: str) -> Optional[str]:
    """The task an output or metric key belongs to ("rating/probabilities" -> "rating"), None for a one-task key."""
    column, sep, _ = output_name.partition(OUTPUT_SEPARATOR)
    return column if sep else None
