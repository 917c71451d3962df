"""`ServingLoopSettings`: what a run reads of the model in service's traffic (docs/serving_loop.md).

`serving_logs` is the filename prefix the model server logs the model's requests to (TF Serving's logging_config,
components/tf_serving/request_log.py): ServingLogsGen reads what was logged there since the last run that read it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import ClassVar

from components.runtime.storage import is_uri
from components.settings.base import CustomConfigMixin, setting, validate

GROUP = ("serving loop", "read what the model in service was asked since the last run (the request logs of "
                         "pipeline/serve.py --request-log or of a model config file's logging_config)")


@dataclasses.dataclass(frozen=True)
class ServingLoopSettings(CustomConfigMixin):
    COMPONENT: ClassVar[str] = "ServingLogsGen"

    serving_logs: str = setting(
        "", "the filename prefix the model server logs this model's requests to (a local path, s3://BUCKET/PREFIX or "
            "gs://BUCKET/PREFIX; ending in / for a folder): each run reads the requests logged since the last run "
            "that read them, as a `serving` split", flag="--serving-logs")

    def __post_init__(self):
        validate(self)


def absolute_prefix(prefix: str) -> str:
    """A local prefix made absolute (its trailing "/", which makes it a folder, kept); a URI as given."""
    if not prefix or is_uri(prefix):
        return prefix
    return os.path.abspath(prefix) + ("/" if prefix.endswith("/") else "")
