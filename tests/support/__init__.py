"""Helpers shared by the tests (importable as `support` through pytest's `pythonpath`, see pyproject.toml).

This module: the checkout's paths, the quick pipeline run's arguments, `run_local` (pipeline/run_local.py as a user runs
it), `write_csv` (the tests' one writer of CSV files), `assert_one_error`, and groups of node ids (UPSTREAM,
OWN_DATA_UPSTREAM, VALIDATION). Nothing here imports TensorFlow or TFX. The modules beside it: `browser` (Playwright
pages), `retraining` and `own_data` (data the tests write), `checkpoints`, `signatures`, `torch_state_dict` (model
files), `evaluator_run` (the real Evaluator on stand-in models), `serving_server` (publishing versions, the server),
`kubeflow`, `kfp_stub`, `kfp_local`, `task_process`, `kfp_rules` (the Kubeflow runner, a stub KFP API, the spec executed
locally and how its tasks' processes start, the open-source backend's rules for a spec), `k8s_tools` (the manifests and
the linters), `tft_run` (a real TF Transform run), `korean` (a small Korean corpus) and `ci` (a program the suite needs
is missing: skipped, or failed under CI=true).

Fixtures are not here: they live in tests/conftest.py (the shared pipeline runs, the browser) and in each room's
conftest.py.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

from pipeline.dag import nodes  # noqa: E402  (the node ids alone: no TFX)

REPO = Path(__file__).resolve().parents[2]
RUN_LOCAL = REPO / "pipeline" / "run_local.py"
FIXTURES = REPO / "tests" / "fixtures"  # data files of the tests (reference outputs)

# The quick run's checkpoint: the packaged all-MiniLM-L6-v2 cut to its first four layers (support/short_checkpoint.py),
# written under data/ by `quick_checkpoint()` before the first run that needs it.
QUICK_CHECKPOINT = REPO / "data" / "checkpoints" / "all-MiniLM-L6-v2-first-4-layers"
# Small enough for the suite's time budget, and a model that learns: the short pretrained encoder on 2,000 Rotten
# Tomatoes texts (1,599 train, 200 eval, 201 test) reaches about 0.78 eval accuracy in two epochs, where the eval
# split's majority share is 0.62 (the choice: benchmarks/results.md, "The suite's quick model"). The default gates
# hold, so a model that answers one class is not even pushed; tests/conftest.py's `first_run` asserts more. No
# masked-LM stage: a third of the run's training, on the suite's longest chain (tests/e2e/test_pretraining.py has a
# small run of its own).
QUICK_ARGS = ["--max-examples", "2000", "--pretrained", str(QUICK_CHECKPOINT), "--max-seq-length", "64",
              "--epochs", "2", "--batch-size", "32", "--learning-rate", "2e-4",
              # bfloat16 compute where the CPU has it (tests/e2e/test_exported_model.py checks the served model is
              # float32)
              "--precision", "bf16_if_native"]


def quick_checkpoint() -> Path:
    """QUICK_CHECKPOINT, written from the packaged checkpoint when missing."""
    from pipeline.data import assets
    from support.short_checkpoint import first_layers

    return first_layers(assets.ensure_checkpoint(), QUICK_CHECKPOINT, 4)


# The nodes a second run on the same data takes from the cache, and those that run again: the validation against
# the last accepted data, whose baseline is then the first run's statistics (they are cheap).
UPSTREAM = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.IMPORT_SCHEMA_GEN, nodes.SCHEMA_GEN, nodes.EXAMPLE_VALIDATOR,
            nodes.TRANSFORM)
# A pipeline without a curated schema (support/retraining.py's) curates SchemaGen's, then publishes the frozen one.
OWN_DATA_UPSTREAM = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.SCHEMA_GEN, nodes.SCHEMA_CURATOR,
                     nodes.EXAMPLE_VALIDATOR, nodes.TRANSFORM)
VALIDATION = (nodes.DRIFT_VALIDATOR, nodes.DATA_GATE, nodes.TEXT_STATISTICS_GEN, nodes.TEXT_GATE)


def run_local(*args, timeout=900, env=None):
    """Runs pipeline/run_local.py as a user would (a fresh interpreter), returning the CompletedProcess."""
    full_env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", **(env or {})}
    return subprocess.run([sys.executable, str(RUN_LOCAL), *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def write_csv(path: Path, rows, header: Optional[Sequence[str]] = ("text", "label")) -> Path:
    """Writes `rows` (lists of fields) under `header` (None: no header row) as a CSV file, its folder made; the one
    writer of the tests' data files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def refusal(stderr: str) -> str:
    """The one refusal in stderr: its `error: ...` line and the indented lines continuing it (a gate's problems, one
    a line, and what to do), joined by newlines. No traceback, and no second error."""
    assert "Traceback" not in stderr, stderr[-4000:]
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(starts) == 1, stderr[-4000:]
    block = [lines[starts[0]]]
    for line in lines[starts[0] + 1:]:
        if not line.startswith("  "):
            break
        block.append(line)
    return "\n".join(block)


def assert_one_error(stderr: str, *fragments: str) -> str:
    """stderr is exactly one `error: ...` line (no traceback, no log noise) containing every fragment."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
