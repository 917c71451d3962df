"""scripts/check_links.py (run by `make lint`) on a small tree: a link to a missing file and one to a missing
heading fail, each on its own line; good links, GitHub's anchors for punctuation and repeated headings, and a broken
link inside a code block (not a link) pass."""

import subprocess

from support import REPO
from support.k8s_tools import tool

SCRIPT = REPO / "scripts" / "check_links.py"

README = """# A project

Read [the guide](docs/guide.md), its [usage](docs/guide.md#usage-the-make-test-target),
[the second part](docs/guide.md#part-1) and [below](#a-project).

```
[not a link](docs/missing-in-code.md)
```
"""

GUIDE = """# Guide

## Usage: the `make test` target

## Part
## Part

Back to [the start](../README.md#a-project){broken}.
"""


def check(root):
    return subprocess.run([tool("python"), SCRIPT, "--root", root], capture_output=True, text=True, timeout=120)


def write_tree(root, broken: str = ""):
    (root / "docs").mkdir()
    (root / "README.md").write_text(README, encoding="utf-8")
    (root / "docs" / "guide.md").write_text(GUIDE.format(broken=broken), encoding="utf-8")


def test_good_links_pass(tmp_path):
    write_tree(tmp_path)
    proc = check(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_a_missing_file_and_a_missing_anchor_fail(tmp_path):
    write_tree(tmp_path, broken=", [the old notes](notes.md) and [the setup](../README.md#setup)")
    proc = check(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    assert any(line.startswith("docs/guide.md:8: docs/notes.md:") for line in lines), lines
    assert any(line.startswith("docs/guide.md:8: README.md#setup:") for line in lines), lines
