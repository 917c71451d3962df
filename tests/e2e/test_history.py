"""The run history of one pipeline root after two real runs (components/release/run_history.py), and the run report's
History section in a real headless browser. The runs are the shared `served` run and the `accepted` run into a copy
of its root (tests/conftest.py): no run of its own."""

from __future__ import annotations

from pathlib import Path

from components.release import run_history
from support.browser import ARTIFACTS, open_page

# The elements of the History section: the h2's siblings up to the next h2 (or the end of the page).
_SECTION = """selector => {
  const found = [];
  for (let e = document.getElementById('history').nextElementSibling; e && e.tagName !== 'H2';
       e = e.nextElementSibling) found.push(...(e.matches(selector) ? [e] : []), ...e.querySelectorAll(selector));
  return found.map(e => e.tagName === 'IMG' ? [e.alt, e.complete, e.naturalWidth] : e.innerText);
}"""


def test_two_runs_of_one_pipeline_root_leave_two_records_in_order(accepted):
    assert accepted.proc.returncode == 0, accepted.proc.stderr[-4000:]
    history = run_history.read(str(accepted.root))
    assert len(history) == 2, [r["run_id"] for r in history]
    first, second = history
    assert first["run_id"] < second["run_id"] and first["date"] <= second["date"]
    # The served run: trained, blessed and pushed, the first of its root (no baseline: no drift figure).
    served = accepted.good
    assert first["trained"] and first["pushed"] and first["versions"]["pushed"] == Path(served["pushed_dir"]).name
    assert first["eval_metrics"] == served["eval_metrics"] and first["drift"]["label_l_infinity"] is None
    assert first["test"]["accuracy"] == served["test_metrics"]["accuracy"]
    # The accepted run: compared with the version the first pushed, on the spans it read, its label shares against
    # the data the first accepted.
    summary = accepted.summary
    assert second["trained"] and second["versions"]["in_service"] == first["versions"]["pushed"]
    assert second["spans"] == {"ingested": summary["ingested_span"], "training": summary["training_spans"]}
    assert second["eval_metrics"] == summary["eval_metrics"] and second["pushed"] == summary["pushed"]
    assert set(second["drift"]["label_l_infinity"]) == {"verdict"}
    assert 0 <= second["drift"]["label_l_infinity"]["verdict"] < 0.2 and second["drift"]["crossed"] == []
    assert second["gates"]["warnings"] == len(summary["warnings"]) and second["gates"]["stopped"] is None


def test_the_report_plots_the_history_in_a_real_browser(accepted, browser):
    page, errors = open_page(browser, (accepted.root / "report.html").as_uri())
    assert page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")[-1] == "History"
    images = page.evaluate(_SECTION, "img")
    assert [alt for alt, _, _ in images] == ["Accuracy over runs", "Drift over runs"], images
    assert all(complete and width > 0 for _, complete, width in images), images
    rows = page.evaluate(_SECTION, "tr")
    assert len(rows) == 3, rows  # the header and one row per run, oldest first
    assert "yes" in rows[1] and Path(accepted.good["pushed_dir"]).name in rows[1]
    text = "\n".join(page.evaluate(_SECTION, "p"))
    assert "2 run(s) of this pipeline root" in text and "No run read request logs" in text
    page.locator("#history").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "report_history.png"), full_page=True)
    assert errors == []
