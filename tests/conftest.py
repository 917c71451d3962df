"""Shared fixtures: one real pipeline run on a small deterministic subset, reused by several tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

REPO = Path(__file__).resolve().parent.parent
RUN_LOCAL = REPO / "pipeline" / "run_local.py"

# Small enough for the suite's time budget. A tiny model on 1,000 examples barely beats the majority class,
# so the absolute accuracy gate is off here (the tests check the mechanics: blessing, baseline, push).
QUICK_ARGS = ["--max-examples", "1000", "--pretrained", "none", "--model-size", "tiny",
              "--max-seq-length", "64", "--epochs", "2", "--batch-size", "32", "--learning-rate", "1e-3",
              "--vocab", "checkpoint", "--min-accuracy", "0.0", "--min-macro-f1", "0.0",
              # the masked-LM stage, one pass (a from-scratch encoder learns quickly at this rate)
              "--pretrain-epochs", "1", "--pretrain-learning-rate", "1e-3",
              # bfloat16 compute where the CPU has it (tests/test_trainer.py checks the served model is float32)
              "--precision", "bf16_if_native"]

# The nodes a second run on the same data takes from the cache, and those that run again: the validation against
# the last accepted data, whose baseline is then the first run's statistics (they are cheap).
from pipeline.dag import pipeline as nodes  # noqa: E402  (the node ids, defined where the DAG is built)

UPSTREAM = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.IMPORT_SCHEMA_GEN, nodes.SCHEMA_GEN, nodes.EXAMPLE_VALIDATOR,
            nodes.TRANSFORM)
# A pipeline without a curated schema (tests/retraining.py's) curates SchemaGen's, then publishes the frozen one.
OWN_DATA_UPSTREAM = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.SCHEMA_GEN, nodes.SCHEMA_CURATOR,
                     nodes.EXAMPLE_VALIDATOR, nodes.TRANSFORM)
VALIDATION = (nodes.DRIFT_VALIDATOR, nodes.DATA_GATE, nodes.TEXT_STATISTICS_GEN, nodes.TEXT_GATE)


def run_local(*args, timeout=900, env=None):
    """Runs pipeline/run_local.py as a user would (a fresh interpreter), returning the CompletedProcess."""
    full_env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", **(env or {})}
    return subprocess.run([sys.executable, str(RUN_LOCAL), *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_error(stderr: str, *fragments: str) -> str:
    """stderr is exactly one `error: ...` line (no traceback, no log noise) containing every fragment."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def first_run(tmp_path_factory):
    """The first run into a fresh pipeline root: returns (paths, summary dict, process)."""
    base = tmp_path_factory.mktemp("e2e")
    paths = {"pipeline_root": base / "root", "serving_dir": base / "serving", "summary": base / "summary1.json",
             "temp": base / "tmp"}  # the run's TMPDIR, for what it leaves in the temp folder
    paths["temp"].mkdir()
    proc = run_local(*QUICK_ARGS, "--pipeline-root", paths["pipeline_root"], "--serving-dir", paths["serving_dir"],
                     "--summary-json", paths["summary"], env={"TMPDIR": str(paths["temp"])})
    assert proc.returncode == 0, f"run_local failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return paths, json.loads(paths["summary"].read_text()), proc


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """The good run of tests/retraining.py's data: span-1 trained, blessed and pushed. Returns (base folder,
    summary dict); `retraining.Case` copies its pipeline root and serving folder."""
    from retraining import ARGS, GOOD_RUN, rows, write_csv  # here: retraining.py imports run_local from here

    base = tmp_path_factory.mktemp("served")
    write_csv(base / "data" / "span-1" / "reviews.csv", rows())
    proc = run_local(*ARGS, *GOOD_RUN, "--data-root", base / "data", "--pipeline-root", base / "root",
                     "--serving-dir", base / "serving", "--summary-json", base / "summary.json")
    assert proc.returncode == 0, proc.stderr[-6000:]
    summary = json.loads((base / "summary.json").read_text())
    assert summary["pushed"] and summary["anomalies"] == [], summary
    assert summary["eval_metrics"]["sparse_categorical_accuracy"] >= 0.8, summary["eval_metrics"]
    return base, summary


@pytest.fixture(scope="session")
def accepted(served, tmp_path_factory):
    """A second span that should be accepted: the same kind of reviews plus a 100,000-character text, emoji, mixed
    scripts and an extra column. The run retrains from the model in service (--warm-start) on a window of the last
    two spans, for one step: one run serves the acceptance, warm-start and span-window checks, and one step is all
    they need. Returns the `retraining.Case`."""
    import random

    from retraining import LABEL, TEXT, N, Case, review, rows, write_csv

    case = Case(served, tmp_path_factory.mktemp("accepted"))
    data = [[text, label, f"id-{i}"] for i, (text, label) in enumerate(rows(N, seed=11))]
    words = " ".join(review(random.Random(12), "fresh", 18) for _ in range(1000))
    data[7] = [(words * 2)[:100_000], "fresh", "id-long"]
    data[8] = ["a charming 🎬🍿 film, wonderful 👍", "fresh", "id-emoji"]
    data[9] = ["the ending was bland, 結末は退屈 and 지루한 plot", "rotten", "id-mixed"]
    write_csv(case.span / "reviews.csv", data, header=(TEXT, LABEL, "review_id"))
    case.run("--train-steps", "1", "--warm-start", "--spans-window", "2")
    return case


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """Groups for `pytest -n 2 --dist loadgroup` (the Makefile's test target): every test of a shared pipeline run
    (the `served`/`accepted` runs, the `first_run`) goes to the worker that made it, so each run happens once; the
    other tests stay with their module, whose module-scoped fixtures are then built once too."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"served", "accepted", "case"}:
            group = "served"
        elif "first_run" in names or item.module.__name__ == "test_kubeflow_executed":
            # The executed Kubeflow spec (one ~6-minute group of few tests) rides with the quick run's tests: xdist
            # hands out groups largest first, so on its own it would start last and finish alone.
            group = "first_run"
        else:
            group = item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))


# ----------------------------------------------------------------------------------------------------------------
# A real headless browser: Debian's chromium driven by Playwright (browser builds cannot be downloaded here).

ARTIFACTS = REPO / "test-artifacts"  # screenshots of the browser tests
BROWSER_HINT = ("Debian's chromium is not installed: the browser tests are skipped; install it with "
                "`sudo apt-get install chromium` (make test does this when run as root)")


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium page factory (Playwright), or the tests are skipped with how to install it."""
    import shutil

    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.skip(BROWSER_HINT)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield instance
        instance.close()


def open_page(browser, url: str, width: int = 1280, height: int = 900):
    """(page, errors): a new page at `url`; `errors` collects console errors and uncaught exceptions."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return page, errors
