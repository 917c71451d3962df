"""A program the suite needs but cannot install itself, missing: the real tests that need it, run by a fresh pytest
with a PATH that holds neither chromium nor kustomize nor kubectl, are skipped with one line saying what to install,
and under CI=true fail with that line instead (tests/support/ci.py, called by the `browser` fixture of tests/conftest.py
and by test_k8s.py's `render_command`)."""

import os
import subprocess
import sys

from support import REPO

BROWSER_TEST = "tests/integration/test_serve_without_a_model.py::test_the_demo_page_says_when_there_is_no_model_yet"
KUSTOMIZE_TEST = "tests/integration/test_k8s.py::test_rendered_kustomization_validates"
CASES = {BROWSER_TEST: "apt-get install chromium", KUSTOMIZE_TEST: "install kubectl 1.22 or later"}


def pytest_without_tools(empty_dir, ci: bool) -> subprocess.CompletedProcess:
    """Both tests of CASES in a fresh pytest, with an empty folder for PATH (and CI=true where `ci`)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "CHROMIUM", "PYTHONPATH") and not k.startswith("PYTEST_")}
    env.update(PATH=str(empty_dir), TF_USE_LEGACY_KERAS="1", **({"CI": "true"} if ci else {}))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs", *sorted(CASES)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def summary_lines(proc, *starts):
    """The short test summary's lines that start with one of `starts`, by the test they name."""
    return {test: line for line in proc.stdout.splitlines() if line.startswith(starts)
            for test in CASES if test in line or test.rsplit("::", 1)[0] + ":" in line}


def test_a_missing_tool_is_a_skip_with_its_line_on_a_developers_machine(tmp_path):
    proc = pytest_without_tools(tmp_path, ci=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    lines = summary_lines(proc, "SKIPPED")
    assert set(lines) == set(CASES), proc.stdout[-3000:]
    for test, line in lines.items():
        assert CASES[test] in line and "CI=true" not in line, line
    assert "2 skipped" in proc.stdout


def test_a_missing_tool_fails_under_ci(tmp_path):
    proc = pytest_without_tools(tmp_path, ci=True)
    assert proc.returncode == 1, proc.stdout[-3000:]
    lines = summary_lines(proc, "ERROR", "FAILED")
    assert set(lines) == set(CASES), proc.stdout[-3000:]
    for test, line in lines.items():
        assert "CI=true and " in line and CASES[test] in line, line
    assert "skipped" not in proc.stdout
