"""Whether a run's model learned: its eval figures against what answering one class would score.

A model that answers the same class for every text scores the eval split's majority share and a macro F1 of at most
one over the number of classes, and every test of serving, signatures or reports built on it proves nothing about a
swapped label order or a tokenizer that differs between training and serving. The shares are counted on the run's
own eval split (ExampleGen's output under the pipeline root), rows without a label left out, as the Evaluator does."""

from __future__ import annotations

import collections
import glob
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

from pipeline.dag import nodes


def label_counts(pipeline_root: Path, column: str = "label", split: str = "eval") -> collections.Counter:
    """The values of a label column in ExampleGen's newest output of `split` (empty cells left out)."""
    import tensorflow as tf

    examples = Path(pipeline_root) / nodes.EXAMPLE_GEN / "examples"
    newest = max(examples.iterdir(), key=lambda p: int(p.name))
    files = sorted(glob.glob(os.path.join(newest, f"Split-{split}", "*")))
    assert files, f"no {split} split under {newest}"
    counts: collections.Counter = collections.Counter()
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature.get(column)
        values = feature.bytes_list.value if feature is not None else []
        if values and values[0]:
            counts[values[0].decode()] += 1
    return counts


def majority_share(pipeline_root: Path, column: str = "label", split: str = "eval") -> float:
    counts = label_counts(pipeline_root, column, split)
    return max(counts.values()) / sum(counts.values())


def assert_learned(summary: dict, pipeline_root: Path, columns: Optional[Sequence[str]] = None,
                   margin: float = 0.10, min_macro_f1: Optional[float] = 0.6, label: str = "label") -> Dict[str, float]:
    """Every task's eval accuracy is at least its majority share + `margin`, and its macro F1 above `min_macro_f1`
    (None: not checked). `columns`: the label columns of a run of several (their metrics are prefixed `column/`);
    None for a one-label run, whose column is `label`. Returns each task's majority share, for the test's message."""
    metrics, shares = summary["eval_metrics"], {}
    for column in columns or [label]:
        prefix = f"{column}/" if columns else ""
        shares[column] = majority_share(pipeline_root, column)
        accuracy = metrics[f"{prefix}sparse_categorical_accuracy"]
        assert accuracy >= shares[column] + margin, (
            f"{column}: eval accuracy {accuracy:.3f} is not {margin} above the majority share "
            f"{shares[column]:.3f}: the model did not learn")
        if min_macro_f1 is not None:
            assert metrics[f"{prefix}macro_f1_score"] > min_macro_f1, (column, metrics)
    return shares
