"""The serving loop end to end on 127.0.0.1 (docs/serving_loop.md): the model the `served` session run pushed is
served by pipeline/serve.py with request logging; in-domain traffic (held-out reviews of its own data's kind) then
out-of-domain traffic (Korean reviews) are sent over REST, and run_local.py reads each with --serving-logs.

- Run 2, after the in-domain traffic, with --retrain-if new-data,serving-skew and no new span: no skew, no training
  (the steps after the checks are skipped, nothing is pushed), exit status 0, the reason in one line.
- Run 3, after the Korean traffic, with the same flags, reads only what came since run 2 (nothing counted twice),
  finds skew, names what crossed, writes the sample CSV, trains because of the skew (one step: --train-steps 1), and
  the report shows the traffic in a real browser.

Cost: two runs on a copy of the `served` root (a couple of minutes on the shared machine) and one server start. A run
killed during its read is tests/integration/test_serving_logs.py's (a real SIGKILL, on the server's own files)."""

import csv
import json

import pytest

from pipeline.dag import nodes
from support import korean
from support.retraining import Case, rows
from support.serving_server import Server

IN_DOMAIN, KOREAN = 200, 80


def available(states) -> bool:
    """The server answers: a version is loaded and warmed up (it listens before that, answering 404)."""
    return any(state.get("state") == "AVAILABLE" for state in states.values())


@pytest.fixture(scope="module")
def loop(served, tmp_path_factory):
    case = Case(served, tmp_path_factory.mktemp("loop"))
    prefix = case.tmp / "logs" / "requests"
    held_out = [text for text, _ in rows(IN_DOMAIN, seed=101)]
    foreign = [r["text"] for r in korean.korean_corpus(KOREAN, 7)]
    results = {}
    with Server(case.serving, "--request-log", str(prefix)) as running:
        running.wait_for(available, what="the served version")
        for i in range(0, IN_DOMAIN, 5):
            assert running.predict({"instances": held_out[i:i + 5]}).status_code == 200
    # The server closed its files on SIGINT; run 2 reads them.
    # The served run's own data root: its ExampleGen and StatisticsGen come from the copied root's cache, so the data is
    # the one its data gate accepted (no new span).
    proc = case.run("--serving-logs", str(prefix), "--retrain-if", "new-data,serving-skew", data_root=case.served_data)
    results["quiet"] = (proc, case.summary)
    with Server(case.serving, "--request-log", str(prefix)) as running:
        running.wait_for(available, what="the served version")
        for i in range(0, KOREAN, 4):
            assert running.predict({"instances": foreign[i:i + 4]}).status_code == 200
    proc = case.run("--serving-logs", str(prefix), "--retrain-if", "new-data,serving-skew", "--train-steps", "1",
                    data_root=case.served_data)
    results["skewed"] = (proc, case.summary)
    return case, results


def test_in_domain_traffic_and_no_new_span_end_the_run_after_the_checks(loop):
    case, results = loop
    proc, summary = results["quiet"]
    assert proc.returncode == 0, proc.stderr[-4000:]
    serving = summary["serving"]
    assert serving["requests"] == IN_DOMAIN // 5 and serving["examples"] == IN_DOMAIN
    assert serving["skew_found"] is False and serving["crossed"] == [], serving["crossed"]
    assert summary["retrain"] == {**summary["retrain"], "train": False,
                                  "held": {"new-data": False, "serving-skew": False}}
    assert "no training: no new labelled data and no serving skew" in proc.stdout
    for step in (nodes.TRANSFORM, nodes.TRAINER, nodes.PUSHER):
        assert summary["components"].get(step, {}).get("state") in (None, "SKIPPED"), summary["components"]
    assert not summary["pushed"]


def test_out_of_domain_traffic_is_skew_counted_once_named_and_sampled(loop):
    case, results = loop
    proc, summary = results["skewed"]
    assert proc.returncode == 0, proc.stderr[-4000:]
    serving = summary["serving"]
    # Only what came since run 2: the in-domain requests were consumed by it.
    assert serving["requests"] == KOREAN // 4 and serving["examples"] == KOREAN
    assert serving["skew_found"] is True
    assert summary["retrain"]["why"] == "training: serving skew (--retrain-if new-data,serving-skew)"
    assert summary["components"][nodes.TRAINER]["state"] == "COMPLETE"
    crossed = {c["check"] for c in serving["crossed"]}
    assert "LOW_WORD_COVERAGE" in crossed, serving["crossed"]
    with open(serving["sample"], newline="") as f:
        sample = list(csv.DictReader(f))
    assert len(sample) == KOREAN and all(row["verdict"] == "" for row in sample)  # a label column to fill in
    assert serving["sample"] in proc.stdout  # the console says where the sample is
    ledger = sorted((case.root / "serving_logs" / "consumed").glob("*.json"))
    files = [f for entry in ledger for f in json.loads(entry.read_text())["files"]]
    assert len(ledger) == 2 and len(files) == len(set(files))  # each file consumed by exactly one run


def test_the_report_shows_the_traffic_in_service(loop, browser):
    from support.browser import ARTIFACTS, open_page

    case, results = loop
    page, errors = open_page(browser, (case.root / "report.html").as_uri())
    text = page.inner_text("body")
    assert "In service" in page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
    assert "differ from its training data" in text and "LOW_WORD_COVERAGE" in text
    images = page.eval_on_selector_all("img", "is => is.map(i => [i.alt, i.naturalWidth])")
    assert any(alt.startswith("Tokens per text: training against in service") and width > 0
               for alt, width in images), images
    page.screenshot(path=str(ARTIFACTS / "serving_loop_report.png"), full_page=True)
    assert not errors, errors
