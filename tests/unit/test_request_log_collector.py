"""The request log's collector (pipeline/serving/request_log.py) in this process, on a real folder, without a server
(the server's tests are tests/integration/test_request_log.py): files rotated by size and by age (with no new
request too), the retention limits applied as files close, a full queue or a failed write dropping records
without ever blocking the caller, and the log saying so once."""

import logging
import os
import threading
import time

from components.tf_serving import model_config
from components.tf_serving import request_log as files
from pipeline.serving.request_log import Collector, FileOptions, RequestLogs


class Counts:
    """Stands in for metrics.Metrics's request-log methods (the real ones are read over HTTP in the server tests)."""

    def __init__(self):
        self.records = self.files = self.bytes = self.deleted = self.failed = 0
        self.dropped = {}

    def log_file_closed(self, model, records, size):
        self.records, self.files, self.bytes = self.records + records, self.files + 1, self.bytes + size

    def log_dropped(self, model, reason, count):
        self.dropped[reason] = self.dropped.get(reason, 0) + count

    def log_files_deleted(self, model, count):
        self.deleted += count

    def log_failed_request(self, model):
        self.failed += 1


def record(rate, when, text):
    from tensorflow_serving.apis import prediction_log_pb2

    log = prediction_log_pb2.PredictionLog()
    log.log_metadata.model_spec.name = "m"
    log.log_metadata.sampling_config.sampling_rate = rate
    log.log_metadata.timestamp_secs = int(when)
    log.predict_log.request.model_spec.name = text  # any field: the text tells the records apart
    return log


def names_in(prefix):
    return [log.predict_log.request.model_spec.name for log in files.read(files.log_files(prefix))]


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_files_rotate_by_size_and_every_record_is_kept_in_order(tmp_path):
    prefix, counts = str(tmp_path / "m"), Counts()
    collector = Collector("m", model_config.RequestLogging(prefix, 1.0), FileOptions(max_file_bytes=200), counts)
    sent = [f"request {i:03d}" for i in range(40)]
    for text in sent:
        collector.submit(record, text)
    collector.close()
    closed = files.log_files(prefix)
    sizes = [os.path.getsize(p) for p in closed]
    one = len(record(1.0, 0, sent[0]).SerializeToString()) + 16
    assert len(closed) == counts.files > 5 and sum(sizes) == counts.bytes
    assert all(200 <= size < 200 + one for size in sizes[:-1]) and sizes[-1] < 200 + one
    assert names_in(prefix) == sent and counts.records == len(sent) and counts.dropped == {}
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary file left


def test_a_file_closes_by_age_without_another_request(tmp_path):
    prefix = str(tmp_path / "m")
    collector = Collector("m", model_config.RequestLogging(prefix, 1.0), FileOptions(max_file_seconds=0.3))
    try:
        collector.submit(record, "alone")
        time.sleep(0.1)
        assert files.log_files(prefix) == []  # still open
        wait_until(lambda: files.log_files(prefix))
        assert names_in(prefix) == ["alone"]
        collector.submit(record, "later")
        wait_until(lambda: len(files.log_files(prefix)) == 2)
    finally:
        collector.close()
    assert names_in(prefix) == ["alone", "later"]


def test_retention_deletes_old_files_as_new_ones_close(tmp_path):
    prefix, counts = str(tmp_path / "m"), Counts()
    old = files.file_name(prefix, time.time() - 3600, "elsewhere", 1)  # an hour old, written by another replica
    with open(old, "wb") as f:
        f.write(b"")
    collector = Collector("m", model_config.RequestLogging(prefix, 1.0),
                          FileOptions(max_file_bytes=1, keep_seconds=60), counts)
    wait_until(lambda: not os.path.exists(old))  # at start, before any request
    for text in ("a", "b", "c"):
        collector.submit(record, text)
    collector.close()
    assert names_in(prefix) == ["a", "b", "c"] and counts.deleted == 1
    by_size = Collector("m", model_config.RequestLogging(prefix, 1.0),
                        FileOptions(max_file_bytes=1, keep_bytes=2 * os.path.getsize(files.log_files(prefix)[0])),
                        counts)
    by_size.submit(record, "d")
    by_size.close()
    assert names_in(prefix) == ["c", "d"]


def test_a_full_queue_drops_records_without_blocking_and_says_so_once(tmp_path, caplog):
    prefix, counts = str(tmp_path / "m"), Counts()
    release = threading.Event()

    def slow(rate, when, text):  # a writer that cannot keep up (a slow disk or store)
        release.wait(10)
        return record(rate, when, text)

    collector = Collector("m", model_config.RequestLogging(prefix, 1.0), FileOptions(queue_size=5), counts)
    with caplog.at_level(logging.INFO, logger="serve"):
        start = time.perf_counter()
        for i in range(50):
            collector.submit(slow, f"r{i}")
        elapsed = time.perf_counter() - start
        release.set()
        collector.close()
    assert elapsed < 0.5  # 50 submissions while the writer is stuck: none waited for it
    kept = names_in(prefix)
    assert counts.dropped == {"queue_full": 50 - len(kept)} and 5 <= len(kept) <= 6
    assert collector.dropped == 50 - len(kept)
    warnings = [r.getMessage() for r in caplog.records if "dropping records" in r.getMessage()]
    assert len(warnings) == 1 and "queue of 5 records is full" in warnings[0]
    assert any("writing again" in r.getMessage() for r in caplog.records)


def test_a_failed_write_drops_the_records_and_writing_resumes_when_it_can(tmp_path, caplog):
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log folder should be")  # every write fails, as on a full disk
    prefix, counts = str(blocker / "m"), Counts()
    collector = Collector("m", model_config.RequestLogging(prefix, 1.0), FileOptions(max_file_bytes=1), counts)
    with caplog.at_level(logging.INFO, logger="serve"):
        for i in range(3):
            collector.submit(record, f"lost {i}")
        wait_until(lambda: counts.dropped.get("write_failed") == 3)
        blocker.unlink()
        collector.submit(record, "kept")
        collector.close()
    assert names_in(prefix) == ["kept"] and counts.records == 1
    messages = [r.getMessage() for r in caplog.records]
    assert sum("dropping records" in m for m in messages) == 1
    assert any("writing again (3 records dropped so far)" in m for m in messages)


def test_the_logs_follow_the_config_and_draw_their_sample(tmp_path):
    counts = Counts()
    logs = RequestLogs(FileOptions(), counts)
    every = model_config.RequestLogging(str(tmp_path / "a"), 1.0)
    logs.configure({"a": every, "b": None, "c": model_config.RequestLogging(str(tmp_path / "c"), 0.0)})
    first = logs.collectors["a"]
    assert set(logs.collectors) == {"a", "c"} and logs.sampled("b") is None
    assert all(logs.sampled("a") is first for _ in range(100)) and not any(logs.sampled("c") for _ in range(100))
    logs.failed("a")
    logs.failed("b")  # a model that does not log: not counted
    assert counts.failed == 1
    logs.configure({"a": every})  # unchanged: the same collector goes on
    assert logs.collectors["a"] is first
    logs.configure({"a": model_config.RequestLogging(str(tmp_path / "a"), 0.5)})
    assert logs.collectors["a"] is not first and first._closed
    tenth = Collector("t", model_config.RequestLogging(str(tmp_path / "t"), 0.1), FileOptions())
    draws = sum(tenth.sample() for _ in range(20_000))
    tenth.close()
    logs.close()
    assert 2000 - 5 * 42 < draws < 2000 + 5 * 42  # binomial: sd = sqrt(20000 * 0.1 * 0.9) = 42




def test_a_re_read_config_file_moves_the_log(tmp_path):
    """serve.py's wiring: the ModelSet tells the logs each config it applies (read while serving)."""
    from pipeline.serving.model_set import ModelSet

    config = tmp_path / "models.config"

    def write(prefix):
        config.write_text(f'model_config_list {{ config {{ name: "m" base_path: "m" logging_config {{ '
                          f'log_collector_config {{ type: "tfrecord" filename_prefix: "{prefix}" }} '
                          'sampling_config { sampling_rate: 1.0 } } } }')

    write("logs/first")
    models = ModelSet.from_config_file(str(config), 1.0, None)
    logs = RequestLogs(FileOptions())
    logs.configure({name: policy.logging for name, policy in models.policies.items()})
    models.on_apply = lambda policies: logs.configure({name: p.logging for name, p in policies.items()})
    first = logs.collectors["m"]
    assert first.config.filename_prefix == str(tmp_path / "logs" / "first")
    write("logs/second")
    assert models.reload_config()
    assert logs.collectors["m"].config.filename_prefix == str(tmp_path / "logs" / "second") and first._closed
    config.write_text('model_config_list { config { name: "m" base_path: "m" } }')  # logging off
    assert models.reload_config() and logs.collectors == {}
    logs.close()
