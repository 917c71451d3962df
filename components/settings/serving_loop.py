"""`ServingLoopSettings`: what a run reads of the model in service's traffic (docs/serving_loop.md).

`serving_logs` is the filename prefix the model server logs the model's requests to (TF Serving's logging_config,
components/tf_serving/request_log.py): ServingLogsGen reads what was logged there since the last run that read it.
`retrain_if` lists the conditions under which a run trains (components/validation/retrain_decision.py); "" trains
every run.
"""

from __future__ import annotations

import dataclasses
import os
from typing import ClassVar

from components.runtime.storage import is_uri
from components.settings.base import CustomConfigMixin, SettingsError, setting, validate

NEW_DATA, SERVING_SKEW = "new-data", "serving-skew"
CONDITIONS = (NEW_DATA, SERVING_SKEW)

GROUP = ("serving loop", "read what the model in service was asked since the last run (the request logs of "
                         "pipeline/serve.py --request-log or of a model config file's logging_config)")


@dataclasses.dataclass(frozen=True)
class ServingLoopSettings(CustomConfigMixin):
    COMPONENT: ClassVar[str] = "ServingLogsGen"

    serving_logs: str = setting(
        "", "the filename prefix the model server logs this model's requests to (a local path, s3://BUCKET/PREFIX or "
            "gs://BUCKET/PREFIX; ending in / for a folder): each run reads the requests logged since the last run "
            "that read them, as a `serving` split", flag="--serving-logs")
    retrain_if: str = setting(
        "", "train only when one of these conditions holds, comma-separated: new-data (the data is not the one last "
            "accepted: a new span), serving-skew (the traffic read with --serving-logs is unlike the training data); "
            "otherwise the run ends after the checks, exit status 0 (a run without a model in service always "
            "trains; default: every run trains)", flag="--retrain-if")

    def __post_init__(self):
        validate(self)
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise SettingsError(f"--retrain-if: {unknown[0]!r} is not a condition; the conditions are "
                                f"{', '.join(CONDITIONS)}.")
        if SERVING_SKEW in self.conditions and not self.serving_logs:
            raise SettingsError("--retrain-if serving-skew compares the traffic of the model in service: pass "
                                "--serving-logs PREFIX too.")

    @property
    def conditions(self):
        return tuple(c.strip() for c in self.retrain_if.split(",") if c.strip())


def absolute_prefix(prefix: str) -> str:
    """A local prefix made absolute (its trailing "/", which makes it a folder, kept); a URI as given."""
    if not prefix or is_uri(prefix):
        return prefix
    return os.path.abspath(prefix) + ("/" if prefix.endswith("/") else "")
