"""Request logging: each model's sampled requests, with their answers, kept in TF Serving's PredictionLog format.

A model logs when its model config entry has a `logging_config` (or, without a config file, when serve.py is given
--request-log): a collector of type "tfrecord" writes TFRecord files of PredictionLog records under the config's
`filename_prefix` (components/tf_serving/request_log.py names, publishes, prunes and reads the files;
log_records.py builds the records). Every answered request of the model is sampled with probability
`sampling_rate`; a failed one is never logged as an answer, only counted.

Logging never fails or blocks a request: the request thread only draws the sample and appends what it already holds
to a bounded queue; a writer thread per model wakes every WRITE_EVERY_S, builds the records of what is queued,
writes them, and rotates the file when it reaches --request-log-file-mb or --request-log-file-seconds (also when no
request comes). It wakes on a timer, not for each record: its turns at the GIL are time the threads answering
requests wait (WRITE_EVERY_S; benchmarks/request_log.py, benchmarks/results.md). When the queue is full (a slow
disk or store) or a write or upload fails (a full disk, an unreachable store), the records are dropped and counted,
the log says so once (and again when writing works again), and every request is still answered. After each file
it closes, and every minute or so, the writer deletes the prefix's closed files beyond --request-log-keep-seconds or
--request-log-keep-mb. Metrics: `:local_serving:request_log_*` (metrics.py).

On shutdown (SIGTERM, SIGINT) the server stops taking requests, then each collector writes what its queue holds and
closes its file. A SIGKILL loses the open file's records (and leaves its hidden temporary file, which no reader
lists); every file closed before is whole.
"""

from __future__ import annotations

import collections
import logging
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from components.runtime.storage import is_uri
from components.tf_serving import request_log as files
from components.tf_serving.model_config import RequestLogging

log = logging.getLogger("serve")
PRUNE_EVERY_S = 60.0  # between retention passes when no file closes
# The writer's wake-ups: records reach the file this long after their request at most. When the cores are busy, each
# wake-up of one more thread can take a core from the thread holding the GIL: in rough paired runs on the busy 2-core
# machine, waking every 50 ms cost about 10% of the throughput at concurrency 16 and every 500 ms about 3.5%, with a
# noise of several percent (benchmarks/results.md, "Request logging"). A burst wakes it sooner, once WAKE_AT records
# wait; the default queue (--request-log-queue, 5,000 records) then leaves the writer seconds to get a core before a
# record is dropped.
WRITE_EVERY_S = 0.5
WAKE_AT = 500


@dataclass(frozen=True)
class FileOptions:
    """The server's settings for every model's log files (serve.py's --request-log-* flags)."""

    max_file_bytes: int = 32 * 2 ** 20
    max_file_seconds: float = 600.0
    keep_seconds: float = 0.0  # 0: no age limit
    keep_bytes: int = 0  # 0: no size limit
    queue_size: int = 5000


class Collector:
    """One model's log: a bounded queue and the thread that writes it."""

    def __init__(self, model: str, config: RequestLogging, options: FileOptions, metrics=None):
        self.model, self.config, self.options, self.metrics = model, config, options, metrics
        self.rate = config.sampling_rate
        self.dropped = 0
        self._queue: collections.deque = collections.deque()  # append and popleft are atomic: no lock needed
        self._wake = threading.Event()  # set to write now: on close, or when the queue fills up
        self._wake_at = min(WAKE_AT, max(1, options.queue_size // 2))
        self._closed = False
        self._dropping = False
        self._drop_lock = threading.Lock()
        self._writer = files.writer_id()
        self._sequence = 0
        self._file: Optional[files.LogFile] = None
        self._file_deadline = 0.0  # monotonic time the open file closes by age
        self._next_prune = 0.0
        self._spool = tempfile.mkdtemp(prefix="request-log-") if is_uri(config.filename_prefix) else None
        self._thread = threading.Thread(target=self._run, name=f"request-log-{model}", daemon=True)
        self._thread.start()

    # -- the request's side: cheap, never blocks ---------------------------------------------------------------
    def sample(self) -> bool:
        return self.rate >= 1.0 or (self.rate > 0.0 and random.random() < self.rate)

    def submit(self, build: Callable, *args) -> None:
        """Queues a record to be built by `build(rate, time, *args)` on the writer thread, or drops it when the queue
        is full."""
        if self._closed:
            return
        if len(self._queue) >= self.options.queue_size:  # checked without a lock: may pass by a record or two
            self._drop(1, "queue_full", f"the queue of {self.options.queue_size} records is full: the writer cannot "
                                        "keep up")
            return
        self._queue.append((build, args, time.time()))
        if len(self._queue) >= self._wake_at and not self._wake.is_set():
            self._wake.set()  # a burst: write before the queue fills

    # -- the writer thread ---------------------------------------------------------------------------------------
    def _timeout(self) -> float:
        deadlines = [time.monotonic() + WRITE_EVERY_S]
        if self._file:
            deadlines.append(self._file_deadline)
        if self.options.keep_seconds or self.options.keep_bytes:
            deadlines.append(self._next_prune)
        return max(0.0, min(deadlines) - time.monotonic())

    def _run(self) -> None:
        while True:
            self._wake.wait(self._timeout())
            self._wake.clear()
            stopping = self._closed
            while self._queue:
                self._write(self._queue.popleft())
                if self._file and (self._file.bytes >= self.options.max_file_bytes
                                   or time.monotonic() >= self._file_deadline):
                    self._close_file()
            now = time.monotonic()
            if self._file and now >= self._file_deadline:
                self._close_file()
            elif (self.options.keep_seconds or self.options.keep_bytes) and now >= self._next_prune:
                self._prune()
            if stopping and not self._queue:
                break
        self._close_file()
        if self._spool:
            shutil.rmtree(self._spool, ignore_errors=True)

    def _write(self, item) -> None:
        build, args, when = item
        try:
            record = build(self.rate, when, *args).SerializeToString()
        except Exception as e:  # noqa: BLE001 - a record that cannot be built is dropped, never the server
            self._drop(1, "record_failed", f"a record could not be built ({type(e).__name__}: {e})")
            return
        try:
            if self._file is None:
                self._sequence += 1
                self._file = files.LogFile(self.config.filename_prefix, time.time(), self._writer, self._sequence,
                                           self._spool)
                self._file_deadline = time.monotonic() + self.options.max_file_seconds
            self._file.write(record)
        except Exception as e:  # noqa: BLE001 - OSError or tf.errors.OpError: a full disk, an unwritable folder
            lost = 1 + (self._file.records if self._file else 0)
            if self._file:
                self._file.discard()
                self._file = None
            self._drop(lost, "write_failed", _reason(e))

    def _close_file(self) -> None:
        done, self._file = self._file, None
        if done is None or not done.records:
            if done:
                done.discard()
            return
        try:
            done.publish()
        except Exception as e:  # noqa: BLE001 - the disk filled up at the flush, or the store is unreachable
            done.discard()
            self._drop(done.records, "write_failed", _reason(e))
            return
        if self.metrics:
            self.metrics.log_file_closed(self.model, done.records, done.bytes)
        with self._drop_lock:
            if self._dropping:
                self._dropping = False
                log.info("request log of %s: writing again (%d records dropped so far)", self.model, self.dropped)
        self._prune()

    def _prune(self) -> None:
        self._next_prune = time.monotonic() + min(PRUNE_EVERY_S, self.options.keep_seconds / 2 or PRUNE_EVERY_S)
        if not (self.options.keep_seconds or self.options.keep_bytes):
            return
        try:
            deleted = files.prune(self.config.filename_prefix, self.options.keep_seconds, self.options.keep_bytes)
        except Exception as e:  # noqa: BLE001 - the store did not answer the listing: tried again later
            log.warning("request log of %s: could not list %s to delete old files: %s", self.model,
                        self.config.filename_prefix, _reason(e))
            return
        if deleted and self.metrics:
            self.metrics.log_files_deleted(self.model, len(deleted))

    def _drop(self, count: int, reason: str, why: str) -> None:
        if count <= 0:
            return
        with self._drop_lock:
            self.dropped += count
            first = not self._dropping
            self._dropping = True
        if self.metrics:
            self.metrics.log_dropped(self.model, reason, count)
        if first:
            log.warning("request log of %s: dropping records (%s; writing to %s); requests are still answered, the "
                        "drops are counted in :local_serving:request_log_dropped", self.model, why,
                        self.config.filename_prefix)

    def close(self, timeout: float = 30.0) -> None:
        """Writes what is queued, closes the open file, and stops the thread."""
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            log.warning("request log of %s: the writer did not finish in %g s", self.model, timeout)


def _reason(e: Exception) -> str:
    message = str(getattr(e, "message", "") or e).strip().splitlines()
    return f"{type(e).__name__}: {message[0][:300]}" if message else type(e).__name__


class RequestLogs:
    """The collectors of the models that log, by model name; reconfigured when the model config file changes."""

    def __init__(self, options: FileOptions, metrics=None):
        self.options, self.metrics = options, metrics
        self.collectors: Dict[str, Collector] = {}  # replaced whole on a change: the request threads need no lock
        self._lock = threading.Lock()

    def configure(self, configs: Dict[str, Optional[RequestLogging]]) -> None:
        """Starts a collector for each model with a logging config, replaces one whose config changed, and closes
        those of models that no longer log."""
        with self._lock:
            old = self.collectors
            new = {}
            for model, config in configs.items():
                if config is None:
                    continue
                current = old.get(model)
                if current is not None and current.config == config:
                    new[model] = current
                else:
                    new[model] = Collector(model, config, self.options, self.metrics)
                    log.info("model %s: logging %s", model, config.describe())
            self.collectors = new
            for model, collector in old.items():
                if new.get(model) is not collector:
                    collector.close()
                    if model not in new:
                        log.info("model %s: request logging off", model)

    def sampled(self, model: str) -> Optional[Collector]:
        """The model's collector when this request is to be logged, else None (the hot path: a lookup and a draw)."""
        collector = self.collectors.get(model)
        return collector if collector is not None and collector.sample() else None

    def failed(self, model: str) -> None:
        """Counts a failed request of a model that logs (it is not logged as an answer)."""
        if model in self.collectors and self.metrics:
            self.metrics.log_failed_request(model)

    def close(self) -> None:
        with self._lock:
            collectors, self.collectors = self.collectors, {}
        for collector in collectors.values():
            collector.close()
