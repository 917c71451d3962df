"""Benchmark: the local model server (pipeline/serve.py) against calling the SavedModel in-process.

    .venv/bin/python benchmarks/serving.py [--serving-dir outputs/rotten_tomatoes/serving] [--seconds 10] [--json F]

On the newest pushed version (by default the one `make run` pushed), with one real Rotten Tomatoes text per request:
- latency (p50, p99) at concurrency 1: in-process `serving_default` calls, then POST :predict to the server;
- throughput (texts per second) at concurrency 1, 4 and 16: in-process from that many threads, and the server with
  batching (its default) and with --no-batching;
- the model's own ceiling: in-process calls of 16 texts at a time (what batching can reach at best).
Every loop is bounded (at most --seconds and --max-requests each) and stops by itself; the server listens on
127.0.0.1 only. The clients run on the same cores as the server, as a sidecar or a local caller would.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import csv
import http.client
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from components.runtime.quiet_exit import quiet_exit  # noqa: E402
from pipeline.dag.config import MODEL_NAME, default_serving_dir  # noqa: E402
from pipeline.data import assets  # noqa: E402
from pipeline.serving.process import ServerProcess  # noqa: E402

CONCURRENCY = (1, 4, 16)


def texts(limit: int = 2000):
    with open(assets.ensure_dataset("rotten_tomatoes") / "data.csv", newline="", encoding="utf-8") as f:
        return [row["text"] for _, row in zip(range(limit), csv.DictReader(f))]


def run_loop(call, concurrency: int, seconds: float, max_requests: int, corpus):
    """Calls `call(text)` from `concurrency` threads until `seconds` pass or `max_requests` are done; returns the
    latencies (s) and the wall time."""
    latencies, lock, counter = [], threading.Lock(), iter(range(max_requests))
    deadline = time.perf_counter() + seconds

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            start = time.perf_counter()
            call(corpus[i % len(corpus)])
            with lock:
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


def summarise(latencies, wall):
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "texts_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def in_process(model_dir: str):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    signature = tf.saved_model.load(model_dir).signatures["serving_default"]

    def call(text):
        signature(text=tf.constant([text]))["probabilities"].numpy()

    def call_batch(texts):
        signature(text=tf.constant(texts))["probabilities"].numpy()
    return call, call_batch


def ceiling(call_batch, corpus, seconds: float, batch: int = 16) -> dict:
    """Texts per second of in-process calls on `batch` texts at a time, one caller."""
    for _ in range(5):
        call_batch(corpus[:batch])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call_batch(corpus[done % len(corpus):done % len(corpus) + batch] or corpus[:batch])
        done += batch
    return {"mode": f"in-process, {batch} texts a call", "concurrency": 1,
            "texts_per_s": round(done / (time.perf_counter() - start), 1)}


def over_http(url: str):
    host, port = url.removeprefix("http://").split(":")
    local = threading.local()
    path = f"/v1/models/{MODEL_NAME}:predict"

    def call(text):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(host, int(port), timeout=60)  # keep-alive, one per thread
        local.conn.request("POST", path, json.dumps({"instances": [text]}), {"Content-Type": "application/json"})
        answer = local.conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {body[:200]!r}")
    return call


def measure(name, call, corpus, seconds, max_requests, results):
    for _ in range(20):  # warm-up: tracing, first allocations, connections
        call(corpus[0])
    for concurrency in CONCURRENCY:
        row = summarise(*run_loop(call, concurrency, seconds, max_requests, corpus))
        results.append({"mode": name, "concurrency": concurrency, **row})
        print(f"{name:<22} concurrency {concurrency:>2}: {row['texts_per_s']:>7} texts/s, p50 {row['p50_ms']} ms, "
              f"p99 {row['p99_ms']} ms ({row['requests']} requests)", flush=True)


def newest_version(serving_dir: Path) -> Optional[Path]:
    """The newest pushed version's folder under serving_dir (TF Serving's layout), or None; says so on stderr."""
    base = serving_dir / MODEL_NAME
    versions = sorted((int(p.name) for p in base.iterdir() if p.name.isdigit()), reverse=True) if base.is_dir() else []
    if not versions:
        print(f"error: no model under {base}: run `make run` first, or pass --serving-dir", file=sys.stderr)
        return None
    return base / str(versions[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serving-dir", type=Path, default=default_serving_dir("rotten_tomatoes"))
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit of each loop")
    parser.add_argument("--max-requests", type=int, default=5000, help="request limit of each loop")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    model_dir = newest_version(args.serving_dir)
    if model_dir is None:
        return 2
    corpus = texts()
    results = []
    call, call_batch = in_process(str(model_dir))
    measure("in-process SavedModel", call, corpus, args.seconds, args.max_requests, results)
    results.append(ceiling(call_batch, corpus, args.seconds))
    print(f"{results[-1]['mode']:<22}: {results[-1]['texts_per_s']:>7} texts/s (the most batching can reach)",
          flush=True)
    with tempfile.TemporaryDirectory() as logs:
        for name, flags in (("server, batching", ()), ("server, no batching", ("--no-batching",))):
            with ServerProcess(args.serving_dir, *flags, log=Path(logs) / "serve.log") as server:
                server.wait_for(lambda states: any(s["state"] == "AVAILABLE" for s in states.values()),
                                what="the model")
                measure(name, over_http(server.url), corpus, args.seconds, args.max_requests, results)
    by = {(r["mode"], r["concurrency"]): r for r in results}
    overhead = by[("server, batching", 1)]["p50_ms"] - by[("in-process SavedModel", 1)]["p50_ms"]
    gain = by[("server, batching", 16)]["texts_per_s"] / by[("server, no batching", 16)]["texts_per_s"]
    print(f"server overhead at p50 (concurrency 1): {overhead:.2f} ms; batching at concurrency 16: {gain:.2f}x "
          "the throughput without", flush=True)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "model": str(model_dir),
            "results": results, "overhead_p50_ms": round(overhead, 2), "batching_gain_16": round(gain, 2)}, indent=1))
    return 0


if __name__ == "__main__":
    quiet_exit(main())
