"""Progress lines for people, from inside a component (the Trainer's steps and epochs).

The local runner attaches a handler to PROGRESS_LOGGER that writes to the terminal (pipeline/local/console.py), while
the libraries' logs go to a file; without one (a Kubeflow pod, whose standard output is the step's log) lines are
printed.
"""

import logging

PROGRESS_LOGGER = "bert_tfx.progress"


def progress(line: str) -> None:
    logger = logging.getLogger(PROGRESS_LOGGER)
    if logger.handlers:
        logger.info(line)
    else:
        print(line, flush=True)
