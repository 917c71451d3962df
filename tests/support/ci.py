"""A program the suite needs and cannot install itself (a browser, kustomize or kubectl) is missing: on a developer's
machine the tests that need it are skipped, with one line saying what to install; under CI=true (as CI runs
`make test`) they fail with that line instead, so that a CI without the program cannot pass with those tests unseen.
Skips about the machine itself (a CPU without bfloat16) are not this: they stay skips everywhere."""

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI=true (or 1, yes), as CI services set it."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_tool(message: str) -> NoReturn:
    """Skip the test with `message` (what is missing and how to install it), or fail with it under CI=true."""
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
