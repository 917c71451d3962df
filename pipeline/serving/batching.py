"""Server-side batching, like TF Serving's `--enable_batching`: concurrent requests share one model call.

A `Batcher` serves one signature of one model version with its own thread. The thread takes the oldest waiting
request, then every request already waiting (and, with `timeout_ms` > 0, those arriving within that many
milliseconds) until the batch holds `max_batch_size` examples; it concatenates their inputs along the batch axis,
calls the model once and hands each request its rows of the outputs. With the default timeout of 0 (TF Serving's
`batch_timeout_micros` default) a request that finds the model idle runs at once, so batching costs no latency at
low load and merges requests exactly when they would otherwise wait for each other.

Only requests whose inputs have the same shape beyond the batch axis are merged (e.g. fixed-length token ids of
different lengths are not). A request larger than `max_batch_size` runs alone.

Written here rather than taken from a library: the batching libraries on PyPI (e.g. those of model-serving
frameworks) each come with their own server; this is a queue and a thread.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

Arrays = Dict[str, np.ndarray]
_STOP = object()


@dataclass
class _Job:
    inputs: Arrays
    rows: int
    future: concurrent.futures.Future


class Batcher:
    def __init__(self, call: Callable[[Arrays], Arrays], max_batch_size: int, timeout_ms: float, name: str = "",
                 on_batch: Optional[Callable[[int], None]] = None):
        self._call, self.max_batch_size, self.timeout = call, max_batch_size, timeout_ms / 1000.0
        self._on_batch = on_batch  # told the number of examples of each model call (the metrics' batch sizes)
        self._queue: "queue.Queue" = queue.Queue()
        self._held: Optional[_Job] = None  # a job taken from the queue that did not fit the last batch
        self._lock = threading.Lock()
        self._closed = False
        self.calls = 0  # model calls made (for tests and benchmarks)
        self._thread = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    def submit(self, inputs: Arrays) -> Optional[concurrent.futures.Future]:
        """A future of this request's outputs; None once closed (the caller then calls the model itself)."""
        job = _Job(inputs, len(next(iter(inputs.values()))), concurrent.futures.Future())
        with self._lock:
            if self._closed:
                return None
            self._queue.put(job)
        return job.future

    def close(self) -> None:
        """Stops taking requests; those already queued are still answered."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)

    def _next(self, timeout: Optional[float]):
        if self._held is not None:
            job, self._held = self._held, None
            return job
        if timeout is None:
            return self._queue.get()
        if timeout <= 0:
            return self._queue.get_nowait()
        return self._queue.get(timeout=timeout)

    def _run(self) -> None:
        while True:
            first = self._next(None)
            if first is _STOP:
                return
            batch, rows, stop = [first], first.rows, False
            deadline = time.monotonic() + self.timeout
            while rows < self.max_batch_size:
                try:
                    job = self._next(deadline - time.monotonic())
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                if rows + job.rows > self.max_batch_size or not _same_shapes(first.inputs, job.inputs):
                    self._held = job  # the first of the next batch
                    break
                batch.append(job)
                rows += job.rows
            self._execute(batch)
            if stop:
                return

    def _execute(self, batch: List[_Job]) -> None:
        try:
            if len(batch) == 1:
                outputs = [self._call(batch[0].inputs)]
            else:
                merged = self._call({k: np.concatenate([j.inputs[k] for j in batch]) for k in batch[0].inputs})
                bounds = np.cumsum([0] + [j.rows for j in batch])
                outputs = [{k: v[bounds[i]:bounds[i + 1]] for k, v in merged.items()} for i in range(len(batch))]
            self.calls += 1
            if self._on_batch:
                self._on_batch(sum(j.rows for j in batch))
        except Exception as e:  # noqa: BLE001 - every request of the batch gets the model's error
            for job in batch:
                job.future.set_exception(e)
            return
        for job, result in zip(batch, outputs):
            job.future.set_result(result)


def _same_shapes(a: Arrays, b: Arrays) -> bool:
    return a.keys() == b.keys() and all(a[k].shape[1:] == b[k].shape[1:] and a[k].dtype == b[k].dtype for k in a)
