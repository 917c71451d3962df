"""What a model scores: the Evaluator's metrics (TFMA), and the exported model on a split of raw texts.

Used by the run summary (components/release/run_summary.py) and the model card (components/release/model_card.py).
"""

from __future__ import annotations

import base64
import math
import os
from typing import Any, Dict, Sequence

from components import features
from components.settings.data import text_columns
from components.tasks import OUTPUT_SEPARATOR, label_columns


def evaluator_metrics(evaluation_uri: str, model_name: str = "") -> Dict[str, Any]:
    """The overall (unsliced) metrics TFMA computed for the candidate model (or for `model_name`, e.g. "baseline":
    the model in service), flattened to name -> value; with several label columns each name starts with its task's
    column ("rating/sparse_categorical_accuracy"). Numbers, and the lists of class names macro F1 averaged and left
    out (`macro_f1_classes`, `macro_f1_absent_classes`: components/release/macro_f1.py)."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri, model_name=model_name or None)
    metrics = {}
    for slice_key, by_output in result.slicing_metrics:
        if slice_key:
            continue
        for output, by_sub_key in by_output.items():
            task = f"{output}{OUTPUT_SEPARATOR}" if output else ""  # several label columns: "rating/..."
            for sub_key, values in by_sub_key.items():
                for name, value in values.items():
                    number = value.get("doubleValue")
                    if number is None and "boundedValue" in value:
                        number = value["boundedValue"].get("value")
                    if number is None and value.get("arrayValue", {}).get("dataType") == "BYTES" and not sub_key:
                        metrics[task + name] = [base64.b64decode(b).decode("utf-8")
                                                for b in value["arrayValue"].get("bytesValues", [])]
                        continue
                    if number is None:
                        continue
                    if "macro_average" in name:  # some TFMA versions put the aggregation in the name
                        full = f"macro_{name.rsplit(chr(10) + '_', 1)[-1]}"
                    elif not sub_key:
                        full = name
                    elif sub_key.startswith("classId:"):
                        full = f"{name}[class_{sub_key.split(':', 1)[1]}]"
                    elif "macro_average" in sub_key:  # TFMA names aggregated metrics by their aggregation
                        full = f"macro_{name}"
                    else:
                        full = f"{name}[{sub_key}]"
                    number = float(number)
                    # NaN (e.g. precision of a class never predicted) is not valid JSON: report it as null.
                    metrics[task + full] = None if math.isnan(number) else round(number, 6)
    return metrics


def read_split(examples_uri: str, split: str, text_key: str, label_key: str):
    """(texts, labels) of one split of an ExampleGen output (gzipped TFRecords of tf.Examples). With several label
    columns (`label_key` "rating,condition"), each label is a tuple of the columns' values ("" where a row has none);
    with a pair of text columns (`text_key` "question,passage"), each text is a tuple of the two."""
    import tensorflow as tf

    columns = label_columns(label_key)
    texts_of = text_columns(text_key)
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))  # any file system
    texts, labels = [], []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        feats = example.features.feature

        def value(key, feats=feats):
            f = feats.get(key)
            if f is None:
                return ""
            if f.bytes_list.value:
                return f.bytes_list.value[0].decode("utf-8", "replace")
            if f.int64_list.value:
                return str(f.int64_list.value[0])
            if f.float_list.value:
                return str(f.float_list.value[0])
            return ""

        texts.append(value(texts_of[0]) if len(texts_of) == 1 else tuple(value(c) for c in texts_of))
        labels.append(value(columns[0]) if len(columns) == 1 else tuple(value(c) for c in columns))
    return texts, labels


def test_metrics(model_dir: str, texts, labels, batch_size: int = 128, mistakes: int = 10,
                 columns: Sequence[str] = (), text_key: str = "text") -> dict:
    """Accuracy and macro F1 of an exported model on raw texts, through its `serving_default` signature, with the
    confusion matrix (rows: true class, columns: predicted, in `classes` order), per-class precision/recall/F1 and the
    `mistakes` most confident wrong predictions (for the run report). With several label `columns` (each label a
    tuple of their values), the same figures per task under "tasks", each over the rows that have its label. A pair's
    texts (tuples, `text_key` naming its two columns) go to the signature's input per column; a mistake shows the
    pair as "a [SEP] b"."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the model's transform graph uses tf.text ops)

    from components.module_files.warmup import text_inputs

    several = len(columns) > 1
    outputs = [f"{c}{OUTPUT_SEPARATOR}" for c in columns] if several else [""]
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    predicted = {o: [] for o in outputs}
    confidence = {o: [] for o in outputs}
    for start in range(0, len(texts), batch_size):
        out = serve(**{name: tf.constant(values) for name, values in
                       text_inputs(texts[start:start + batch_size], text_key).items()})
        for o in outputs:
            predicted[o] += [p.decode("utf-8") for p in out[f"{o}label"].numpy()]
            confidence[o] += np.max(out[f"{o}probabilities"].numpy(), axis=-1).tolist()
    if not texts:
        return {"examples": 0}
    texts = [t if isinstance(t, str) else f" {features.SEP} ".join(t) for t in texts]
    if not several:
        return {"examples": len(texts), **_scores(texts, labels, predicted[""], confidence[""], mistakes)}
    tasks = {}
    for i, (column, o) in enumerate(zip(columns, outputs)):
        rows = [r for r in range(len(texts)) if labels[r][i]]  # a row without this task's label is left out
        tasks[column] = {"examples": len(rows), **_scores([texts[r] for r in rows], [labels[r][i] for r in rows],
                                                          [predicted[o][r] for r in rows],
                                                          [confidence[o][r] for r in rows], mistakes)}
    return {"examples": len(texts), "tasks": tasks}


def _scores(texts, labels, predicted, confidence, mistakes: int) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    if not texts:
        return {}
    classes = sorted(set(labels) | set(predicted))
    present = sorted(set(labels))  # macro F1 averages the classes of the split, as the Evaluator's (macro_f1.py)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                                     zero_division=0)
    wrong = sorted((i for i in range(len(texts)) if predicted[i] != labels[i]), key=lambda i: -confidence[i])
    return {"accuracy": round(float(accuracy_score(labels, predicted)), 4),
            "macro_f1": round(float(f1_score(labels, predicted, labels=present, average="macro", zero_division=0)),
                              4),
            "macro_f1_classes": present,
            "classes": classes,
            "confusion": confusion_matrix(labels, predicted, labels=classes).tolist(),
            "per_class": {c: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
                              "support": int(n)} for c, p, r, f, n in zip(classes, precision, recall, f1, support)},
            "confident_mistakes": [{"text": texts[i], "label": labels[i], "predicted": predicted[i],
                                    "probability": round(float(confidence[i]), 4)} for i in wrong[:mistakes]]}


def classes_averaged(eval_metrics: Dict[str, Any], task: str = "") -> str:
    """Which classes the eval macro F1 of `task` ("" for the one task) averaged, in words: "all 6 classes", or "the
    4 of 6 classes with an eval example (none of: x, y)"; "" when the metrics do not say."""
    prefix = f"{task}{OUTPUT_SEPARATOR}" if task else ""
    averaged = eval_metrics.get(f"{prefix}macro_f1_classes")
    absent = eval_metrics.get(f"{prefix}macro_f1_absent_classes") or []
    if averaged is None:
        return ""
    total = len(averaged) + len(absent)
    if not absent:
        return f"all {total} classes"
    return f"the {len(averaged)} of {total} classes with an eval example (none of: {', '.join(absent)})"


def headline(eval_metrics: Dict[str, Any], test: dict) -> Dict[str, Any]:
    """The figures a model card and a run summary lead with: eval and test accuracy and macro F1 (and the test
    examples), one set per task with several label columns ("rating: test accuracy"); and, where the Evaluator
    recorded them, the classes the eval macro F1 averaged ("eval macro F1 over")."""
    if "tasks" not in test and not any(OUTPUT_SEPARATOR in k for k in eval_metrics):
        figures = {"eval accuracy": eval_metrics.get("sparse_categorical_accuracy"),
                   "eval macro F1": eval_metrics.get("macro_f1_score"),
                   "test accuracy": test.get("accuracy"), "test macro F1": test.get("macro_f1"),
                   "test examples": test.get("examples")}
        if classes_averaged(eval_metrics):
            figures["eval macro F1 over"] = classes_averaged(eval_metrics)
        return figures
    names = list(test.get("tasks") or {}) or sorted({k.split(OUTPUT_SEPARATOR)[0] for k in eval_metrics
                                                     if OUTPUT_SEPARATOR in k})
    figures: Dict[str, Any] = {}
    for name in names:
        scores = (test.get("tasks") or {}).get(name, {})
        figures.update({f"{name}: eval accuracy": eval_metrics.get(f"{name}/sparse_categorical_accuracy"),
                        f"{name}: eval macro F1": eval_metrics.get(f"{name}/macro_f1_score"),
                        f"{name}: test accuracy": scores.get("accuracy"),
                        f"{name}: test macro F1": scores.get("macro_f1"),
                        f"{name}: test examples": scores.get("examples")})
        if classes_averaged(eval_metrics, name):
            figures[f"{name}: eval macro F1 over"] = classes_averaged(eval_metrics, name)
    return figures


def headline_text(figures: Dict[str, float], split: str = "test") -> str:
    """'test accuracy 0.84, macro F1 0.83' (per task: 'rating: test accuracy 0.74, macro F1 0.48; condition: ...')."""
    if f"{split} accuracy" in figures:
        return f"{split} accuracy {figures[f'{split} accuracy']}, macro F1 {figures[f'{split} macro F1']}"
    names = [k.split(": ")[0] for k in figures if k.endswith(f": {split} accuracy")]
    return "; ".join(f"{n}: {split} accuracy {figures[f'{n}: {split} accuracy']}, macro F1 "
                     f"{figures[f'{n}: {split} macro F1']}" for n in names)
