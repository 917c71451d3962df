"""Where a pipeline's frozen schema lives and whether the user edited it (components/validation/frozen_schema.py
freezes it). Without TFX, so the runner's front door can read them before anything heavy loads."""

import hashlib
import os

from components.runtime.storage import join, read_bytes

SCHEMA_FILE = "schema.pbtxt"
DIGEST_FILE = ".frozen.sha256"  # the digest of schema.pbtxt as frozen: a different file was edited since
FROZEN_DIR = "schema"  # under the pipeline root


def frozen_schema_file(pipeline_root: str) -> str:
    return join(pipeline_root, FROZEN_DIR, SCHEMA_FILE)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frozen_edit(pipeline_root: str) -> str:
    """'' while the frozen schema is as it was frozen; the digest of the edited file once the user edited it."""
    path = frozen_schema_file(pipeline_root)
    data = read_bytes(path)
    if data is None:
        return ""
    current = digest(data)
    frozen = (read_bytes(join(os.path.dirname(path), DIGEST_FILE)) or b"").decode().strip()
    return "" if current == frozen else current
