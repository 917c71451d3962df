"""The label columns of a run at the front door: which columns, each one's classes, and which may go without a value.

`--label-column` names one column or several (components/tasks.py); a built-in dataset brings its own
(pipeline/data/datasets.py). Each column's classes come from the schema's domain for it (curated, given
or frozen), else from the training data's values. With several columns, a column whose schema feature does not require
a value (no `presence.min_fraction: 1`) may leave rows empty: those rows train and score the other tasks only. Without
a schema yet, every column of a several-label run may (the schema inferred and frozen by the first run then records
which columns had gaps); a one-label run always needs every label.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Optional, Sequence, Tuple

from components.ingestion import csv_checks
from components.ingestion.csv_files import label_columns
from components.validation import schema_file
from pipeline.cli.errors import InputError, as_input_errors
from pipeline.data import datasets


def label_key_of(args: argparse.Namespace, dataset: str) -> str:
    """--label-column as given, else the built-in dataset's label columns (custom data: 'label')."""
    if getattr(args, "label_key", None):
        return args.label_key
    return datasets.label_columns_of(dataset)


@dataclasses.dataclass(frozen=True)
class LabelPlan:
    """What the front door found out about the label columns before reading the data."""

    columns: Tuple[str, ...]
    domains: Tuple[Optional[Tuple[str, ...]], ...]  # the schema's domain of each column (None: not restricted)
    missing_allowed: Tuple[str, ...]  # the columns whose rows may go without a value

    @property
    def check_domains(self):
        """check_input's `label_domain`: the one domain, or {column: domain} with several columns."""
        if len(self.columns) == 1:
            return self.domains[0]
        return dict(zip(self.columns, self.domains))


@as_input_errors()
def plan(schema: Optional[str], label_key: str) -> LabelPlan:
    """The columns of `label_key` with their schema domains and whether each may be empty (a local schema file or
    None)."""
    columns = label_columns(label_key)
    domains = tuple(schema_file.schema_label_names(schema, c) if schema else None for c in columns)
    if len(columns) == 1:
        allowed: Tuple[str, ...] = ()
    elif schema:
        allowed = tuple(c for c in columns if schema_file.schema_allows_missing(schema, c))
    else:
        allowed = columns
    return LabelPlan(columns, domains, allowed)


def require_two_classes(labels: Sequence[str], label_key: str) -> Tuple[str, ...]:
    """A column's classes, at least two (InputError naming the column otherwise)."""
    if len(set(labels)) < 2:
        raise InputError(f"the data has {len(set(labels))} distinct label value(s) in column {label_key!r}; a "
                         "classifier needs at least 2.", "TOO_FEW_CLASSES", label_key)
    return tuple(labels)


def domains(label_plan: LabelPlan, data_root: Path, splits: Sequence[str], text_key: str,
            label_key: str) -> Tuple[Tuple[str, ...], ...]:
    """Each column's classes: the schema's domain, else the training data's values (sorted)."""
    with as_input_errors():
        return tuple(require_two_classes(
            domain or csv_checks.label_values(data_root, splits, text_key, label_key, column=i), column)
            for i, (column, domain) in enumerate(zip(label_plan.columns, label_plan.domains)))


def settings_for(columns: Sequence[str], label_domains: Sequence[Sequence[str]]) -> dict:
    """The Transform and Trainer settings that hold the classes: label_names for one column, task_label_names for
    several."""
    if len(columns) == 1:
        return {"label_names": tuple(label_domains[0]), "task_label_names": ()}
    return {"label_names": (), "task_label_names": tuple(tuple(d) for d in label_domains)}
