"""The first stage of a local run's front door: where its inputs and outputs are (`resolve`) and the path flags naming
them. A path flag's type keeps a URI as given (`Uri`; pathlib would make `s3://b` the folder `s3:/b`), `check_uris`
checks that a file system opens each one and that an S3 bucket answers, and `mirror` copies an input on a store to a
local folder for the csv checks (the pipeline's own steps read the original)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Optional, Tuple, Union

from components.runtime import object_store, storage
from components.runtime.object_store import StorageError
from components.tf_serving import model_config
from pipeline.cli.errors import InputError
from pipeline.cli.runner_options import LOCAL, beam_pipeline_args
from pipeline.dag.config import MODEL_NAME, default_pipeline_root, default_serving_dir, local_state_dir
from pipeline.data import assets

# Local copies of a local run's inputs on an object store (--data-root, --schema, --pretrained), for the checks here.
REMOTE_COPIES = assets.DATA_DIR / "remote"

# The path flags of the local runner: the argparse destination -> the flag.
FLAGS = {"pipeline_root": "--pipeline-root", "serving_dir": "--serving-dir", "data_root": "--data-root",
         "schema": "--schema", "unlabeled_data": "--unlabeled-data", "pretrained": "--pretrained",
         "summary_json": "--summary-json", "serving_logs": "--serving-logs"}
S3_ENDPOINT_HELP = ("the S3-compatible store's endpoint for s3:// paths, http(s)://HOST:PORT (default: $S3_ENDPOINT, "
                    "$AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL; none: AWS S3); the credentials come from "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")


class Uri(str):
    """A path flag's value that names an object store or another URI scheme, kept exactly as given."""


def local_path(value: str) -> Union[Path, Uri]:
    """argparse type of a path flag: a Path, or the URI untouched."""
    return Uri(value) if storage.is_uri(value) else Path(value)


def check_uris(args: argparse.Namespace, flags: Optional[dict] = None) -> None:
    """InputError naming the flag of the first URI that no installed file system opens or whose S3 bucket does not
    answer; then registers the file systems the URIs need in this process. Checked before anything is written."""
    try:
        object_store.configure_s3(getattr(args, "s3_endpoint", None))
        uris = []
        for dest, flag in (flags or FLAGS).items():
            value = getattr(args, dest, None)
            if value is not None and storage.is_uri(value):
                object_store.require(str(value), flag)
                uris.append((str(value), flag))
        asked = set()
        for uri, flag in uris:  # one question per bucket
            bucket = (storage.scheme(uri), object_store.bucket_and_key(uri)[0])
            if bucket not in asked:
                object_store.check_bucket(uri, flag)
                asked.add(bucket)
    except StorageError as e:
        raise InputError(str(e), "STORAGE_UNAVAILABLE") from None
    object_store.load_file_systems(uri for uri, _ in uris)


def mirror(uri: str, flag: str, target_root: Path) -> Path:
    """storage.local_copy of file or folder `uri` under target_root; InputError naming `flag` when there is none."""
    if not storage.exists(uri):
        raise InputError(f"{flag} {uri} does not exist.", "NO_INPUT", path=uri)
    return storage.local_copy(uri, target_root)


@dataclasses.dataclass(frozen=True)
class Locations:
    """Where a local run's inputs and outputs are, and where its steps run; nothing of the data has been read yet."""

    dataset: str  # a built-in dataset's name, or "custom"
    name: str  # the run's name, for the default folders under outputs/ (NAME-maxN with --max-examples)
    data_root: Union[Path, Uri]  # the data as the pipeline's steps read it (a built-in one is fetched when read)
    pipeline_root: Optional[Union[Path, Uri]]  # None only for a custom data root that does not exist
    state: Optional[Path]  # the pipeline root's local state folder (local_state_dir)
    serving_dir: Union[Path, Uri]
    checkpoint: Optional[str]  # --pretrained as this machine reads it (a local copy of a URI); None: from scratch
    model_config_file: str  # --model-config-file as BaselineLookup reads it ("": none), checked
    beam_pipeline_args: Tuple[str, ...]


def pipeline_root_of(args: argparse.Namespace) -> Optional[Union[Path, Uri]]:
    """The pipeline root a local run with these arguments uses, known before its data is read (a Path, the URI as
    given, or None for a custom data root that does not exist here)."""
    if isinstance(args.pipeline_root, Uri):
        return args.pipeline_root
    if args.pipeline_root:
        return args.pipeline_root.resolve()
    name = _name(args)
    return None if name is None else default_pipeline_root(name).resolve()


def _name(args: argparse.Namespace) -> Optional[str]:
    if args.data_root is None:
        name = args.dataset
    elif isinstance(args.data_root, Uri):
        name = os.path.basename(args.data_root.rstrip("/"))
    elif args.data_root.is_dir():
        name = args.data_root.resolve().name
    else:
        return None
    return f"{name}-max{args.max_examples}" if args.max_examples else name


def resolve(args: argparse.Namespace) -> Locations:
    """Every location of the run, each URI's store checked first (InputError naming the flag); the checkpoint copied
    here when it is on a store (the Trainer reads it with safetensors, from a local file)."""
    check_uris(args)
    beam_args = beam_pipeline_args(args, LOCAL)
    if args.pretrained.lower() == "none":
        checkpoint = None
    elif storage.is_uri(args.pretrained):
        checkpoint = str(mirror(args.pretrained, "--pretrained", REMOTE_COPIES))
    else:
        checkpoint = str(Path(args.pretrained).resolve())
    if checkpoint is not None and Path(checkpoint) == assets.checkpoint_dir().resolve():
        assets.ensure_checkpoint()
    if args.data_root is None:
        dataset, data_root = args.dataset, assets.dataset_dir(args.dataset)
    else:
        dataset = "custom"
        data_root = args.data_root if storage.is_uri(args.data_root) else args.data_root.resolve()
    pipeline_root = pipeline_root_of(args)
    name = _name(args) or data_root.name
    serving_dir = args.serving_dir if storage.is_uri(args.serving_dir) else \
        (args.serving_dir or default_serving_dir(name)).resolve()
    return Locations(dataset, name, data_root, pipeline_root,
                     local_state_dir(pipeline_root) if pipeline_root is not None else None, serving_dir,
                     checkpoint, _model_config_file(args.model_config_file, str(serving_dir)), beam_args)


def _model_config_file(path, serving_dir: str) -> str:
    """--model-config-file as the BaselineLookup step reads it ("" when not given), checked here: it must parse and
    serve this pipeline's model from the folder it pushes to."""
    if path is None:
        return ""
    location = str(path) if storage.is_uri(path) else str(Path(path).resolve())
    if not storage.is_uri(path) and not Path(location).is_file():
        raise InputError(f"--model-config-file {location} does not exist.")
    try:
        model_config.policy_for(location, MODEL_NAME, storage.join(serving_dir, MODEL_NAME))
    except model_config.ConfigError as e:
        raise InputError(f"--model-config-file: {e}") from None
    return location
