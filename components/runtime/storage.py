"""Where files are: a local path or a URI (s3://, gs://), told apart, joined and read one way, and written whole or not
at all.

Every part of the project names files either way: a local run keeps everything on this machine, a Kubeflow run on an
object store, and most paths can be either. A URI is `scheme://...`; anything else is a local path. Local files are
read and written with the standard library (no TensorFlow to load for a small file); a URI goes through TensorFlow's
file systems (tf.io.gfile, which TFX, TFT and TFMA use too: components/runtime/object_store.py registers s3://),
imported only then.

Writing whole: a reader never sees half a file or folder. A local file is written under a hidden name beside it and
renamed into place (rename(2) is atomic on a POSIX file system); an object on a store appears only once its upload
completes. A local folder is filled under a hidden name beside it and renamed into place (`folder_written_whole`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional, Union

URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
PathLike = Union[str, Path]


def scheme(path: PathLike) -> str:
    """'s3', 'gs', ... for a URI; '' for a local path."""
    match = URI.match(str(path))
    return match.group(1).lower() if match else ""


def is_uri(path: PathLike) -> bool:
    """Whether `path` names a file system other than this machine's (scheme://...)."""
    return bool(URI.match(str(path)))


def join(base: PathLike, *parts: str) -> str:
    """`base`/`parts`: '/' between the parts of a URI, the local separator between a local path's."""
    return posixpath.join(str(base), *parts) if is_uri(base) else os.path.join(str(base), *parts)


def exists(path: PathLike) -> bool:
    if not is_uri(path):
        return os.path.exists(path)
    import tensorflow as tf

    return tf.io.gfile.exists(str(path))


def is_dir(path: PathLike) -> bool:
    if not is_uri(path):
        return os.path.isdir(path)
    import tensorflow as tf

    return tf.io.gfile.isdir(str(path))


def file_names(folder: PathLike) -> List[str]:
    """The names of the files directly in `folder`, sorted; [] when there is no such folder (an object store has no
    empty folders: a prefix nothing was written under is one)."""
    if not is_uri(folder):
        if not os.path.isdir(folder):
            return []
        return sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    import tensorflow as tf

    try:
        if not tf.io.gfile.isdir(str(folder)):
            return []
        return sorted(name for name in tf.io.gfile.listdir(str(folder))
                      if not name.endswith("/") and not tf.io.gfile.isdir(join(folder, name)))
    except tf.errors.OpError as e:
        raise OSError(f"{folder}: {e.message}") from None


def read_bytes(path: PathLike) -> Optional[bytes]:
    """The bytes of file `path`; None when there is no such file. OSError when it cannot be read (an object store's
    error too)."""
    if not is_uri(path):
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read()
    import tensorflow as tf

    try:
        if not tf.io.gfile.exists(str(path)) or tf.io.gfile.isdir(str(path)):
            return None
        with tf.io.gfile.GFile(str(path), "rb") as f:
            return f.read()
    except tf.errors.OpError as e:
        raise OSError(f"{path}: {e.message}") from None


def read_text(path: PathLike) -> Optional[str]:
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8")


def write_file(path: PathLike, data: Union[str, bytes]) -> None:
    """Writes file `path` whole or not at all (its folder made when missing): renamed into place on the local disk,
    uploaded in one piece to an object store."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    if is_uri(path):
        import tensorflow as tf

        tf.io.gfile.makedirs(posixpath.dirname(str(path)))
        with tf.io.gfile.GFile(str(path), "wb") as f:
            f.write(data)
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def folder_written_whole(target: Path) -> Iterator[Path]:
    """A hidden staging folder beside local folder `target`, to fill in the block; when the block ends without an
    error it becomes `target` with one rename, unless another process published `target` first (then that one
    stays). The staging folder is removed however the block ends."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if not target.exists():
            os.chmod(staging, 0o755)  # mkdtemp makes it owner-only; what is published is meant to be read
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def local_copy(uri: str, target_root: Path) -> Path:
    """A local copy of file or folder `uri` under `target_root`, in a folder named by the URI's digest, fresh on each
    call (a file removed from the store is gone from the copy too); returns the copy's path."""
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    target = target_root / f"{scheme(uri)}-{digest}" / os.path.basename(uri.rstrip("/"))
    shutil.rmtree(target.parent, ignore_errors=True)
    target.parent.mkdir(parents=True)
    if is_dir(uri):
        copy_tree(uri.rstrip("/"), str(target))
    else:
        target.write_bytes(read_bytes(uri))
    return target


def copy_tree(source: str, target: str) -> None:
    """Copies every file under `source` to the same place under `target` (tf.io.gfile: any file system)."""
    import tensorflow as tf

    for folder, _, files in tf.io.gfile.walk(source):
        relative = folder[len(source):].strip("/") if is_uri(source) else os.path.relpath(folder, source)
        destination = target if relative in ("", ".") else join(target, relative)
        tf.io.gfile.makedirs(destination)
        for name in files:
            tf.io.gfile.copy(join(folder, name), join(destination, name), overwrite=True)
