"""Where a pipeline's frozen schema lives and whether the user edited it (components/validation/frozen_schema.py
freezes it). Without TFX, so the runner's front door can read them before anything heavy loads."""

import hashlib
import os

SCHEMA_FILE = "schema.pbtxt"
DIGEST_FILE = ".frozen.sha256"  # the digest of schema.pbtxt as frozen: a different file was edited since
FROZEN_DIR = "schema"  # under the pipeline root


def frozen_schema_file(pipeline_root: str) -> str:
    return os.path.join(pipeline_root, FROZEN_DIR, SCHEMA_FILE)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: str):
    """The bytes of `path`, None when there is no such file; an object store (s3://, gs://) through tf.io.gfile,
    imported only then."""
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.GFile(path, "rb").read() if tf.io.gfile.exists(path) else None
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def frozen_edit(pipeline_root: str) -> str:
    """'' while the frozen schema is as it was frozen; the digest of the edited file once the user edited it."""
    path = frozen_schema_file(pipeline_root)
    data = _read(path)
    if data is None:
        return ""
    current = digest(data)
    frozen = (_read(os.path.join(os.path.dirname(path), DIGEST_FILE)) or b"").decode().strip()
    return "" if current == frozen else current
