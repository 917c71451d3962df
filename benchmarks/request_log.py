"""Benchmark: what request logging costs a request. One-text REST predicts at concurrency 1 and 16, against two servers
(pipeline/serve.py) on the same model, side by side in one run: logging off, and logging every request (rate 1.0).

    .venv/bin/python benchmarks/request_log.py [--serving-dir DIR] [--seconds 20] [--no-batching] [--json F]

The model: the newest version under --serving-dir (a pushed model), or by default a small SavedModel with the
classifier's signatures (tests/support/tiny_classifier.py: a few operations, no encoder), on which a request is
mostly the server's own work, so the log's share is the largest it can be. The texts are real Rotten Tomatoes
reviews, one per request, each text once per server. Both servers run at once and the clients take turns:
- concurrency 1: one request to each server in turn, the first of the pair alternating (a short untimed pause before
  each); the overhead is the median, over the turns, of the logging server's time minus the other's in the same turn
  (pairs cancel the machine's drift);
- concurrency 16: 16 threads, each with its own keep-alive connection, for a block of BLOCK_S seconds on one server,
  then on the other, the first of the pair alternating, until --seconds have passed for each; the throughput ratio
  is the median, over the pairs of blocks, of the logging server's requests per second over the other's (with the
  quartiles: how much the busy machine moved it), and the p50 overhead the median of the pairs' p50 differences.
  Each server's CPU time (/proc) over the run, per request, says what logging costs regardless of what else runs.
At the end the logging server is stopped and its files read back: every request answered must be a record.
Every loop is bounded; the servers listen on 127.0.0.1 only; the clients share the cores with them.
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
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))  # support/tiny_classifier.py

import numpy as np  # noqa: E402

from benchmarks.serving import newest_version, texts  # noqa: E402
from components.runtime.quiet_exit import quiet_exit  # noqa: E402
from components.tf_serving import request_log as files  # noqa: E402
from pipeline.dag.config import MODEL_NAME  # noqa: E402
from pipeline.serving.process import ServerProcess  # noqa: E402

PAUSE_S = 0.002  # untimed, before each request at concurrency 1 (see benchmarks/serving_protocols.py)
BLOCK_S = 2.0  # one block of the concurrency-16 run, on one server


class Client:
    """REST :predict over one keep-alive connection."""

    def __init__(self, url: str):
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.path = f"/v1/models/{MODEL_NAME}:predict"

    def __call__(self, text: str) -> None:
        body = json.dumps({"instances": [text]})
        try:
            self.conn.request("POST", self.path, body, {"Content-Type": "application/json"})
            answer = self.conn.getresponse()
        except (BrokenPipeError, ConnectionError, http.client.RemoteDisconnected):
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)  # closed after 5 s idle
            self.conn.request("POST", self.path, body, {"Content-Type": "application/json"})
            answer = self.conn.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {data[:200]!r}")


def one_at_a_time(servers: dict, corpus, seconds: float, max_requests: int) -> dict:
    """Server -> latencies (s), one request to each in turn."""
    clients = {name: Client(url) for name, url in servers.items()}
    latencies = {name: [] for name in servers}
    deadline = time.perf_counter() + seconds
    for i in range(max_requests):
        if time.perf_counter() > deadline:
            break
        for name, client in (list(clients.items()) if i % 2 == 0 else reversed(clients.items())):
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            client(corpus[i % len(corpus)])
            latencies[name].append(time.perf_counter() - start)
    return latencies


def block(url: str, corpus, offset: int, concurrency: int, seconds: float):
    """(latencies, wall seconds) of `concurrency` threads sending requests to `url` for `seconds`."""
    latencies, lock = [], threading.Lock()
    counter = iter(range(offset, offset + 10 ** 7))
    clients = [Client(url) for _ in range(concurrency)]
    deadline = time.perf_counter() + seconds

    def worker(client):
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter)
            start = time.perf_counter()
            client(corpus[i % len(corpus)])
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - start


def concurrent(servers: dict, corpus, concurrency: int, seconds: float) -> dict:
    """Server -> [(latencies, wall seconds) of each block], the blocks of both servers taken in turn."""
    results = {name: [] for name in servers}
    offset = 0
    for i in range(max(1, round(seconds / BLOCK_S))):
        for name, url in (list(servers.items()) if i % 2 == 0 else reversed(servers.items())):
            latencies, wall = block(url, corpus, offset, concurrency, BLOCK_S)
            offset += len(latencies)
            results[name].append((latencies, wall))
    return results


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serving-dir", type=Path, help="a pushed model's serving folder (default: a small model "
                                                          "saved for the run)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time of each server at each concurrency")
    parser.add_argument("--max-requests", type=int, default=5000, help="pairs of requests at concurrency 1")
    parser.add_argument("--no-batching", action="store_true", help="both servers without batching (each request "
                                                                     "its own model call)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    corpus = texts()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.serving_dir:
            if newest_version(args.serving_dir) is None:
                return 2
            serving_dir, model = args.serving_dir, str(newest_version(args.serving_dir))
        else:
            from support import tiny_classifier

            serving_dir = scratch / "serving"
            model = str(tiny_classifier.save(serving_dir / MODEL_NAME / "1"))
        prefix = str(scratch / "logs" / "requests")
        common = ["--no-batching"] if args.no_batching else []
        with ServerProcess(serving_dir, *common, log=scratch / "off.log") as off, \
                ServerProcess(serving_dir, *common, "--request-log", prefix, "--request-log-sampling", "1.0",
                              log=scratch / "on.log") as on:
            for server in (off, on):
                server.wait_for(lambda states: any(s["state"] == "AVAILABLE" for s in states.values()),
                                what="the model")
            servers = {"logging off": off.url, "logging at rate 1.0": on.url}
            warm = one_at_a_time(servers, corpus, 2.0, 200)  # warm-up: connections, first allocations
            sent = len(warm["logging at rate 1.0"])
            single = one_at_a_time(servers, corpus, args.seconds, args.max_requests)
            sent += len(single["logging at rate 1.0"])
            cpu_before = {name: cpu_seconds(s.proc.pid) for name, s in (("logging off", off),
                                                                          ("logging at rate 1.0", on))}
            many = concurrent(servers, corpus, 16, args.seconds)
            cpu = {name: cpu_seconds(s.proc.pid) - cpu_before[name] for name, s in (("logging off", off),
                                                                                  ("logging at rate 1.0", on))}
            sent += sum(len(latencies) for latencies, _ in many["logging at rate 1.0"])
        logged = sum(1 for _ in files.read(files.log_files(prefix)))
    off_single = np.array(single["logging off"]) * 1000
    for name in servers:
        ms = np.array(single[name]) * 1000
        ms16 = np.concatenate([np.array(latencies) for latencies, _ in many[name]]) * 1000
        rows.append({"server": name, "c1_requests": len(ms), "c1_p50_ms": round(float(np.percentile(ms, 50)), 3),
                     "c1_p99_ms": round(float(np.percentile(ms, 99)), 3),
                     "c1_overhead_ms": round(float(np.median(ms - off_single)), 3),
                     "c1_throughput": round(len(ms) / (ms.sum() / 1000), 1),
                     "c16_requests": len(ms16), "c16_p50_ms": round(float(np.percentile(ms16, 50)), 3),
                     "c16_p99_ms": round(float(np.percentile(ms16, 99)), 3),
                     "c16_throughput": round(len(ms16) / sum(wall for _, wall in many[name]), 1),
                     "c16_cpu_ms_per_request": round(cpu[name] * 1000 / len(ms16), 4)})
    pairs = list(zip(many["logging off"], many["logging at rate 1.0"]))
    ratios = [(len(on) / on_wall) / (len(off) / off_wall) for (off, off_wall), (on, on_wall) in pairs]
    p50s = [float(np.percentile(on, 50) - np.percentile(off, 50)) * 1000 for (off, _), (on, _) in pairs]
    summary = {"c16_throughput_ratio_median": round(float(np.median(ratios)), 3),
               "c16_throughput_ratio_quartiles": [round(float(q), 3) for q in np.percentile(ratios, [25, 75])],
               "c16_p50_overhead_ms_median": round(float(np.median(p50s)), 3), "pairs": len(pairs)}
    for row in rows:
        print(f"{row['server']:<20} c=1: p50 {row['c1_p50_ms']:.3f} ms (paired overhead {row['c1_overhead_ms']:+.3f} "
              f"ms), {row['c1_throughput']:.0f}/s; c=16: p50 {row['c16_p50_ms']:.3f} ms, {row['c16_throughput']:.0f}/s "
              f", {row['c16_cpu_ms_per_request']:.3f} CPU ms a request ({row['c1_requests']} + {row['c16_requests']} "
              "requests)", flush=True)
    print(f"c=16 over {len(pairs)} pairs of blocks: throughput ratio median {summary['c16_throughput_ratio_median']} "
          f"(quartiles {summary['c16_throughput_ratio_quartiles']}), p50 overhead median "
          f"{summary['c16_p50_overhead_ms_median']:+.3f} ms; records logged {logged} of {sent} requests sent to the "
          "logging server", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                         "batching": not args.no_batching,
                                         "model": model if args.serving_dir else "tests/support/tiny_classifier.py",
                                         "rows": rows, "c16": summary, "logged": logged, "sent": sent},
                                        indent=1))
    return 0 if logged == sent else 1


if __name__ == "__main__":
    quiet_exit(main())
