"""Fail early, in one line, when the interpreter cannot run the pinned TFX 1.16 stack.

Runs with the bare interpreter (no third-party imports) before the virtual environment exists.
"""
import platform
import sys

SUPPORTED = ((3, 10), (3, 11))

if sys.version_info[:2] not in SUPPORTED:
    sys.exit(
        f"error: Python {platform.python_version()} at {sys.executable} is not supported: "
        "use Python 3.10 or 3.11 (TFX 1.16 and its TensorFlow 2.16 / ml-metadata wheels exist only for those), "
        "e.g. `make PYTHON=python3.11 run`."
    )
if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
    sys.exit(
        f"error: {platform.system()} {platform.machine()} is not supported: the pinned ml-metadata, TFDV and "
        "tfx-bsl wheels exist only for x86_64 Linux (glibc >= 2.31)."
    )
