"""The real Evaluator (this project's executor, TFX's underneath, TFMA and Beam) on stand-in models: each model's
answer is a feature of the example the test writes, so a test knows every answer. Used by
tests/integration/test_rare_classes.py and test_run_summary.py."""

from __future__ import annotations

import json
from pathlib import Path


def write_examples(folder: Path, rows) -> None:
    """rows: {feature: value}; "" is an empty CSV cell (a feature with no value, as CsvExampleGen writes it)."""
    import tensorflow as tf

    split = folder / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for row in rows:
            feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()] if v else []))
                       for k, v in row.items()}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def export_stand_in(folder: Path, tasks, answer_prefix: str) -> None:
    """A model that answers each task with the example's `<answer_prefix><column>` feature (probability 0.9), with
    the exported models' signatures (components/module_files/serving_module.py): serving_examples and transform_features
    (the label ids, and with several tasks each one's example weight: 1 with a label, 0 without)."""
    import tensorflow as tf

    class Stand(tf.Module):
        def __init__(self):
            super().__init__()
            self.tables = {t.column: tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(t.classes), tf.range(len(t.classes), dtype=tf.int64)), default_value=-1) for t in tasks}

        def _ids(self, examples, prefix):
            parsed = tf.io.parse_example(examples, {prefix + t.column: tf.io.VarLenFeature(tf.string) for t in tasks})
            dense = {t.column: tf.sparse.to_dense(parsed[prefix + t.column], default_value="") for t in tasks}
            return {c: self.tables[c].lookup(tf.concat([v, tf.fill([tf.shape(examples)[0], 1], "")], 1)[:, 0])
                    for c, v in dense.items()}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve_examples(self, examples):
            ids = self._ids(examples, answer_prefix)
            return {t.output("probabilities"): 0.9 * tf.one_hot(tf.maximum(ids[t.column], 0), len(t.classes))
                    + 0.1 / len(t.classes) for t in tasks}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_features(self, examples):
            ids = self._ids(examples, "")
            out = {}
            for t in tasks:
                present = ids[t.column] >= 0
                out[t.label_id_key] = tf.where(present, ids[t.column], 0)
                if t.multi:
                    out[t.weight_key] = tf.cast(present, tf.float32)
            return out

    module = Stand()
    tf.saved_model.save(module, str(folder / "Format-Serving"), signatures={
        "serving_examples": module.serve_examples.get_concrete_function(),
        "transform_features": module.transform_features.get_concrete_function()})
    names = {t.column: list(t.classes) for t in tasks} if tasks[0].multi else list(tasks[0].classes)
    (folder / "class_names.json").write_text(json.dumps(names))


def evaluate(base: Path, tasks, rows, with_baseline: bool, baseline_tasks=None):
    """The Evaluator's executor at the default gates on the candidate (answers `answer_<column>`), against a model
    in service (answers `served_<column>`; its classes `baseline_tasks`', by default the candidate's) when
    `with_baseline`; its outputs in base/evaluation and base/blessing. Returns (blessed, candidate metrics,
    reasons)."""
    from google.protobuf import json_format
    from tfx.types import standard_artifacts

    from components.release.eval_config import make_eval_config
    from components.release.evaluator import Executor
    from components.release.model_metrics import evaluator_metrics
    from components.release.run_facts import validation_failures
    from components.settings.evaluator import EvaluatorSettings

    write_examples(base / "examples", rows)
    export_stand_in(base / "candidate", tasks, "answer_")
    if with_baseline:
        export_stand_in(base / "baseline", baseline_tasks or tasks, "served_")

    def artifact(kind, uri: Path):
        made = kind()
        made.uri = str(uri)
        return made

    examples = artifact(standard_artifacts.Examples, base / "examples")
    examples.split_names = json.dumps(["eval"])
    (base / "evaluation").mkdir()
    (base / "blessing").mkdir()
    inputs = {"examples": [examples], "model": [artifact(standard_artifacts.Model, base / "candidate")]}
    if with_baseline:
        inputs["baseline_model"] = [artifact(standard_artifacts.Model, base / "baseline")]
    Executor().Do(
        inputs, {"evaluation": [artifact(standard_artifacts.ModelEvaluation, base / "evaluation")],
                 "blessing": [artifact(standard_artifacts.ModelBlessing, base / "blessing")]},
        {"eval_config": json_format.MessageToJson(make_eval_config(EvaluatorSettings(), tasks)),
         "example_splits": json.dumps(["eval"])})
    metrics = evaluator_metrics(str(base / "evaluation"))
    blessed = (base / "blessing" / "BLESSED").exists()
    return blessed, metrics, validation_failures(str(base / "evaluation"), metrics)
