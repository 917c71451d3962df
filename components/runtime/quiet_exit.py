"""End a TensorFlow process without the interpreter's teardown, but with its exit handlers.

TF 2.16 prints spurious "Exception ignored in AtomicFunction.__del__" tracebacks while the interpreter garbage-
collects its modules at exit, so our entry points end with os._exit. os._exit alone also skips the atexit
handlers, and TensorFlow's autograph deletes the source files it generates in the temporary folder
(`__autograph_generated_file*.py`, one per converted function) from one of those: every run left them behind.
Running the handlers first is what a normal exit does before its teardown.
"""
from __future__ import annotations

import atexit
import os
import sys


def quiet_exit(code: int) -> None:
    """Run the atexit handlers, flush the console, and end the process with `code`, skipping the teardown."""
    # atexit has no public "run the handlers now"; _run_exitfuncs is what the interpreter itself calls at exit.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
