"""`compile`'s front door: the command line as a `PipelineConfig` for the compiled Kubeflow pipeline.

The flags and their settings are the local runner's (pipeline/cli/flags.py, settings.py); what differs is where things
are. Nothing
here reads data: paths are as the pipeline's pods see them (inside the image built with k8s/Dockerfile, or URIs), and
only this checkout's copies of the curated schema (label names, text checks) and of the packaged checkpoint are read.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import re
from pathlib import Path
from typing import Optional, Tuple

from components.ingestion.csv_files import label_columns
from components.runtime.storage import is_uri, scheme
from components.settings import base as settings_lib
from components.settings.transform import TransformSettings
from components.validation.schema_file import schema_label_names
from pipeline.cli import labels, settings
from pipeline.cli.errors import InputError, as_input_errors
from pipeline.cli.flags import IMAGE_CHECKPOINT, IMAGE_DATA_DIR, IMAGE_ROOT
from pipeline.cli.inputs import text_checks_for
from pipeline.cli.model_choice import model_settings
from pipeline.cli.runner_options import KUBEFLOW, beam_pipeline_args
from pipeline.dag.config import PIPELINE_NAME, PipelineConfig
from pipeline.data import assets, datasets
from pipeline.kubeflow import vertex

KFP_PIPELINE_NAME = PIPELINE_NAME.replace("_", "-")  # KFP names must match PIPELINE_NAME_PATTERN
PIPELINE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")


def image_path(path: Path) -> str:
    """Where the image (k8s/Dockerfile copies the checkout's folders under IMAGE_ROOT) has a file of this checkout."""
    return path.relative_to(datasets.REPO_ROOT).as_posix()


def pod_location(value: str, what: str) -> str:
    """A URI the image's file systems open (s3://, gs://) or an absolute POSIX path: what a pod of the pipeline can
    resolve. Another scheme (KFP's minio://, hdfs://) is refused naming the flag (components/runtime/object_store)."""
    from components.runtime import object_store

    if scheme(value) and scheme(value) not in ("s3", "gs"):
        try:
            object_store.require(value, what)
        except object_store.StorageError as e:
            raise InputError(str(e)) from None
    if is_uri(value) or value.startswith("/"):
        return value.rstrip("/") if len(value) > 1 else value
    raise InputError(f"{what} {value!r} must be a URI (gs://..., s3://...) or an absolute path as the pipeline's "
                     "pods see it (e.g. inside the image).")


def _kubeflow_labels(args, dataset: str, local_schema: Optional[Path], label_key: str) -> Tuple[Tuple[str, ...], ...]:
    """Each label column's classes: --labels (one label column only), else this checkout's copy of the schema."""
    with as_input_errors():
        columns = label_columns(label_key)
    given = tuple(args.labels or ())
    if given:
        if len(columns) > 1:
            raise InputError(f"--labels lists the values of one label column; with several ({', '.join(columns)}), "
                             "list each column's values in its schema feature's string domain and pass --schema.")
        return (labels.require_two_classes(given, label_key),)
    if dataset != "custom" and not args.schema and local_schema is None:
        raise InputError(f"no curated schema for {dataset!r} in this checkout (schema/{dataset}/schema.pbtxt); pass "
                         "--labels.")
    if local_schema is None:
        raise InputError("pass --labels (the label values, comma-separated): the schema is not readable here, and "
                         "compiling reads no data.")
    found = []
    for column in columns:
        with as_input_errors():
            values = schema_label_names(str(local_schema), column) or ()
        if not values:
            raise InputError(f"{local_schema} does not list the label values of {column!r}"
                             f"{'; pass --labels' if len(columns) == 1 else ' (a string_domain for it)'}.")
        found.append(labels.require_two_classes(values, column))
    return tuple(found)


def kubeflow_config(args: argparse.Namespace) -> PipelineConfig:
    """The config of the compiled KFP pipeline. Paths are as the pipeline's pods see them (inside the image, or URIs);
    only this checkout's copies of the curated schema and the packaged checkpoint are read here (label names, text
    checks, the checkpoint's config), and a checkpoint given as a URI through TensorFlow's file systems."""
    if not PIPELINE_NAME_PATTERN.match(args.name):
        raise InputError(f"--name {args.name!r}: KFP pipeline names are lowercase letters, digits and '-', starting "
                         "with a letter or digit, at most 128 characters.")
    beam_args = beam_pipeline_args(args, KUBEFLOW)
    if args.spans_window > 1:
        raise InputError("--spans-window above 1 needs TFX's span-range resolver, which the Kubeflow V2 compiler does "
                         "not support; each Kubeflow run trains on the newest span (--spans-window 1).")
    if args.pretrained.lower() == "none":
        checkpoint, local_copy = None, None
    else:
        checkpoint = pod_location(args.pretrained, "--pretrained")
        local_copy = str(assets.ensure_checkpoint()) if checkpoint == IMAGE_CHECKPOINT else None
    model = model_settings(args, checkpoint, local_copy,
                           packaged_vocab=lambda: posixpath.join(IMAGE_CHECKPOINT, "vocab.txt"))
    max_seq_length = None
    if args.max_seq_length == settings_lib.AUTO:  # compiling reads no data: the dataclass default
        max_seq_length = min(TransformSettings.max_seq_length, model.positions)

    dataset = args.dataset
    if dataset == "custom":
        if not args.data_root:
            raise InputError("--dataset custom needs --data-root (where the pipeline's pods find the CSV files).")
        data_root = pod_location(args.data_root, "--data-root")
        schema_file = pod_location(args.schema, "--schema") if args.schema else None
        splits = args.input_splits if args.input_splits is not None else ()
    else:
        data_root = pod_location(args.data_root, "--data-root") if args.data_root else \
            posixpath.join(IMAGE_DATA_DIR, "datasets", dataset)
        schema_file = pod_location(args.schema, "--schema") if args.schema else \
            posixpath.join(IMAGE_ROOT, image_path(datasets.BUILTIN[dataset].schema_dir), datasets.SCHEMA_FILE)
        splits = args.input_splits if args.input_splits is not None else datasets.BUILTIN[dataset].splits
    if splits and not {"train", "eval"} <= set(splits):
        raise InputError(f"--input-splits {','.join(splits)}: the Trainer needs a 'train' and the Evaluator an 'eval' "
                         "split.")
    # This checkout's copy of the schema (the image has the same one): the label names, and the thresholds of the
    # text checks, which are compiled into the pipeline.
    local_schema = None
    if dataset != "custom" and not args.schema:
        local_schema = datasets.curated_schema(dataset)
    elif args.schema and os.path.isfile(args.schema):
        local_schema = Path(args.schema)
    label_key = labels.label_key_of(args, dataset)
    label_domains = _kubeflow_labels(args, dataset, local_schema, label_key)
    unlabeled = None
    if args.unlabeled_data:  # the pods' folder: not readable here, so the cache keys on its path alone
        unlabeled = {"unlabeled_data": pod_location(args.unlabeled_data, "--unlabeled-data")}
    built = settings.build(args, model, label_key, label_domains, max_seq_length, unlabeled)
    if args.serving_logs:  # the pods read it: a URI or an absolute path (kept as given: a trailing "/" is a folder)
        pod_location(args.serving_logs, "--serving-logs")

    pipeline_root = pod_location(args.pipeline_root, "--pipeline-root") if args.pipeline_root else ""
    if not pipeline_root:
        raise InputError("pass --pipeline-root: the gates publish the statistics they accept under it, and the next "
                         "run's drift checks read them from there (the schema frozen without --schema, too).")
    if args.serving_dir:
        serving_dir = pod_location(args.serving_dir, "--serving-dir")
    elif pipeline_root:
        serving_dir = posixpath.join(pipeline_root, "serving")
    else:
        raise InputError("pass --serving-dir (where blessed models are pushed, readable by TensorFlow Serving), or "
                         "--pipeline-root to push under PIPELINE_ROOT/serving.")
    vertex_job = vertex.vertex_training(args, pipeline_root)
    return PipelineConfig(
        pipeline_root=pipeline_root, data_root=data_root, serving_dir=serving_dir, pipeline_name=args.name,
        **built.as_fields(), metadata_path=None, orchestrator=KUBEFLOW,
        dataset=dataset, input_splits=tuple(splits), use_spans=args.spans, schema_file=schema_file,
        schema_source="--schema" if args.schema else ("curated" if schema_file else "none"),
        text_checks_file=text_checks_for(str(local_schema) if local_schema else None),
        train_steps=args.train_steps, beam_pipeline_args=beam_args, vertex_training=vertex_job,
        enable_cache=not args.no_cache,
        model_config_file=pod_location(args.model_config_file, "--model-config-file") if args.model_config_file
        else "")
