"""What the Kubeflow commands fail with: one line each, and the exit status it means."""

from __future__ import annotations

from typing import Optional

from pipeline.cli.errors import InputError


class UserError(InputError):
    """Invalid input: arguments, a spec file, a cron expression, parameters (exit status 2)."""


class ApiError(Exception):
    """The Kubeflow Pipelines API could not be reached, or refused or failed a request (exit status 1)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered one


def one_line(text, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
