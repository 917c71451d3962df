"""BaselineLookup: the step that hands a run what it compares with, read from versioned folders
(components/runtime/versioned_folders.py).

- `model`: the model in service, i.e. the version under the push destination (`serving_dir/model_name`) that TF
  Serving answers a request without a version with: the highest one, or, with a model config file
  (--model-config-file), the highest one its version policy serves (components/tf_serving/model_config.py, the
  local server's reader too), so a pinned version stays the baseline. Model card included. The Evaluator's
  baseline, and the Trainer's starting point with --warm-start.
- `data_statistics`, `text_statistics`: the statistics the data gate and the text gate last accepted (their newest
  publication under `<pipeline root>/baselines/`), the drift checks' baselines.

Each output is a copy of what was found, with a `baseline.json` saying where it came from (`found`, `source`, and the
publication's record), so what a run compared with stays readable after newer versions appear; in ML Metadata (the
local runner) the artifacts also carry `baseline_found` and `baseline_source` properties, so a run's lineage shows
which baseline it used. When nothing is there yet (a first run, or a model never pushed), an output is an empty
folder with `{"found": false}` and the steps reading it go on without a baseline: `found()` says which.

The same step runs on every orchestrator. Its output depends on what is in service *now*, which none of its inputs
say, so it must never come from a cache: pipeline/dag/nodes.py lists it among the steps that are never cached, and
both the local runner and the Kubeflow compiler turn caching off for them.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import json
import os
from typing import Optional

from tfx import v1 as tfx

from components.features import CLASS_NAMES_FILE
from components.runtime import versioned_folders
from components.runtime.storage import copy_tree, is_uri, join
from components.tf_serving import model_config

SERVING = "Format-Serving"  # where a Model artifact holds its SavedModel (TFX's layout)
FOUND_PROPERTY, SOURCE_PROPERTY = "baseline_found", "baseline_source"


def resolve_under_root(path: str, artifact_uri: str) -> str:
    """`path` as given (a URI or an absolute path: Kubeflow), or, relative, under the pipeline root, which a local
    run's artifact URI starts with (<pipeline_root>/<node id>/<output key>/<execution id>). Relative keeps a step's
    cache key the same when a pipeline root is moved or copied."""
    if is_uri(path) or os.path.isabs(path):
        return path
    root = artifact_uri.rstrip("/")
    for _ in range(3):
        root = os.path.dirname(root)
    return os.path.join(root, path)


def lookup_record(artifact) -> dict:
    """The baseline.json of a BaselineLookup output ({} for an artifact that is not one)."""
    return versioned_folders.read_record(artifact.uri)


def found(artifact) -> bool:
    """Whether `artifact` holds a baseline: None does not, a BaselineLookup output says so in its record, and any
    other artifact (statistics given directly) does."""
    return artifact is not None and bool(lookup_record(artifact).get("found", True))


def source(artifact) -> str:
    """The folder a found baseline was copied from ("" when none was found)."""
    return lookup_record(artifact).get("source", "") if artifact is not None else ""


def baseline_folder(artifact) -> Optional[str]:
    """Where a baseline is, for people: the folder BaselineLookup copied it from, or a baseline's own URI when it
    was given directly (not a lookup output); None when there is none."""
    return (source(artifact) or artifact.uri) if found(artifact) else None


def _mark(artifact, record: dict) -> None:
    versioned_folders.write_record(artifact.uri, record)
    artifact.set_int_custom_property(FOUND_PROPERTY, int(bool(record["found"])))
    artifact.set_string_custom_property(SOURCE_PROPERTY, record.get("source", ""))


def model_in_service(serving_base: str, model_name: str, config_file: str = "") -> dict:
    """{"folder": the version a request without a version goes to, or None; "policy": how it was chosen}."""
    policy = model_config.policy_for(config_file, model_name, serving_base)
    pushed = versioned_folders.versions(serving_base, marker=versioned_folders.MODEL_MARKER)
    version = policy.latest(int(v) for v in pushed)
    return {"folder": None if version is None else join(serving_base, str(version)),
            "policy": policy.describe() + (f" ({config_file})" if config_file else "")}


def copy_model_in_service(serving_base: str, model, model_name: str = "", config_file: str = "") -> dict:
    """Copies the version in service under `serving_base` into `model`; returns the lookup record."""
    import tensorflow as tf

    chosen = model_in_service(serving_base, model_name, config_file)
    folder = chosen["folder"]
    if folder is None:
        return {"found": False, "looked_in": serving_base, "policy": chosen["policy"]}
    copy_tree(folder, join(model.uri, SERVING))
    # The Trainer's copy of the class names, for the Evaluator's class check.
    classes = join(folder, "assets.extra", CLASS_NAMES_FILE)
    if tf.io.gfile.exists(classes):
        tf.io.gfile.copy(classes, join(model.uri, CLASS_NAMES_FILE), overwrite=True)
    return {"found": True, "looked_in": serving_base, "source": folder, "version": os.path.basename(folder),
            "policy": chosen["policy"]}


def copy_statistics(base: str, statistics) -> dict:
    """Copies the newest statistics a gate published under `base` into `statistics`; returns the lookup record."""
    folder = versioned_folders.newest(base)
    if folder is None:
        statistics.split_names = json.dumps([])
        return {"found": False, "looked_in": base}
    published = versioned_folders.read_record(folder)
    copy_tree(folder, statistics.uri)
    statistics.split_names = published.get("split_names", json.dumps([]))
    if published.get("span") is not None:
        statistics.span = int(published["span"])
    return {"found": True, "looked_in": base, "source": folder, "published": published}


@tfx.dsl.components.component
def BaselineLookup(
        model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
        data_statistics: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        text_statistics: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        serving_base: tfx.dsl.components.Parameter[str],
        data_baselines: tfx.dsl.components.Parameter[str],
        text_baselines: tfx.dsl.components.Parameter[str],
        model_name: tfx.dsl.components.Parameter[str] = "",
        model_config_file: tfx.dsl.components.Parameter[str] = ""):
    """`serving_base`: the push destination (serving_dir/model_name). `data_baselines`, `text_baselines`: where the
    data and the text gates publish what they accept (relative: under the pipeline root). `model_config_file`: TF
    Serving's model config file whose version policy for `model_name` says which version is in service ("": the
    highest)."""
    from absl import logging

    model_record = copy_model_in_service(serving_base, model, model_name, model_config_file)
    _mark(model, model_record)
    for artifact, base in ((data_statistics, data_baselines), (text_statistics, text_baselines)):
        _mark(artifact, copy_statistics(resolve_under_root(base, artifact.uri), artifact))
    logging.info("BaselineLookup: model in service %s", model_record.get("source") or f"none under {serving_base}")
