"""The Evaluator with several label columns, run for real (this project's Evaluator executor, TFX's underneath, TFMA
and Beam) on two small SavedModels with the exported models' signatures: a candidate that answers the rating right and
the condition wrong, against a model in service that does the opposite. The rating improves by a wide margin, the
condition gets worse, and the candidate is not blessed: every task's gates must hold. The reasons the run summary
gives name the task and the metric. Rows without a condition weigh 0 in that task and are not counted.

Small stand-ins, not BERT: the gates are the point here; tests/e2e/test_multi_task.py runs the whole pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.tasks import Task

RATINGS = ("negative", "neutral", "positive")
CONDITIONS = ("Acne", "Pain", "other")
TASKS = (Task("rating", RATINGS, multi=True), Task("condition", CONDITIONS, multi=True))


def _rows(n: int = 60):
    """(text, rating, condition) with every 6th condition missing ("")."""
    return [(f"review {i}", RATINGS[i % 3], "" if i % 6 == 5 else CONDITIONS[(i // 3) % 3]) for i in range(n)]


def _write_examples(folder: Path, rows) -> None:
    import tensorflow as tf

    split = folder / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for text, rating, condition in rows:
            feature = {"text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
                       "rating": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rating.encode()]))}
            # CsvExampleGen writes an empty cell as a feature with no value
            feature["condition"] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[condition.encode()] if condition else []))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def _export(folder: Path, right: str) -> None:
    """A model whose `right` task's answer is the example's own label (its other task's is the next class): the
    signatures the Evaluator calls, with the exported models' names (components/module_files/serving_module.py)."""
    import tensorflow as tf

    class Stand(tf.Module):
        def __init__(self):
            super().__init__()
            self.tables = {t.column: tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(t.classes), tf.range(len(t.classes), dtype=tf.int64)), default_value=-1) for t in TASKS}

        def _ids(self, examples):
            spec = {t.column: tf.io.VarLenFeature(tf.string) for t in TASKS}
            parsed = tf.io.parse_example(examples, spec)
            return {c: self.tables[c].lookup(tf.sparse.to_dense(v, default_value="")[:, 0]
                                             if v.dense_shape[1] > 0 else tf.fill([tf.shape(examples)[0]], ""))
                    for c, v in parsed.items()}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve_examples(self, examples):
            ids = self._ids(examples)
            out = {}
            for t in TASKS:
                truth = tf.maximum(ids[t.column], 0)
                answer = truth if t.column == right else (truth + 1) % len(t.classes)
                out[t.output("probabilities")] = 0.9 * tf.one_hot(answer, len(t.classes)) + 0.1 / len(t.classes)
            return out

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_features(self, examples):
            ids = self._ids(examples)
            out = {}
            for t in TASKS:
                present = ids[t.column] >= 0
                out[t.label_id_key] = tf.where(present, ids[t.column], 0)
                out[t.weight_key] = tf.cast(present, tf.float32)
            return out

    module = Stand()
    tf.saved_model.save(module, str(folder / "Format-Serving"), signatures={
        "serving_examples": module.serve_examples.get_concrete_function(),
        "transform_features": module.transform_features.get_concrete_function()})
    (folder / "class_names.json").write_text(json.dumps({t.column: list(t.classes) for t in TASKS}))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The Evaluator's executor on the candidate (rating right) against the baseline (condition right)."""
    from tfx.types import standard_artifacts

    from components.release.eval_config import make_eval_config
    from components.release.evaluator import Executor
    from components.settings.evaluator import EvaluatorSettings

    base = tmp_path_factory.mktemp("gates")
    rows = _rows()
    _write_examples(base / "examples", rows)
    _export(base / "candidate", right="rating")
    _export(base / "baseline", right="condition")

    def artifact(kind, uri: Path):
        made = kind()
        made.uri = str(uri)
        return made

    examples = artifact(standard_artifacts.Examples, base / "examples")
    examples.split_names = json.dumps(["eval"])
    evaluation = artifact(standard_artifacts.ModelEvaluation, base / "evaluation")
    blessing = artifact(standard_artifacts.ModelBlessing, base / "blessing")
    (base / "evaluation").mkdir()
    (base / "blessing").mkdir()
    config = make_eval_config(EvaluatorSettings(min_accuracy=0.0, min_macro_f1=0.0), TASKS)
    from google.protobuf import json_format

    Executor().Do(
        {"examples": [examples], "model": [artifact(standard_artifacts.Model, base / "candidate")],
         "baseline_model": [artifact(standard_artifacts.Model, base / "baseline")]},
        {"evaluation": [evaluation], "blessing": [blessing]},
        {"eval_config": json_format.MessageToJson(config), "example_splits": json.dumps(["eval"])})
    return base, rows, blessing


def test_a_task_that_got_worse_blocks_the_blessing_though_the_other_improved(evaluated):
    from components.release.model_metrics import evaluator_metrics

    base, rows, blessing = evaluated
    assert (base / "blessing" / "NOT_BLESSED").exists() and not (base / "blessing" / "BLESSED").exists()
    candidate = evaluator_metrics(str(base / "evaluation"))
    served = evaluator_metrics(str(base / "evaluation"), "baseline")
    assert candidate["rating/sparse_categorical_accuracy"] == 1.0 and served["rating/sparse_categorical_accuracy"] == 0
    assert candidate["condition/sparse_categorical_accuracy"] == 0 and served["condition/sparse_categorical_accuracy"] \
        == 1.0
    labelled = sum(1 for _, _, condition in rows if condition)
    assert candidate["rating/example_count"] == len(rows) and candidate["condition/example_count"] == labelled


def test_the_reasons_name_the_task_and_the_metric_that_failed(evaluated):
    from components.release.model_metrics import evaluator_metrics
    from components.release.run_facts import validation_failures

    base, _, _ = evaluated
    reasons = validation_failures(str(base / "evaluation"), evaluator_metrics(str(base / "evaluation")))
    assert reasons and all(r.startswith("condition/") for r in reasons), reasons
    assert any(r.startswith("condition/sparse_categorical_accuracy is 1.0000 below the model in service's")
               for r in reasons), reasons
    assert any(r.startswith("condition/macro_f1_score") and "--max-macro-f1-drop" in r for r in reasons), reasons
