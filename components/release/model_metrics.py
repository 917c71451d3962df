"""What a model scores: the Evaluator's metrics (TFMA), and the exported model on a split of raw texts.

Used by the run summary (pipeline/cli/summary.py) and the model card (components/release/model_card.py).
"""

from __future__ import annotations

import math
import os
from typing import Dict


def evaluator_metrics(evaluation_uri: str, model_name: str = "") -> Dict[str, float]:
    """The overall (unsliced) metrics TFMA computed for the candidate model (or for `model_name`, e.g. "baseline":
    the model in service), flattened to name -> value."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri, model_name=model_name or None)
    metrics = {}
    for slice_key, by_output in result.slicing_metrics:
        if slice_key:
            continue
        for _, by_sub_key in by_output.items():
            for sub_key, values in by_sub_key.items():
                for name, value in values.items():
                    number = value.get("doubleValue")
                    if number is None and "boundedValue" in value:
                        number = value["boundedValue"].get("value")
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
                    metrics[full] = None if math.isnan(number) else round(number, 6)
    return metrics


def read_split(examples_uri: str, split: str, text_key: str, label_key: str):
    """(texts, labels) of one split of an ExampleGen output (gzipped TFRecords of tf.Examples)."""
    import tensorflow as tf

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

        texts.append(value(text_key))
        labels.append(value(label_key))
    return texts, labels


def test_metrics(model_dir: str, texts, labels, batch_size: int = 128, mistakes: int = 10) -> dict:
    """Accuracy and macro F1 of an exported model on raw texts, through its `serving_default` signature, with the
    confusion matrix (rows: true class, columns: predicted, in `classes` order), per-class precision/recall/F1 and the
    `mistakes` most confident wrong predictions (for the run report)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the model's transform graph uses tf.text ops)
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    predicted, confidence = [], []
    for start in range(0, len(texts), batch_size):
        out = serve(text=tf.constant(texts[start:start + batch_size]))
        predicted += [p.decode("utf-8") for p in out["label"].numpy()]
        confidence += np.max(out["probabilities"].numpy(), axis=-1).tolist()
    if not texts:
        return {"examples": 0}
    classes = sorted(set(labels) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                                     zero_division=0)
    wrong = sorted((i for i in range(len(texts)) if predicted[i] != labels[i]), key=lambda i: -confidence[i])
    return {"examples": len(texts),
            "accuracy": round(float(accuracy_score(labels, predicted)), 4),
            "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 4),
            "classes": classes,
            "confusion": confusion_matrix(labels, predicted, labels=classes).tolist(),
            "per_class": {c: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
                              "support": int(n)} for c, p, r, f, n in zip(classes, precision, recall, f1, support)},
            "confident_mistakes": [{"text": texts[i], "label": labels[i], "predicted": predicted[i],
                                    "probability": round(float(confidence[i]), 4)} for i in wrong[:mistakes]]}
