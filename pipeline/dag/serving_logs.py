"""The traffic of the model in service, with --serving-logs: ServingLogsGen reads the request logs written since the
last run that consumed them into an Examples artifact with a `serving` split, ServingSkewCheck compares it with the
training statistics of the model in service (BaselineLookup's), and ServingLogsCommit records the files read in the
ledger once that comparison is published (components/ingestion/serving_logs.py; why a file is counted by exactly one
run: components/tf_serving/consumed_logs.py). The read and the commit are never cached (nodes.NEVER_CACHED).
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Any, List, Optional

from components import tasks
from components.ingestion.serving_logs import ServingLogsCommit, ServingLogsGen
from components.runtime import storage
from components.validation import text_checks
from components.validation.serving_skew import ServingSkewCheck
from pipeline.dag.config import PipelineConfig
from pipeline.dag.nodes import SERVING_LOGS_COMMIT, SERVING_LOGS_GEN, SERVING_SKEW_CHECK

LEDGER_DIR = posixpath.join("serving_logs", "consumed")  # under the pipeline root: one entry per consuming run


@dataclasses.dataclass(frozen=True)
class ServingLogsStage:
    nodes: List[Any]
    reader: Any  # ServingLogsGen: outputs["examples"], the `serving` split
    skew_check: Any  # ServingSkewCheck: outputs["skew"], with serving_skew.json
    commit: Any


def ledger_dir(pipeline_root: str) -> str:
    """Where the consumed files are recorded: a full location (the reader is never cached, so no relative path is
    needed to keep a cache key across a moved root)."""
    return storage.join(pipeline_root, LEDGER_DIR)


def reader_node(prefix: str, ledger: str, text_key: str, label_key: str, classes_record):
    """ServingLogsGen of `prefix`: outputs["examples"], the `serving` split."""
    return ServingLogsGen(prefix=prefix, ledger=ledger, text_key=text_key, label_key=label_key,
                          label_names=json.dumps(classes_record)).with_id(SERVING_LOGS_GEN)


def commit_node(reader, ledger: str, reported: Optional[Any] = None):
    """ServingLogsCommit of `reader`'s read, after `reported` (the channel that reports on the traffic) when given,
    else right after the read."""
    extra = {"reported": reported} if reported is not None else {}
    return ServingLogsCommit(examples=reader.outputs["examples"], ledger=ledger, **extra).with_id(SERVING_LOGS_COMMIT)


def serving_logs(config: PipelineConfig, baselines) -> Optional[ServingLogsStage]:
    """The stage of `config`, None without --serving-logs. `baselines`: BaselineLookup, the training statistics and
    the model in service (whose transform graph tokenizes the traffic)."""
    if not config.serving_logs:
        return None
    ledger = ledger_dir(config.pipeline_root)
    classes = tasks.class_names_record(config.tasks)
    reader = reader_node(config.serving_logs, ledger, config.text_key, config.label_key, classes)
    skew_check = ServingSkewCheck(
        examples=reader.outputs["examples"], baseline_model=baselines.outputs["model"],
        data_statistics=baselines.outputs["data_statistics"], text_statistics=baselines.outputs["text_statistics"],
        text_key=config.text_key, label_key=config.label_key, label_names=json.dumps(classes),
        checks=json.dumps(text_checks.load_checks(config.text_checks_file), sort_keys=True)
    ).with_id(SERVING_SKEW_CHECK)
    commit = commit_node(reader, ledger, skew_check.outputs["skew"])
    return ServingLogsStage(nodes=[reader, skew_check, commit], reader=reader, skew_check=skew_check, commit=commit)
