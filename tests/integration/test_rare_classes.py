"""A label column whose rare classes have no example in the eval split, judged by the real Evaluator (this project's
executor, TFX's underneath, TFMA and Beam) at the default gates (EvaluatorSettings()): a model that answers most
examples right is blessed, with one label column and with several. TFMA's own macro average of F1 was NaN there (a
class with no example and no answer has F1 0/0), and its gate refused every such model: a first run on real
long-tailed data failed for nothing the model did.

The data: a split one class short (4 classes, one never in eval) and a 30-class long tail (a third of the classes
never in eval, and, with several label columns, rows without a label in that column, which weigh 0 and make no class
present). Small stand-ins, not BERT: each model's answer is a feature of the example the test writes, so the test
knows every answer and checks macro F1 against scikit-learn's over the classes of the split.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pytest  # noqa: E402

from components.tasks import Task  # noqa: E402

SHORT = tuple(f"topic_{c}" for c in "abcd")  # topic_d never occurs in eval
TAIL = tuple(f"kind_{i:02d}" for i in range(30))


def _tail_labels():
    """The long tail's eval labels: kind_01 (12 examples) down to kind_20 (1 example); kind_00 and kind_21..29
    never occur (kind_00 is label id 0, which a row without a label also gets, with weight 0)."""
    return [TAIL[i] for i in range(1, 21) for _ in range(max(1, 13 - i))]


def _answers(labels, classes, every: int):
    """The model's answers: right, except every `every`-th example, answered as the next of `classes`."""
    return [classes[(classes.index(label) + 1) % len(classes)] if i % every == every - 1 else label
            for i, label in enumerate(labels)]


def _write_examples(folder: Path, rows) -> None:
    """rows: {feature: value}; "" is an empty CSV cell (a feature with no value, as CsvExampleGen writes it)."""
    import tensorflow as tf

    split = folder / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for row in rows:
            feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()] if v else []))
                       for k, v in row.items()}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def _export(folder: Path, tasks, answer_prefix: str) -> None:
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


def _evaluate(base: Path, tasks, rows, with_baseline: bool):
    """The Evaluator's executor at the default gates on the candidate (answers `answer_<column>`), against a model
    in service (answers `served_<column>`) when `with_baseline`. Returns (blessed, candidate metrics, reasons)."""
    from google.protobuf import json_format
    from tfx.types import standard_artifacts

    from components.release.eval_config import make_eval_config
    from components.release.evaluator import Executor
    from components.release.model_metrics import evaluator_metrics
    from components.release.run_facts import validation_failures
    from components.settings.evaluator import EvaluatorSettings

    _write_examples(base / "examples", rows)
    _export(base / "candidate", tasks, "answer_")
    if with_baseline:
        _export(base / "baseline", tasks, "served_")

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


def _sklearn_macro_f1(labels, answers) -> float:
    from sklearn.metrics import f1_score

    return f1_score(labels, answers, labels=sorted(set(labels)), average="macro")


def _assert_macro_f1(metrics, prefix: str, classes, labels, answers) -> None:
    """macro F1 is scikit-learn's over the classes of the split; the classes averaged and left out are named; the
    per-class figures keep every class of the model."""
    present = [c for c in classes if c in set(labels)]
    assert metrics[f"{prefix}macro_f1_score"] == pytest.approx(_sklearn_macro_f1(labels, answers), abs=1e-5)
    assert metrics[f"{prefix}macro_f1_classes"] == present
    assert metrics[f"{prefix}macro_f1_absent_classes"] == [c for c in classes if c not in present]
    assert all(f"{prefix}f1_score[class_{i}]" in metrics for i in range(len(classes))), sorted(metrics)


@pytest.mark.parametrize("classes,labels", [
    (SHORT, [SHORT[i % 3] for i in range(30)]),  # one class short
    (TAIL, _tail_labels()),  # a 30-class long tail, 10 classes never in eval
], ids=["one-class-short", "long-tail"])
def test_one_label_column_with_classes_absent_from_eval_is_blessed_at_default_flags(tmp_path, classes, labels):
    answers = _answers(labels, sorted(set(labels)), every=7)  # never an absent class: its F1 was 0/0, NaN
    rows = [{"text": f"text {i}", "label": label, "answer_label": answer}
            for i, (label, answer) in enumerate(zip(labels, answers))]
    blessed, metrics, reasons = _evaluate(tmp_path, (Task("label", classes),), rows, with_baseline=False)
    assert blessed and not reasons, (reasons, metrics.get("macro_f1_score"))
    _assert_macro_f1(metrics, "", classes, labels, answers)
    from components.release.model_metrics import classes_averaged

    absent = [c for c in classes if c not in set(labels)]
    assert classes_averaged(metrics) == (f"the {len(classes) - len(absent)} of {len(classes)} classes with an eval "
                                         f"example (none of: {', '.join(absent)})")


def test_several_label_columns_with_rare_classes_absent_from_eval_are_blessed_against_a_model_in_service(tmp_path):
    """A column one class short and a long-tailed one (some rows without its label), judged at the default gates
    against a model in service that answers a few more wrong: blessed, the drop gates on macro F1 included (their
    difference was NaN too, the candidate's NaN minus the served model's)."""
    from pipeline.cli.summary import summary_lines

    tasks = (Task("coarse", SHORT, multi=True), Task("fine", TAIL, multi=True))
    fine = _tail_labels()
    n = len(fine) + 12  # 12 rows without a fine label, which weigh 0 in that task (label id 0: kind_00)
    coarse = [SHORT[i % 3] for i in range(n)]
    fine = fine + [""] * 12
    answers = {"coarse": _answers(coarse, SHORT[:3], every=9), "fine": _answers([f or TAIL[1] for f in fine], TAIL, 9)}
    served = {"coarse": _answers(coarse, SHORT[:3], every=6), "fine": _answers([f or TAIL[1] for f in fine], TAIL, 6)}
    rows = [{"text": f"text {i}", "coarse": coarse[i], "fine": fine[i],
             **{f"answer_{c}": answers[c][i] for c in answers}, **{f"served_{c}": served[c][i] for c in served}}
            for i in range(n)]
    blessed, metrics, reasons = _evaluate(tmp_path, tasks, rows, with_baseline=True)
    assert blessed and not reasons, (reasons, {k: v for k, v in metrics.items() if "macro_f1_score" in k})
    _assert_macro_f1(metrics, "coarse/", SHORT, coarse, answers["coarse"])
    labelled = [i for i in range(n) if fine[i]]
    _assert_macro_f1(metrics, "fine/", TAIL, [fine[i] for i in labelled], [answers["fine"][i] for i in labelled])
    assert TAIL[0] in metrics["fine/macro_f1_absent_classes"]  # the unlabelled rows' id 0 weighs nothing
    lines = summary_lines({"dataset": "own", "model": "stand-in", "wall_seconds": 1, "components": {},
                           "eval_metrics": metrics, "blessed": blessed, "pushed_dir": None})
    fine_line = next(line for line in lines if line.startswith("eval (fine): "))
    assert "(over the 20 of 30 classes with an eval example (none of: kind_00, kind_21," in fine_line, fine_line
