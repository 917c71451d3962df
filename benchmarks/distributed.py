"""Benchmark: the Trainer on one process vs two MultiWorkerMirroredStrategy workers on this machine (127.0.0.1).

Both run the pipeline's own run_fn (`python -m pipeline.train_job`) on the same Transform output, with the same
model settings as the run that made it (by default `make run`'s: all-MiniLM-L6-v2 on Rotten Tomatoes) and the same
global batch: one process with batch B, or two workers with B/2 each (TF_CONFIG chief + worker, gRPC collectives on
the CPU). One machine's cores are shared by the two workers, so no speed-up is expected here: what this measures is the
price of the collectives (an all-reduce of every gradient, ~22.7M floats for MiniLM, each step) and of splitting the
cores between two processes.

    .venv/bin/python benchmarks/distributed.py [--pipeline-root outputs/rotten_tomatoes/pipeline_root] \\
        [--steps 60] [--global-batch 32] [--json out.json]

It needs a pipeline root holding a Transform output and a Trainer's training_history.json: `make run`, or, quicker,
`python pipeline/run_local.py --train-steps 1`. Steps per second are run_fn's own measurement (training_history.json:
every step after each epoch's first, which includes tracing); wall seconds include start-up and export.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_jobs  # noqa: E402


def run(workers: int, base: Path, inputs: list, settings: dict, global_batch: int, steps: int) -> dict:
    """Trains `steps` global steps with `workers` processes; returns the chief's measurements."""
    history = train_jobs.train(f"{workers}-workers", base, inputs,
                               dict(settings, batch_size=global_batch // workers, epochs=1), steps, workers)
    rate = history["train_steps_per_second"]
    return {"workers": workers, "replicas": history["replicas"], "global_batch": history["global_batch_size"],
            "steps": steps, "steps_per_second": round(rate, 3), "examples_per_second": round(rate * global_batch, 1),
            "wall_seconds": history["wall_seconds"], "final_loss": history["history"]["loss"][-1]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline-root", type=Path, default=train_jobs.DEFAULT_ROOT)
    p.add_argument("--steps", type=int, default=60, help="global steps per configuration")
    p.add_argument("--global-batch", type=int, default=32, help="examples per step, split between the workers")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    inputs, settings = train_jobs.pipeline_inputs(args.pipeline_root)
    settings["distribution"] = "auto"
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        results = [run(workers, Path(tmp), inputs, settings, args.global_batch, args.steps) for workers in (1, 2)]
    model = settings.get("pretrained_dir") or settings.get("model_size")
    print(f"Trainer, {args.steps} steps of {args.global_batch} examples, model {model}; {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}")
    print(f"{'workers':>8} {'steps/s':>9} {'examples/s':>11} {'wall s':>8} {'loss':>8}")
    for r in results:
        print(f"{r['workers']:>8} {r['steps_per_second']:>9.3f} {r['examples_per_second']:>11.1f} "
              f"{r['wall_seconds']:>8.1f} {r['final_loss']:>8.4f}")
    ratio = results[1]["steps_per_second"] / results[0]["steps_per_second"]
    print(f"2 workers run at {ratio:.2f}x the steps per second of 1 process on this machine")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratio": ratio, "cpus": os.cpu_count(),
                                         "steps": args.steps, "global_batch": args.global_batch, "model": model},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
