"""Request logs written by the model server's own writer (pipeline/serving/request_log.py's Collector, with the
records pipeline/serving/log_records.py builds for a REST :predict and a gRPC Classify), without a server: the tests
of the step that reads them back (tests/integration/test_serving_logs.py) need files of known content, fast. The
server's own tests send real requests (tests/integration/test_request_log.py)."""

from __future__ import annotations

from typing import Iterable, Sequence, Tuple

import numpy as np

from components.tf_serving.model_config import RequestLogging
from pipeline.serving import log_records
from pipeline.serving.request_log import Collector, FileOptions

MODEL = "bert_classifier"
CLASSES = ("neg", "pos")


def _answer(text: str, classes: Sequence[str]) -> np.ndarray:
    """A made-up but deterministic answer, 0.8 for one class: the first for an odd number of words, the second for
    an even one (texts of varied lengths get both about as often)."""
    row = np.full([len(classes)], 0.2 / max(len(classes) - 1, 1), np.float32)
    row[(len(text.split()) + 1) % 2] = 0.8
    return row


def predict_batches(prefix: str, batches: Iterable[Sequence[str]], version: int = 1, text_key: str = "text",
                    classes: Sequence[str] = CLASSES, file_bytes: int = 32 * 2 ** 20) -> None:
    """Logs one REST :predict per batch of texts, as the server logs it, and closes the files (a SIGTERM's end)."""
    batches = list(batches)
    collector = Collector(MODEL, RequestLogging(prefix, 1.0),
                          FileOptions(max_file_bytes=file_bytes, queue_size=len(batches) + 1))
    for batch in batches:
        probabilities = np.stack([_answer(t, classes) for t in batch])
        ids = probabilities.argmax(axis=1)
        outputs = {"probabilities": probabilities, "label_id": ids.astype(np.int32),
                   "label": np.array([classes[i].encode() for i in ids], dtype=object)}
        inputs = {text_key: np.array([t.encode() for t in batch], dtype=object)}
        collector.submit(log_records.rest_predict, MODEL, version, "serving_default", None, None, inputs, outputs)
    collector.close()


def classify_requests(prefix: str, texts: Sequence[str], answers: Sequence[Tuple[str, float]],
                      version: int = 1, text_key: str = "text") -> None:
    """Logs one gRPC Classify per text, its tf.Example's text under `text_key`, answered with `answers` (class,
    score), as the server logs it."""
    from tensorflow_serving.apis import classification_pb2

    collector = Collector(MODEL, RequestLogging(prefix, 1.0), FileOptions())
    for text, (label, score) in zip(texts, answers):
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = MODEL
        request.model_spec.signature_name = "classification"
        request.input.example_list.examples.add().features.feature[text_key].bytes_list.value.append(text.encode())
        response = classification_pb2.ClassificationResponse()
        row = response.result.classifications.add()
        row.classes.add(label=label, score=score)
        row.classes.add(label=[c for c in CLASSES if c != label][0], score=1.0 - score)
        collector.submit(log_records.from_protos, "classify_log", MODEL, version, "classification", request,
                         response)
    collector.close()
