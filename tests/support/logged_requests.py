"""Request-log files as the server writes them (components/tf_serving/request_log.py's LogFile, records built by
pipeline/serving/log_records.py): a Predict request's texts, a Classify request's tf.Examples. For the tests of
--unlabeled-data given a request-log prefix."""

TEXT = "review"  # the text column: a Classify request's tf.Examples carry it under this name


def predict_record(texts):
    import numpy as np

    from pipeline.serving import log_records

    return log_records.rest_predict(0.5, 1_800_000_000.0, "m", 3, "serving_default", None, None,
                                    {"text": np.array([t.encode() for t in texts], dtype=object)},
                                    {"label": np.array([b"fresh"] * len(texts), dtype=object)})


def classify_record(texts):
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2

    from pipeline.serving import log_records

    request = classification_pb2.ClassificationRequest()
    request.model_spec.signature_name = "classification"
    for text in texts:
        request.input.example_list.examples.add().features.feature[TEXT].CopyFrom(
            tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])))
    response = classification_pb2.ClassificationResponse()
    for _ in texts:
        response.result.classifications.add().classes.add(label="fresh", score=0.9)
    return log_records.from_protos(1.0, 1_800_000_000.0, "classify_log", "m", 3, "classification", request,
                                   response, 3, None)


def log_file(prefix: str, sequence: int, *records) -> str:
    """A closed request-log file of `prefix`, as the server publishes one (opened `sequence` seconds apart)."""
    from components.tf_serving import request_log

    written = request_log.LogFile(prefix, 1_800_000_000.0 + sequence, "pod-a.1", sequence)
    for record in records:
        written.write(record.SerializeToString())
    return written.publish()
