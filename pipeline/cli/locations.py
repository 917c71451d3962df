"""The runners' path flags: a local path, or a URI kept as a URI, never a URI taken for a folder name.

`pathlib.Path("s3://bucket/root")` is the relative folder `s3:/bucket/root`, so a URI given to a local run used to
be resolved under the current directory and written there without a word. The path flags' argparse type keeps a URI
exactly as given (`Uri`); `check_uris` then makes sure, before anything is read or written, that an installed file
system opens each one (components/runtime/object_store.py) and that an S3 bucket answers, naming the flag otherwise.

Where a local run needs a local disk whatever its pipeline root is on, `state_dir` says where: the ML Metadata
store (SQLite), the run lock (flock) and the libraries' log file. The input checks read CSV files with Python's csv
module, so a --data-root or --schema on an object store is first copied to a local folder (`mirror`); the pipeline's
own steps read the original.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Optional, Union

from components.runtime import object_store, storage
from components.runtime.object_store import StorageError
from pipeline.cli.inputs import InputError

# The path flags of the local runner: the argparse destination -> the flag.
FLAGS = {"pipeline_root": "--pipeline-root", "serving_dir": "--serving-dir", "data_root": "--data-root",
         "schema": "--schema", "unlabeled_data": "--unlabeled-data", "pretrained": "--pretrained",
         "summary_json": "--summary-json"}
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


def state_dir(pipeline_root: Union[str, Path], outputs_dir: Path) -> Path:
    """The local folder of what a run keeps on this machine's disk: the pipeline root itself when it is local;
    for an object-store root, a folder under outputs/object-store/ named after it (TFX keeps ML Metadata apart from
    the pipeline root in the same way: on Kubeflow it is the cluster's metadata service)."""
    if not storage.is_uri(pipeline_root):
        return Path(pipeline_root)
    kind = storage.scheme(pipeline_root)
    rest = str(pipeline_root).split("://", 1)[1].strip("/")
    return outputs_dir / "object-store" / kind / rest


def mirror(uri: str, flag: str, target_root: Path) -> Path:
    """A local copy of file or folder `uri` under target_root, fresh on each call (a file removed from the store is
    gone from the copy too); returns the copy's path. InputError naming `flag` when there is none."""
    import shutil

    if not storage.exists(uri):
        raise InputError(f"{flag} {uri} does not exist.", "NO_INPUT", path=uri)
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    target = target_root / f"{storage.scheme(uri)}-{digest}" / os.path.basename(uri.rstrip("/"))
    shutil.rmtree(target.parent, ignore_errors=True)
    target.parent.mkdir(parents=True)
    if storage.is_dir(uri):
        storage.copy_tree(uri.rstrip("/"), str(target))
    else:
        target.write_bytes(storage.read_bytes(uri))
    return target
