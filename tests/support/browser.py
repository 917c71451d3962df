"""A real headless browser for the tests: Debian's chromium driven by Playwright (browser builds cannot be
downloaded here). The `browser` fixture is tests/conftest.py's."""

import os
import shutil
from typing import Optional

from support import REPO

ARTIFACTS = REPO / "test-artifacts"  # screenshots of the browser tests
# A skip on a developer's machine, a failure under CI=true (support/ci.py, the `browser` fixture).
BROWSER_HINT = ("Debian's chromium is not installed (nor $CHROMIUM set) for the browser tests: install it with "
                "`sudo apt-get install chromium` (`make test` and `make browser` do this when run as root)")


def chromium() -> Optional[str]:
    """The chromium executable ($CHROMIUM, else on PATH), or None."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def open_page(browser, url: str, width: int = 1280, height: int = 900):
    """(page, errors): a new page at `url`; `errors` collects console errors and uncaught exceptions."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return page, errors
