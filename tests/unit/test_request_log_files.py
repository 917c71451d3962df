"""The request log's files (components/tf_serving/request_log.py) and the logging_config of TF Serving's model config
file (components/tf_serving/model_config.py): names that sort by time, a file invisible until it is closed whole,
the retention limits, the records read back example by example, and the refusals of a logging_config that cannot
be used."""

import os
import time

import pytest

from components.tf_serving import model_config
from components.tf_serving import request_log as files


def predict_record(texts, version=3, when=1_800_000_000.0):
    import numpy as np

    from pipeline.serving import log_records

    probabilities = np.array([[0.25, 0.75]] * len(texts), dtype=np.float32)
    return log_records.rest_predict(0.5, when, "m", version, "serving_default", None, "stable",
                                    {"text": np.array([t.encode() for t in texts], dtype=object)},
                                    {"probabilities": probabilities,
                                     "label": np.array([b"fresh"] * len(texts), dtype=object)})


def test_names_sort_by_time_and_say_when_the_file_was_opened():
    times = [1_800_000_000.25, 1_800_000_000.5, 1_800_000_009.0, 1_800_000_100.0]
    names = [files.file_name("/logs/bert", t, "pod-a.1", 7 - i) for i, t in enumerate(times)]
    assert sorted(names) == names
    assert names[0] == "/logs/bert-20270115T080000.250000Z-pod-a.1-000007.tfrecord"
    assert [files.opened_at(n) for n in names] == pytest.approx(times)
    # a prefix ending in "/" is a folder; an object store's prefix is a URI
    assert files.file_name("/logs/", times[0], "w", 1) == "/logs/20270115T080000.250000Z-w-000001.tfrecord"
    assert files.file_name("s3://b/logs/bert", times[0], "w", 1).startswith("s3://b/logs/bert-20270115T")
    assert files.opened_at("/logs/bert-notes.txt") is None


def test_a_file_is_listed_only_once_it_is_closed_and_reads_back_whole(tmp_path):
    prefix = str(tmp_path / "logs" / "bert")
    log_file = files.LogFile(prefix, time.time(), files.writer_id(), 1)
    for texts in (["a fine film"], ["dull", "ünïcödé 🎬"]):
        log_file.write(predict_record(texts).SerializeToString())
    assert os.path.basename(log_file.temp).startswith(".") and os.path.isfile(log_file.temp)
    assert files.log_files(prefix) == []  # being written: no reader sees it
    published = log_file.publish()
    assert files.log_files(prefix) == [published] and not os.path.exists(log_file.temp)
    assert os.path.getsize(published) == log_file.bytes
    logs = list(files.read(files.log_files(prefix)))
    assert len(logs) == 2 and logs[1].log_metadata.model_spec.version.value == 3
    rows = [e for log in logs for e in files.examples(log)]
    assert [e.text for e in rows] == ["a fine film", "dull", "ünïcödé 🎬"]
    assert rows[2].outputs == {"label": "fresh", "probabilities": [0.25, 0.75]}
    assert (rows[0].model, rows[0].version, rows[0].signature, rows[0].kind, rows[0].time) == (
        "m", 3, "serving_default", "predict", 1_800_000_000)
    assert logs[0].predict_log.request.model_spec.version_label == "stable"  # what the URL asked for

    other = files.LogFile(prefix, time.time(), files.writer_id(), 2)
    other.write(b"x")
    other.discard()  # after a failed write: nothing left, nothing listed
    assert files.log_files(prefix) == [published] and not os.path.exists(other.temp)


def test_records_are_framed_byte_for_byte_as_tensorflow_frames_them(tmp_path):
    import tensorflow as tf

    records = [b"", b"x", predict_record(["a fine film"]).SerializeToString(), bytes(range(256)) * 300]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    assert b"".join(files.tfrecord(r) for r in records) == (tmp_path / "tf.tfrecord").read_bytes()


def test_retention_deletes_the_oldest_closed_files_by_age_and_by_total_size(tmp_path):
    prefix = str(tmp_path / "bert")
    now = 1_800_000_000.0
    made = []
    for age in (50, 40, 30, 20, 10):  # oldest first, 100 bytes each
        path = files.file_name(prefix, now - age, "w", 1)
        with open(path, "wb") as f:
            f.write(b"0" * 100)
        made.append(path)
    (tmp_path / ".bert-being-written.tfrecord.tmp").write_bytes(b"0" * 1000)  # never counted nor deleted
    (tmp_path / "notes.txt").write_text("not a log file")
    assert files.prune(prefix, now=now) == []  # no limit: keep everything
    assert files.prune(prefix, keep_seconds=35, now=now) == made[:2]
    assert files.prune(prefix, keep_bytes=250, now=now) == made[2:3]  # 300 bytes left: the oldest goes
    assert files.log_files(prefix) == made[3:]
    assert sorted(os.listdir(tmp_path)) == sorted([".bert-being-written.tfrecord.tmp", "notes.txt"]
                                                  + [os.path.basename(p) for p in made[3:]])


def test_classify_and_multi_inference_records_read_back_with_the_texts_of_their_examples():
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, inference_pb2

    from pipeline.serving import log_records

    def example(**features):
        return tf.train.Example(features=tf.train.Features(feature={
            k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()])) for k, v in features.items()}))

    request = classification_pb2.ClassificationRequest()
    request.model_spec.signature_name = "classification"
    request.input.example_list_with_context.context.CopyFrom(example(text="from the context"))
    request.input.example_list_with_context.examples.extend([example(text="its own"), example(other="x")])
    response = classification_pb2.ClassificationResponse()
    for score in (0.9, 0.2):
        row = response.result.classifications.add()
        row.classes.add(label="fresh", score=score)
        row.classes.add(label="rotten", score=1 - score)
    log = log_records.from_protos(1.0, 1_800_000_000.0, "classify_log", "m", 4, "classification", request,
                                  response, 4, None)
    assert log.classify_log.request.model_spec.name == "m" and log.classify_log.request.model_spec.version.value == 4
    rows = files.examples(log)
    assert [r.text for r in rows] == ["its own", "from the context"]  # an example's own feature wins
    assert rows[1].outputs == {"classes": ["fresh", "rotten"], "scores": pytest.approx([0.2, 0.8])}

    multi = inference_pb2.MultiInferenceRequest()
    multi.tasks.add().model_spec.name = "m"
    multi.input.example_list.examples.append(example(text="one"))
    answer = inference_pb2.MultiInferenceResponse()
    result = answer.results.add()
    result.model_spec.signature_name = "classification"
    result.classification_result.classifications.add().classes.add(label="fresh", score=0.5)
    rows = files.examples(log_records.from_protos(1.0, 0.0, "multi_inference_log", "m", 4, "", multi, answer))
    assert [(r.text, r.kind, r.outputs) for r in rows] == [
        ("one", "multi_inference", {"classification/classes": ["fresh"], "classification/scores": [0.5]})]


def config(logging: str, base_path: str = "/srv/models/m") -> str:
    return f'model_config_list {{ config {{ name: "m" base_path: "{base_path}" {logging} }} }}'


def test_a_logging_config_is_read_with_its_prefix_beside_the_config_file(tmp_path):
    text = config('logging_config { log_collector_config { type: "tfrecord" filename_prefix: "logs/m" } '
                  'sampling_config { sampling_rate: 0.25 } }')
    policy = model_config.parse(text, str(tmp_path / "models.config"))["m"]
    assert policy.logging == model_config.RequestLogging(str(tmp_path / "logs" / "m"), 0.25, "tfrecord")
    folder = model_config.parse(text.replace('"logs/m"', '"logs/"'), str(tmp_path / "models.config"))["m"]
    assert folder.logging.filename_prefix == str(tmp_path / "logs") + "/"
    remote = model_config.parse(text.replace('"logs/m"', '"s3://bucket/logs/m"'), "models.config")["m"]
    assert remote.logging.filename_prefix == "s3://bucket/logs/m"
    assert model_config.parse(config(""), "models.config")["m"].logging is None
    # TF Serving's default rate is 0: a collector without a sampling_config logs nothing
    unsampled = config('logging_config { log_collector_config { type: "tfrecord" filename_prefix: "/l" } }')
    assert model_config.parse(unsampled, "models.config")["m"].logging.sampling_rate == 0.0


@pytest.mark.parametrize("logging, message", [
    ('logging_config { log_collector_config { type: "kafka" filename_prefix: "/l" } }',
     "log_collector_config.type 'kafka' is not a log collector of this server"),
    ('logging_config { log_collector_config { type: "tfrecord" } sampling_config { sampling_rate: 1 } }',
     "log_collector_config.filename_prefix is empty"),
    ('logging_config { log_collector_config { type: "tfrecord" filename_prefix: "/l" } '
     'sampling_config { sampling_rate: 1.5 } }', "sampling_config.sampling_rate 1.5 must be between 0 and 1"),
    ('logging_config { log_collector_config { type: "tfrecord" filename_prefix: "/l" } '
     'sampling_config { sampling_rate: -0.1 } }', "sampling_config.sampling_rate -0.1 must be between 0 and 1"),
])
def test_a_logging_config_that_cannot_be_used_is_refused_naming_the_field(logging, message):
    with pytest.raises(model_config.ConfigError) as refused:
        model_config.parse(config(logging), "models.config")
    assert str(refused.value).startswith("models.config, model 'm': logging_config: ")
    assert message in str(refused.value) and "\n" not in str(refused.value)
