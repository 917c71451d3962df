"""Shared fixtures: the real pipeline runs on small deterministic data, reused by the tests of tests/e2e/ (and a
headless browser); the hook that marks and groups the tests. The helpers the tests import are in tests/support/."""

import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow

import pytest  # noqa: E402

from support import QUICK_ARGS, quick_checkpoint, run_local  # noqa: E402
from support.browser import ARTIFACTS, BROWSER_HINT, chromium  # noqa: E402


@pytest.fixture(scope="session")
def first_run(tmp_path_factory):
    """The first run into a fresh pipeline root: returns (paths, summary dict, process). Its model learned (eval
    accuracy 0.10 above the eval split's majority share, macro F1 above 0.6), or every test built on it would test
    a model that answers one class whatever it is asked."""
    from support.learned import assert_learned

    quick_checkpoint()
    base = tmp_path_factory.mktemp("e2e")
    paths = {"pipeline_root": base / "root", "serving_dir": base / "serving", "summary": base / "summary1.json",
             "temp": base / "tmp"}  # the run's TMPDIR, for what it leaves in the temp folder
    paths["temp"].mkdir()
    proc = run_local(*QUICK_ARGS, "--pipeline-root", paths["pipeline_root"], "--serving-dir", paths["serving_dir"],
                     "--summary-json", paths["summary"], env={"TMPDIR": str(paths["temp"])})
    assert proc.returncode == 0, f"run_local failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    summary = json.loads(paths["summary"].read_text())
    assert_learned(summary, paths["pipeline_root"])
    return paths, summary, proc


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """The good run of support/retraining.py's data: span-1 trained, blessed and pushed. Returns (base folder,
    summary dict); `retraining.Case` copies its pipeline root and serving folder."""
    from support.retraining import ARGS, GOOD_RUN, rows, write_csv

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

    from support.retraining import LABEL, TEXT, Case, N, review, rows, write_csv

    case = Case(served, tmp_path_factory.mktemp("accepted"))
    data = [[text, label, f"id-{i}"] for i, (text, label) in enumerate(rows(N, seed=11))]
    words = " ".join(review(random.Random(12), "fresh", 18) for _ in range(1000))
    data[7] = [(words * 2)[:100_000], "fresh", "id-long"]
    data[8] = ["a charming 🎬🍿 film, wonderful 👍", "fresh", "id-emoji"]
    data[9] = ["the ending was bland, 結末は退屈 and 지루한 plot", "rotten", "id-mixed"]
    write_csv(case.span / "reviews.csv", data, header=(TEXT, LABEL, "review_id"))
    case.run("--train-steps", "1", "--warm-start", "--spans-window", "2")
    return case


# The shared pipeline runs, by fixture name. A test that needs one, directly or through another fixture (test_bad_inputs
# .py's `case` copies `served`), is marked `pipeline_run`, and so is every test under tests/e2e/.
PIPELINE_RUNS = {"first_run", "served", "accepted"}
# Modules whose tests add a run of their own to a copy of `served`: a group apart from test_bad_inputs', which makes
# the `served` run once more in another process (about a minute) and halves the longest group.
SERVED_RUNS_APART = ("test_own_data", "test_distilled_runs", "test_serving_loop")
E2E = Path(__file__).resolve().parent / "e2e"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids, and before -m
def pytest_collection_modifyitems(config, items):
    """Marks and groups. `pipeline_run` (registered in pyproject.toml; `make test-fast` leaves these out, and those
    marked `slow` in their files): the tests under tests/e2e/ and any other that uses a shared pipeline run.

    Groups for `pytest -n 2 --dist loadgroup` (the Makefile's test and test-fast targets): every test of a shared
    pipeline run (the `served`/`accepted` runs, the `first_run`) goes to the worker that made it, so each run happens
    once; the other tests stay with their module, whose module-scoped fixtures are then built once too."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & PIPELINE_RUNS or E2E in item.path.parents:
            item.add_marker(pytest.mark.pipeline_run)
        if "served" in names:
            group = "served_runs" if item.module.__name__ in SERVED_RUNS_APART else "served"
        elif "first_run" in names:
            group = "first_run"
        elif item.module.__name__ in ("test_kubeflow", "test_kubeflow_commands"):
            group = "kubeflow"  # one compiled spec (tests/integration/conftest.py's session fixture `compiled`)
        else:
            group = item.module.__name__  # a basename: the rooms' test files have unique names
        item.add_marker(pytest.mark.xdist_group(group))


# The groups that take minutes in few tests, longest first (their measured times: benchmarks/results.md, "Test suite
# timings"). xdist hands out the groups with the most tests first, which starts a group of one long test last, to end
# the suite alone while the other workers sit idle.
# test_kubeflow_executed: the executed Kubeflow spec, three runs and a Distiller on the S3 server (~10 minutes).
LONGEST_GROUPS = ("first_run", "served", "test_kubeflow_executed", "served_runs", "test_multi_task",
                  "test_object_store", "test_crash_safety", "test_korean_run", "test_pretraining")


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` handing out LONGEST_GROUPS first, then xdist's own order (most tests first)."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class LongestFirst(LoadGroupScheduling):
        def _assign_work_unit(self, node):
            waiting = [group for group in LONGEST_GROUPS if group in self.workqueue]
            if waiting:
                self.workqueue.move_to_end(waiting[0], last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


# ----------------------------------------------------------------------------------------------------------------
# An S3-compatible server on 127.0.0.1 (support/s3_server.py), one per test process; each test module its own bucket.

@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    from support.s3_server import S3Server

    with S3Server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


# ----------------------------------------------------------------------------------------------------------------
# A real headless browser: Debian's chromium driven by Playwright (support/browser.py: open_page, ARTIFACTS).

@pytest.fixture(scope="session")
def browser():
    """A headless Chromium browser (Playwright). Without chromium the tests are skipped with how to install it, and
    fail with that line under CI=true (support/ci.py)."""
    from support.ci import missing_tool

    executable = chromium()
    if not executable:
        missing_tool(BROWSER_HINT)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield instance
        instance.close()
