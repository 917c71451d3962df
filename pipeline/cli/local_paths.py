"""The local runner's path flags: local folders and files, never a URI taken for a folder name.

`pathlib.Path("s3://bucket/root")` is the relative folder `s3:/bucket/root`, so a URI given to a local run used to
be resolved under the current directory and written there without a word, while the user believed it went to object
storage. The path flags' argparse type keeps a URI as given (`Uri`), and `refuse_uris` stops the run before anything
is read or written, naming the flag. The local runner reads its data, takes its lock and writes its reports through
the local file system, so an object store is not one of its locations; the Kubeflow runner keeps URIs for the pods.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Union

from pipeline.cli.inputs import InputError

URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# The local runners' path flags: the argparse destination -> the flag.
FLAGS = {"pipeline_root": "--pipeline-root", "serving_dir": "--serving-dir", "data_root": "--data-root",
         "schema": "--schema", "unlabeled_data": "--unlabeled-data", "pretrained": "--pretrained",
         "summary_json": "--summary-json"}


class Uri(str):
    """A path flag's value that names an object store or another URI scheme, kept exactly as given."""


def local_path(value: str) -> Union[Path, Uri]:
    """argparse type of a local path flag: a Path, or the URI untouched (for `refuse_uris` to name)."""
    return Uri(value) if URI.match(value) else Path(value)


def refuse_uris(args: argparse.Namespace) -> None:
    """InputError naming the first path flag given a URI (checked before anything is read or written)."""
    for dest, flag in FLAGS.items():
        value = getattr(args, dest, None)
        if isinstance(value, Uri) or (isinstance(value, str) and URI.match(value)):
            scheme = value.split("://", 1)[0]
            raise InputError(
                f"{flag} {value}: the local runner reads and writes local folders only (this machine's disk, or a "
                f"volume mounted on it), not {scheme}:// locations; pass a local path (nothing was written).",
                "URI_NOT_LOCAL", path=str(value))
