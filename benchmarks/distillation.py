"""Benchmark: the fine-tuned model (the teacher) against students of fewer layers, accuracy against latency.

    .venv/bin/python benchmarks/distillation.py [--dataset rotten_tomatoes | --data-root DIR] [--students 2,3,4]
        [--labels-only 3] [--variant "NAME=FLAGS"]... [--out outputs/distillation-NAME] [--seconds 20]
        [-- EXTRA RUN_LOCAL FLAGS]

Training: pipeline/run_local.py with its defaults (and the extra flags) into one pipeline root, first without a
student, then once per --students N with --student-layers N (the Trainer's model, the teacher, comes from TFX's cache),
once per --labels-only N with --distill-soft-weight 0 (the same student trained on the labels alone), and once per
--variant with its own flags (e.g. "student-3-t4=--student-layers 3 --distill-temperature 4"). Each variant
pushes into a serving folder of its own, so each is judged as a first model (no baseline to beat). A variant whose
summary (with its evaluation) is already in --out is not run again (--retrain runs them all).

Measured, side by side in one process and one run, for every variant: eval and test accuracy and macro F1 (the
run's Evaluator and model card), the exported size, the stage's wall time (Trainer or Distiller), and the latency of
one text and of 32 texts a call, in-process (the SavedModel's serving_default) and over REST through pipeline/serve.py
(what `make serve` runs; all servers up at once on 127.0.0.1). The variants take turns call by call, so a slow moment
of the machine touches them alike; each latency is the median of the calls of --seconds per size (at most
--max-calls), after untimed warm-up calls. The texts rotate through Rotten Tomatoes' (benchmarks/serving.py's
corpus), or with --data-root through the eval split's (or all) CSV files' --text-column.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.serving import texts  # noqa: E402
from benchmarks.serving_protocols import in_process, over_rest  # noqa: E402
from components.runtime.quiet_exit import quiet_exit  # noqa: E402
from pipeline.dag import nodes  # noqa: E402
from pipeline.dag.config import OUTPUTS_DIR  # noqa: E402
from pipeline.serving.process import ServerProcess  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SIZES = (1, 32)
WARMUP_CALLS = 10


def variants(students, labels_only, more=()):
    """name -> the run_local flags of that variant."""
    out = {"teacher": []}
    out.update({f"student-{n}": ["--student-layers", str(n)] for n in students})
    out.update({f"student-{n}-labels-only": ["--student-layers", str(n), "--distill-soft-weight", "0"]
                for n in labels_only})
    for given in more:
        name, _, flags = given.partition("=")
        out[name.strip()] = flags.split()
    return out


def train(name: str, flags: list, base: list, out: Path, retrain: bool) -> dict:
    summary = out / f"summary-{name}.json"
    if summary.exists() and not retrain and json.loads(summary.read_text()).get("eval_metrics"):
        print(f"{name}: kept from {summary}", flush=True)  # a finished run's; a refused run is run again
        return json.loads(summary.read_text())
    command = [sys.executable, str(REPO / "pipeline" / "run_local.py"), *base, *flags, "--pipeline-root",
               str(out / "root"), "--serving-dir", str(out / f"serving-{name}"), "--summary-json", str(summary)]
    print(f"{name}: {' '.join(command[1:])}", flush=True)
    start = time.time()
    with open(out / f"{name}.log", "w") as log:
        proc = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"error: the {name} run failed (exit {proc.returncode}); see {out / f'{name}.log'}")
    print(f"{name}: done in {time.time() - start:.0f} s", flush=True)
    return json.loads(summary.read_text())


def model_dir(summary: dict) -> Path:
    return Path(summary["pushed_dir"] or os.path.join(summary["model_uri"], "Format-Serving"))


def size_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def take_turns(calls: dict, corpus: list, size: int, seconds: float, max_calls: int) -> dict:
    """Name -> latencies (ms): one call of each in turn, on the same texts, until `seconds` pass or `max_calls`."""
    latencies = {name: [] for name in calls}
    deadline = time.perf_counter() + seconds
    for i in range(max_calls):
        if time.perf_counter() > deadline:
            break
        batch = [corpus[(i * size + k) % len(corpus)] for k in range(size)]
        for name, call in calls.items():
            start = time.perf_counter()
            call(batch)
            latencies[name].append((time.perf_counter() - start) * 1000)
    return latencies


def measure(calls: dict, corpus: list, seconds: float, max_calls: int) -> dict:
    """(name, size) -> median latency in ms."""
    for call in calls.values():
        for size in SIZES:
            for _ in range(WARMUP_CALLS):
                call(corpus[:size])
    medians = {}
    for size in SIZES:
        for name, ms in take_turns(calls, corpus, size, seconds, max_calls).items():
            medians[(name, size)] = round(float(np.median(ms)), 2)
    return medians


def row(name: str, summary: dict) -> dict:
    eval_metrics, test = summary.get("eval_metrics") or {}, summary.get("test_metrics") or {}
    stage = nodes.DISTILLER if name != "teacher" else nodes.TRAINER
    return {"variant": name, "eval_accuracy": eval_metrics.get("sparse_categorical_accuracy"),
            "eval_macro_f1": eval_metrics.get("macro_f1_score"), "test_accuracy": test.get("accuracy"),
            "test_macro_f1": test.get("macro_f1"), "size_mb": size_mb(model_dir(summary)),
            "stage_seconds": round(((summary.get("components") or {}).get(stage) or {}).get("seconds", 0.0)),
            "model_dir": str(model_dir(summary))}


def markdown(rows: list) -> str:
    head = ("| variant | eval acc | eval F1 | test acc | test F1 | size MB | stage s | 1 text in-process ms | "
            "32 texts in-process ms | 1 text REST ms | 32 texts REST ms |\n|" + "---|" * 11)
    lines = [head]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['eval_accuracy']:.3f} | {r['eval_macro_f1']:.3f} | "
                     f"{r['test_accuracy']:.3f} | {r['test_macro_f1']:.3f} | {r['size_mb']} | {r['stage_seconds']} | "
                     f"{r['in_process_1']} | {r['in_process_32']} | {r['rest_1']} | {r['rest_32']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="rotten_tomatoes")
    parser.add_argument("--data-root", type=Path, help="your own data instead of --dataset")
    parser.add_argument("--students", default="2,3,4", help="student depths, comma-separated")
    parser.add_argument("--labels-only", default="", help="student depths also trained on the labels alone")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                        help="one more variant: a name and its run_local flags")
    parser.add_argument("--out", type=Path, help="default: outputs/distillation-NAME")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency measuring time per size and mode")
    parser.add_argument("--max-calls", type=int, default=2000, help="calls per size and mode, at most")
    parser.add_argument("--retrain", action="store_true", help="run every variant again, even one in --out")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    parser.add_argument("--text-column", default="text", help="with --data-root: the texts the latency rotates through")
    parser.add_argument("extra", nargs="*", help="more run_local flags (after --), for every variant")
    args = parser.parse_args()
    name = args.data_root.name if args.data_root else args.dataset
    out = (args.out or OUTPUTS_DIR / f"distillation-{name}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = (["--data-root", str(args.data_root)] if args.data_root else ["--dataset", args.dataset]) + args.extra
    to_run = variants([int(n) for n in args.students.split(",") if n],
                      [int(n) for n in args.labels_only.split(",") if n], args.variant)
    summaries = {v: train(v, flags, base, out, args.retrain) for v, flags in to_run.items()}
    rows = [row(v, s) for v, s in summaries.items()]

    corpus = texts() if not args.data_root else _own_texts(args.data_root, args.text_column)
    calls = {r["variant"]: in_process(r["model_dir"]) for r in rows}
    latency = measure(calls, corpus, args.seconds, args.max_calls)
    with tempfile.TemporaryDirectory() as logs:
        servers = [ServerProcess(Path(r["model_dir"]).parent.parent, log=Path(logs) / f"{r['variant']}.log")
                   for r in rows]
        try:
            for server in servers:
                server.__enter__()
            for server in servers:
                server.wait_for(lambda states: any(s["state"] == "AVAILABLE" for s in states.values()),
                                what="the model")
            rest = measure({r["variant"]: over_rest(s.url) for r, s in zip(rows, servers)}, corpus, args.seconds,
                           args.max_calls)
        finally:
            for server in servers:
                server.__exit__(None, None, None)
    for r in rows:
        for size in SIZES:
            r[f"in_process_{size}"] = latency[(r["variant"], size)]
            r[f"rest_{size}"] = rest[(r["variant"], size)]
    teacher = rows[0]
    for r in rows[1:]:
        r["speedup_1_text_in_process"] = round(teacher["in_process_1"] / r["in_process_1"], 2)
        r["test_accuracy_change_points"] = round((r["test_accuracy"] - teacher["test_accuracy"]) * 100, 1)
    print(markdown(rows))
    for r in rows[1:]:
        print(f"{r['variant']}: {r['speedup_1_text_in_process']}x faster one text in-process, test accuracy "
              f"{r['test_accuracy_change_points']:+} points")
    if args.json:
        args.json.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                         "command": " ".join(sys.argv), "rows": rows}, indent=1))
    return 0


def _own_texts(data_root: Path, column: str, limit: int = 2000) -> list:
    import csv

    files = sorted((data_root / "eval").glob("*.csv")) or sorted(data_root.rglob("*.csv"))
    found = []
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            found += [row[column] for row in csv.DictReader(f) if row.get(column)]
    return found[:limit]


if __name__ == "__main__":
    quiet_exit(main())
