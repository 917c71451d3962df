"""Benchmark: one text and 32 texts per request over gRPC, over REST and in-process, side by side in one run.

    .venv/bin/python benchmarks/serving_protocols.py [--serving-dir outputs/rotten_tomatoes/serving] [--seconds 30]
        [--json F]

On the newest pushed version, one server (pipeline/serve.py, batching on, its default) answers both protocols; the
clients are TF Serving's own: the generated PredictionService stub (one channel) and HTTP keep-alive POSTs of the REST
row format. The modes take turns request by request (in-process, REST, gRPC, in-process, ...; one caller, a short
untimed pause before each), so a change in the machine's speed during the run touches them alike. The server overhead
of a protocol is the median, over the turns, of its request's time minus the in-process call's of the same turn: the
pairs cancel the drift that makes the difference of two p50s swing by a millisecond from one run to the next. Every
loop is bounded (--seconds per request size, --max-requests) and the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import http.client
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.serving import newest_version, texts  # noqa: E402
from components.runtime.quiet_exit import quiet_exit  # noqa: E402
from pipeline.dag.config import MODEL_NAME, default_serving_dir  # noqa: E402
from pipeline.serving.process import ServerProcess  # noqa: E402

SIZES = (1, 32)
# Untimed, before each request: TensorFlow's thread pools keep spinning a moment after a call, and the two processes
# (this one's in-process model and the server's) would otherwise slow each other's next request down. Kept short:
# after longer idle times every thread of the chain (gRPC's, the batcher's, TensorFlow's) wakes up slower, which
# doubled the round trip of a status call at 10 ms.
PAUSE_S = 0.002


def in_process(model_dir: str):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    return lambda batch: signature(text=tf.constant(batch))["probabilities"].numpy()


def over_rest(url: str):
    host, port = url.removeprefix("http://").split(":")
    state = {"conn": http.client.HTTPConnection(host, int(port), timeout=60)}  # keep-alive
    path = f"/v1/models/{MODEL_NAME}:predict"

    def call(batch):
        payload = json.dumps({"instances": batch})
        try:
            state["conn"].request("POST", path, payload, {"Content-Type": "application/json"})
            answer = state["conn"].getresponse()
        except (BrokenPipeError, ConnectionError, http.client.RemoteDisconnected):
            # the server closes a connection idle for 5 s (while the other modes ran): open a new one
            state["conn"] = http.client.HTTPConnection(host, int(port), timeout=60)
            state["conn"].request("POST", path, payload, {"Content-Type": "application/json"})
            answer = state["conn"].getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {body[:200]!r}")
        return json.loads(body)
    return call


def over_grpc(target: str):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))

    def call(batch):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(batch))
        return stub.Predict(request, timeout=60).outputs["probabilities"]
    return call


def take_turns(calls: dict, batch, seconds: float, max_requests: int) -> dict:
    """Mode -> latencies (s): one request of each mode in turn until `seconds` pass or `max_requests` each."""
    latencies = {mode: [] for mode in calls}
    deadline = time.perf_counter() + seconds
    for _ in range(max_requests):
        if time.perf_counter() > deadline:
            break
        for mode, call in calls.items():
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            call(batch)
            latencies[mode].append(time.perf_counter() - start)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serving-dir", type=Path, default=default_serving_dir("rotten_tomatoes"))
    parser.add_argument("--seconds", type=float, default=30.0, help="time of each request size (all modes)")
    parser.add_argument("--max-requests", type=int, default=3000, help="request limit of each mode and size")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    model_dir = newest_version(args.serving_dir)
    if model_dir is None:
        return 2
    corpus = texts()
    batches = {size: corpus[:size] for size in SIZES}
    latencies = {}
    with tempfile.TemporaryDirectory() as logs, \
            ServerProcess(args.serving_dir, log=Path(logs) / "serve.log") as server:
        server.wait_for(lambda states: any(s["state"] == "AVAILABLE" for s in states.values()), what="the model")
        calls = {"in-process": in_process(str(model_dir)), "REST": over_rest(server.url),
                 "gRPC": over_grpc(server.grpc_target)}
        for call in calls.values():  # warm-up: tracing, first allocations, connections
            for size in SIZES:
                for _ in range(10):
                    call(batches[size])
        for size in SIZES:
            for mode, measured in take_turns(calls, batches[size], args.seconds, args.max_requests).items():
                latencies[(mode, size)] = measured
    rows = []
    for size in SIZES:
        reference = float(np.percentile(latencies[("in-process", size)], 50)) * 1000
        for mode in calls:
            ms = np.array(latencies[(mode, size)]) * 1000
            p50 = float(np.percentile(ms, 50))
            paired = ms - np.array(latencies[("in-process", size)]) * 1000
            row = {"mode": mode, "texts": size, "requests": len(ms), "p50_ms": round(p50, 2),
                   "p99_ms": round(float(np.percentile(ms, 99)), 2),
                   "p50_minus_in_process_ms": round(p50 - reference, 2),
                   "overhead_ms": round(float(np.median(paired)), 2)}
            rows.append(row)
            print(f"{mode:<10} {size:>2} text(s): p50 {row['p50_ms']:>7} ms, p99 {row['p99_ms']:>7} ms, overhead "
                  f"{row['overhead_ms']:>5} ms (p50s' difference {row['p50_minus_in_process_ms']}; {row['requests']} "
                  "requests)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                         "model": str(model_dir), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    quiet_exit(main())
