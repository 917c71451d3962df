"""The server's Prometheus metrics, at TF Serving's path `GET /monitoring/prometheus/metrics`, with prometheus-client.

TF Serving's own series, so a dashboard built for it reads these (prometheus-client writes a counter with the
`_total` suffix the Prometheus text format asks for):
- `:tensorflow:serving:request_count{model_name, status}`;
- `:tensorflow:serving:request_latency{model_name, API, entrypoint}`, microseconds, TF Serving's buckets;
- `:tensorflow:serving:request_example_counts{model}`, examples per request.
And this server's breakdown:
- `:local_serving:requests{model_name, version, signature, API, entrypoint, status}`;
- `:local_serving:batch_size{model_name, signature}`: examples per model call, after batching;
- `:local_serving:model_version_state{model_name, version, state}`: 1 for each version's current state.
And the request log's (request_log.py), for the models that log:
- `:local_serving:request_log_records{model_name}`: records in closed log files;
- `:local_serving:request_log_dropped{model_name, reason}`: records lost (queue_full, write_failed, record_failed);
- `:local_serving:request_log_files{model_name}` and `:local_serving:request_log_bytes{model_name}`: files closed
  and their bytes; `:local_serving:request_log_deleted_files{model_name}`: files deleted by the retention limits;
- `:local_serving:request_log_failed_requests{model_name}`: requests that failed, hence not logged as answers.

API is TF Serving's method name (Predict, Classify, Regress, MultiInference, GetModelMetadata, GetModelStatus);
entrypoint is REST or GRPC; status is TF Serving's error code name (OK, INVALID_ARGUMENT, NOT_FOUND, ...).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

PATH = "/monitoring/prometheus/metrics"  # TF Serving's default prometheus_config path
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))  # TF Serving's: 10 us x 1.8^i (~20 minutes)
EXAMPLE_BUCKETS = tuple(2.0 ** i for i in range(15))  # TF Serving's: 1, 2, 4, ... 16384
STATUS_NAMES = {200: "OK", 400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "UNIMPLEMENTED", 413: "INVALID_ARGUMENT",
                499: "CANCELLED", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class Outcome:
    """What a request's handler found out, for its metrics: fill in as known."""

    def __init__(self):
        self.model, self.version, self.signature, self.status, self.examples = "", "", "", "OK", 0


class Metrics:
    def __init__(self, states: Callable[[], Dict[str, list]]):
        """`states`: model name -> its version statuses (ModelRegistry.status()), read at each scrape."""
        self.registry = CollectorRegistry()
        self.request_count = Counter(":tensorflow:serving:request_count", "The total number of requests.",
                                     ["model_name", "status"], registry=self.registry)
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency", "Distribution of wall time (in microseconds) for the request.",
            ["model_name", "API", "entrypoint"], buckets=LATENCY_BUCKETS_US, registry=self.registry)
        self.example_counts = Histogram(":tensorflow:serving:request_example_counts",
                                        "The number of tensorflow.Examples per request.", ["model"],
                                        buckets=EXAMPLE_BUCKETS, registry=self.registry)
        self.requests = Counter(":local_serving:requests", "Requests by model, version, signature, API, entrypoint "
                                "and status.", ["model_name", "version", "signature", "API", "entrypoint", "status"],
                                registry=self.registry)
        self.batch_size = Histogram(":local_serving:batch_size", "Examples per model call, after batching.",
                                    ["model_name", "signature"], buckets=EXAMPLE_BUCKETS, registry=self.registry)
        self.registry.register(_VersionStates(states))
        self.request_log_records = Counter(":local_serving:request_log_records", "Request log records in closed "
                                           "files.", ["model_name"], registry=self.registry)
        self.request_log_dropped = Counter(":local_serving:request_log_dropped", "Request log records lost, by "
                                           "reason.", ["model_name", "reason"], registry=self.registry)
        self.request_log_files = Counter(":local_serving:request_log_files", "Request log files closed.",
                                         ["model_name"], registry=self.registry)
        self.request_log_bytes = Counter(":local_serving:request_log_bytes", "Bytes of the request log files "
                                         "closed.", ["model_name"], registry=self.registry)
        self.request_log_deleted = Counter(":local_serving:request_log_deleted_files", "Request log files deleted "
                                           "by the retention limits.", ["model_name"], registry=self.registry)
        self.request_log_failed = Counter(":local_serving:request_log_failed_requests", "Failed requests of a model "
                                          "that logs (not logged as answers).", ["model_name"],
                                          registry=self.registry)

    @contextmanager
    def request(self, api: str, entrypoint: str) -> Iterator[Outcome]:
        """Times a request and counts it once it ends, however it ends."""
        outcome, start = Outcome(), time.perf_counter()
        try:
            yield outcome
        except BaseException:
            if outcome.status == "OK":
                outcome.status = "INTERNAL"
            raise
        finally:
            model = outcome.model or "unknown"
            self.request_count.labels(model, outcome.status).inc()
            self.request_latency.labels(model, api, entrypoint).observe((time.perf_counter() - start) * 1e6)
            self.requests.labels(model, outcome.version, outcome.signature, api, entrypoint, outcome.status).inc()
            if outcome.examples:
                self.example_counts.labels(model).observe(outcome.examples)

    def batch(self, model: str, signature: str, size: int) -> None:
        self.batch_size.labels(model, signature).observe(size)

    def log_file_closed(self, model: str, records: int, size: int) -> None:
        self.request_log_records.labels(model).inc(records)
        self.request_log_files.labels(model).inc()
        self.request_log_bytes.labels(model).inc(size)

    def log_dropped(self, model: str, reason: str, count: int) -> None:
        self.request_log_dropped.labels(model, reason).inc(count)

    def log_files_deleted(self, model: str, count: int) -> None:
        self.request_log_deleted.labels(model).inc(count)

    def log_failed_request(self, model: str) -> None:
        self.request_log_failed.labels(model).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _VersionStates:
    """`:local_serving:model_version_state`, read from the registries at scrape time."""

    def __init__(self, states: Callable[[], Dict[str, list]]):
        self._states = states

    def collect(self):
        family = GaugeMetricFamily(":local_serving:model_version_state", "1 for each model version's current state "
                                   "(LOADING, AVAILABLE, END).", labels=["model_name", "version", "state"])
        for model, statuses in sorted(self._states().items()):
            for status in statuses:
                family.add_metric([model, status["version"], status["state"]], 1)
        yield family
