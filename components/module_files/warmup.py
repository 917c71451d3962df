"""TensorFlow Serving warm-up requests: written into the exported model, replayed by every server that loads it.

TF Serving reads `<version>/assets.extra/tf_serving_warmup_requests`, a TFRecord file of `PredictionLog` protos, and
sends each request to the model before it marks the version AVAILABLE, so the first real request does not pay for
graph tracing and memory allocation. The Trainer writes a few real texts from the eval split there
(`write_requests`); the project's own serving check (components/release/serving_check.py) and local server
(pipeline/serve.py) replay the same file (`read_requests`).

Only TensorFlow and tensorflow-serving-api's protos are imported: the serving check's probe runs this in a process
that must not load TFX, TFT or Keras.
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, model_pb2, predict_pb2, prediction_log_pb2

from components.module_files import serving_signatures
from components.settings.data import text_columns

ASSETS_EXTRA = "assets.extra"  # files TF Serving ignores when loading, except the warm-up file
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving replays at most this many records

Request = Tuple[str, Dict[str, np.ndarray]]  # (signature name, input name -> batch of values)


def warmup_path(model_dir: str) -> str:
    return os.path.join(model_dir, ASSETS_EXTRA, WARMUP_FILE)


Text = Union[str, Tuple[str, ...]]  # a text, or a pair's texts in --text-column's order


def _fields(text: Text, text_key: str) -> Dict[str, str]:
    """The text column(s) of one example: {column: text}."""
    columns = text_columns(text_key)
    return dict(zip(columns, (text,) if isinstance(text, str) else text))


def serialized_examples(texts: Sequence[Text], text_key: str) -> List[bytes]:
    """tf.Examples carrying only the text column (a pair's two), as `serving_examples` takes them."""
    return [tf.train.Example(features=tf.train.Features(feature={
        column: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))
        for column, value in _fields(t, text_key).items()})).SerializeToString() for t in texts]


def text_inputs(texts: Sequence[Text], text_key: str) -> Dict[str, np.ndarray]:
    """`serving_default`'s inputs for a batch: `text`, or a pair's one input per text column, named after it."""
    columns = text_columns(text_key)
    rows = [_fields(t, text_key) for t in texts]
    names = columns if len(columns) > 1 else ("text",)
    return {name: np.array([row[column].encode("utf-8") for row in rows], dtype=object)
            for name, column in zip(names, columns)}


def text_requests(texts: Sequence[Text], text_key: str) -> List[Request]:
    """The warm-up set for a text classifier: one text (or pair) alone and the texts as one batch on
    `serving_default`, two tf.Examples on `serving_examples` and the same two as a Classify request on
    `classification`, so every serving signature is traced and checked once."""
    texts = list(texts)
    if not texts:
        raise ValueError("warm-up requests need at least one text")
    return [("serving_default", text_inputs(texts[:1], text_key)),
            ("serving_default", text_inputs(texts, text_key)),
            ("serving_examples", {"examples": np.array(serialized_examples(texts[:2], text_key), dtype=object)}),
            (serving_signatures.CLASSIFY_SIGNATURE,
             {serving_signatures.CLASSIFY_INPUT: np.array(serialized_examples(texts[:2], text_key), dtype=object)})]


def write_requests(model_dir: str, requests: Sequence[Request], model_name: str = "") -> str:
    """Writes `requests` as TF Serving's warm-up file of `model_dir`; returns its path. Requests on the classify
    signature become ClassifyLog records (tf.Examples), the others PredictLog records."""
    path = warmup_path(model_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            spec = model_pb2.ModelSpec(name=model_name, signature_name=signature)
            if signature == serving_signatures.CLASSIFY_SIGNATURE:
                request = classification_pb2.ClassificationRequest(model_spec=spec)
                request.input.example_list.examples.extend(
                    tf.train.Example.FromString(e) for e in inputs[serving_signatures.CLASSIFY_INPUT])
                log = prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=request))
            else:
                request = predict_pb2.PredictRequest(model_spec=spec)
                for name, value in inputs.items():
                    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_requests(model_dir: str) -> List[Request]:
    """The requests of `model_dir`'s warm-up file ([] when it has none), as TF Serving replays them: predict requests
    as their inputs, classify requests as the serialized tf.Examples their signature takes as `inputs`."""
    path = warmup_path(model_dir)
    if not tf.io.gfile.exists(path):
        return []
    requests = []
    for record in tf.data.TFRecordDataset(path).take(MAX_WARMUP_RECORDS):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        if kind == "classify_log":
            request = log.classify_log.request
            examples = [e.SerializeToString() for e in request.input.example_list.examples]
            requests.append((request.model_spec.signature_name or "serving_default",
                             {serving_signatures.CLASSIFY_INPUT: np.array(examples, dtype=object)}))
        elif kind == "predict_log":
            request = log.predict_log.request
            requests.append((request.model_spec.signature_name or "serving_default",
                             {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}))
        # regress/multi-inference logs: none of this project's models writes them
    return requests
