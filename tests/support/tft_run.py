"""A real TF Transform run of the project's preprocessing_fn on in-memory rows (Beam's direct runner), shared by
tests/integration/test_preprocessing.py and test_learned_vocab.py."""

import json
from pathlib import Path
from typing import Optional

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata

from components.module_files import preprocessing
from components.settings.data import DataSettings, component_config
from components.settings.transform import TransformSettings


def analyze_and_transform(tmp: Path, rows, feature_spec, data: DataSettings,
                          settings: Optional[TransformSettings] = None):
    """Runs the real preprocessing_fn through TF Transform and writes the transform output.

    Returns (transformed rows in input order, transform output dir). A `row` column is passed through
    beside the module's outputs only to restore the order.
    """
    config = component_config(settings or TransformSettings(), data)
    metadata = dataset_metadata.DatasetMetadata.from_feature_spec(
        {**feature_spec, "row": tf.io.FixedLenFeature([], tf.int64)})
    rows = [{**r, "row": i} for i, r in enumerate(rows)]

    def fn(inputs):
        inputs = dict(inputs)
        row = inputs.pop("row")
        return {**preprocessing.preprocessing_fn(inputs, config), "row": row}

    out_dir, rows_prefix = tmp / "transform_output", tmp / "rows" / "part"
    with beam.Pipeline() as p, tft_beam.Context(temp_dir=str(tmp / "tft_tmp")):
        raw = p | beam.Create(rows, reshuffle=False)
        (data, _), transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(out_dir))
        _ = (data | beam.Map(lambda r: json.dumps({
            k: v.decode("utf-8") if isinstance(v, bytes) else np.asarray(v).tolist() for k, v in r.items()}))
             | beam.io.WriteToText(str(rows_prefix)))
    lines = [line for f in sorted(rows_prefix.parent.glob("part*")) for line in f.read_text().splitlines()]
    out = sorted((json.loads(line) for line in lines), key=lambda r: r["row"])
    assert [r.pop("row") for r in out] == list(range(len(rows)))
    return out, out_dir
