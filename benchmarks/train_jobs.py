"""Running the pipeline's Trainer step (`python -m pipeline.train_job`) on a pipeline root's Transform output, with
setting overrides and one or more workers on 127.0.0.1: what benchmarks/distributed.py and precision.py compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the project's packages (components/, pipeline/), once for every helper here
DEFAULT_ROOT = REPO / "outputs" / "rotten_tomatoes" / "pipeline_root"


def latest(folder: Path) -> Path:
    """The newest execution folder of a pipeline root's component output (numbered folders)."""
    runs = [p for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    if not runs:
        raise SystemExit(f"error: no {folder.parent.name} output under {folder}; run `make run` (or "
                         "`python pipeline/run_local.py --train-steps 1`) first, or pass --pipeline-root.")
    return max(runs, key=lambda p: int(p.name))


def pipeline_inputs(root: Path):
    """(train_job's input flags, the Trainer settings of the root's latest Trainer run)."""
    inputs = ["--examples", str(latest(root / "Transform" / "transformed_examples")),
              "--transform-graph", str(latest(root / "Transform" / "transform_graph"))]
    settings = json.loads((latest(root / "Trainer" / "model") / "training_history.json").read_text())["settings"]
    import dataclasses

    from components.settings.data import DataSettings
    from components.settings.trainer import TrainerSettings

    # A setting added since that run takes its default.
    defaults = {**TrainerSettings().to_custom_config(), **{f.name: f.default for f in dataclasses.fields(DataSettings)}}
    return inputs, {**defaults, **settings}


def train(name: str, base: Path, inputs: List[str], settings: Dict, steps: int = 0, workers: int = 1,
          timeout: float = 7200, env: Optional[Dict[str, str]] = None, step: str = "trainer") -> Dict:
    """Trains with `settings` (the per-replica batch included) on `workers` processes; returns the chief's
    training_history.json plus the wall seconds and the model folder. steps=0: the configured epochs."""
    config = base / f"config-{name}.json"
    config.write_text(json.dumps(settings))
    full_env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    full_env.update(TF_USE_LEGACY_KERAS="1", PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    from components.model.distribution import localhost_cluster  # TF-free

    tf_configs = localhost_cluster(workers) if workers > 1 else [None]
    procs, start = [], time.perf_counter()
    for index, tf_config in enumerate(tf_configs):
        task_env = dict(full_env)
        if tf_config:
            task_env["TF_CONFIG"] = tf_config
        log = open(base / f"log-{name}-{index}.txt", "w")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pipeline.train_job", *inputs, "--model-dir", str(base / f"model-{name}"),
             "--config", str(config), "--train-steps", str(steps), "--step", step], cwd=REPO, env=task_env, stdout=log,
            stderr=subprocess.STDOUT))
    codes = [p.wait(timeout=timeout) for p in procs]
    wall = time.perf_counter() - start
    if any(codes):
        tail = (base / f"log-{name}-0.txt").read_text(errors="replace").splitlines()[-25:]
        raise SystemExit("\n".join(tail) + f"\nerror: {name} failed (its log: {base}/log-{name}-0.txt)")
    history = json.loads((base / f"model-{name}" / ("training_history.json" if step == "trainer" else
                                                    "pretraining_history.json")).read_text())
    history.update(wall_seconds=round(wall, 1), model_dir=str(base / f"model-{name}"))
    return history
