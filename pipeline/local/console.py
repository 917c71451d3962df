"""The local runner's console, for a person: one line when each step starts and one when it ends, the Trainer's
progress, the summary's lines at the end (`summary_lines`); the libraries' logs go to a file under the pipeline root.

TensorFlow's C++ logs, absl, Beam and TFX write to the process's standard error (file descriptor 2), some of them from
C++ or from Beam's worker processes, where no Python logging setting reaches. So a quiet run points descriptor 2 at
the log file (`LogFile`), and the runner writes its own messages to the terminal's standard error through
`LogFile.console_err`. `--verbose` leaves the descriptors alone.

The per-step lines come from `StepReporter`, which wraps TFX's portable `Launcher.launch` while a LocalDagRunner runs:
TFX has no listener interface for the local runner, and its own "Component X is running" lines are log records.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, TextIO

from components.release.model_metrics import classes_averaged
from components.release.run_summary import RunSummary, not_comparable_text
from components.runtime.progress import PROGRESS_LOGGER
from pipeline.local.reports import ANOMALIES_REPORT

LOG_DIR = "logs"  # under the pipeline root


class LogFile:
    """While active, everything written to standard error (by Python, C++ or child processes) goes to a log file: a
    temporary one until `move_to(path)` names the real one (the pipeline root is known only once the command line has
    been checked, and importing TensorFlow on the way already logs). `console_err` is the terminal's standard error.
    Disabled (`--verbose`), it changes nothing."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.path: Optional[str] = None
        self.console_err: TextIO = sys.stderr
        self._saved_fd: Optional[int] = None
        self._handler: Optional[logging.Handler] = None

    def _point_stderr_at(self, path: str) -> None:
        sys.stderr.flush()
        log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        self.path = path

    def __enter__(self) -> "LogFile":
        if not self.enabled:
            return self
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved_fd = os.dup(2)
        fd, temporary = tempfile.mkstemp(prefix="bert-tfx-", suffix=".log")
        os.close(fd)
        self._point_stderr_at(temporary)
        # Python's own stderr writes to descriptor 2 (now the log); the runner's messages go to the terminal.
        self.console_err = io.TextIOWrapper(os.fdopen(os.dup(self._saved_fd), "wb", buffering=0),
                                            encoding="utf-8", errors="replace", line_buffering=True)
        # The Trainer's progress lines reach the terminal (and, through the root logger, the log).
        self._handler = logging.StreamHandler(sys.stdout)
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        progress = logging.getLogger(PROGRESS_LOGGER)
        progress.addHandler(self._handler)
        progress.setLevel(logging.INFO)
        return self

    def move_to(self, path: str) -> None:
        """From now on the log is `path` (appended to), starting with what the temporary log holds."""
        if not self.enabled:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sys.stderr.flush()
        temporary = self.path
        with open(temporary, "rb") as source, open(path, "ab") as target:
            shutil.copyfileobj(source, target)
        self._point_stderr_at(path)
        os.unlink(temporary)

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        sys.stderr.flush()
        logging.getLogger(PROGRESS_LOGGER).removeHandler(self._handler)
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self.console_err.flush()
        if self.path and os.path.basename(self.path).startswith("bert-tfx-"):  # never moved: nothing ran
            os.unlink(self.path)


def quiet_libraries(verbose: bool) -> None:
    """Before TensorFlow is imported: its C++ logs at warnings and above (the file keeps those), Python warnings
    (deprecation notices) into the logging system, absl at INFO (into the file) unless `verbose` shows everything."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    logging.captureWarnings(True)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.INFO)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)


def _is_system_node(node_id: str) -> bool:
    return node_id.endswith("resolver")


class StepReporter:
    """Prints `[n/N] Step ...` when a step starts and `[n/N] Step done in S s: FIGURE` when it ends (or `cached`, or
    `FAILED`). `figure(node_id, execution_id)` returns the key figure of a finished step, or ''."""

    def __init__(self, steps: int, figure: Callable[[str, int], str], out: TextIO = sys.stdout):
        self.steps, self.figure, self.out = steps, figure, out
        self.done = 0
        self.states: Dict[str, str] = {}

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    @contextlib.contextmanager
    def watching(self, state_of: Callable[[int], str]):
        """Wraps TFX's Launcher.launch for the duration: `state_of(execution_id)` tells COMPLETE from CACHED."""
        from tfx.orchestration.portable import launcher

        original = launcher.Launcher.launch
        reporter = self

        def launch(launcher_self):
            node_id = launcher_self._pipeline_node.node_info.id  # noqa: SLF001 - the node being launched
            if _is_system_node(node_id):
                return original(launcher_self)
            reporter.done += 1
            tag = f"[{reporter.done}/{reporter.steps}]"
            reporter._say(f"{tag} {node_id} ...")
            start = time.time()
            try:
                info = original(launcher_self)
            except Exception as e:
                reporter.states[node_id] = "FAILED"
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                reporter._say(f"{tag} {node_id} FAILED after {time.time() - start:.1f} s: {reason[:160]}")
                raise
            seconds = time.time() - start
            if info is None or info.execution_id is None:  # TFX's Cond false (--retrain-if) leaves no execution
                reporter.states[node_id] = "SKIPPED"
                reporter._say(f"{tag} {node_id} skipped (its inputs were not produced, or its condition was false)")
                return info
            state = state_of(info.execution_id)
            reporter.states[node_id] = state
            try:
                figure = reporter.figure(node_id, info.execution_id)
            except Exception as e:  # noqa: BLE001 - a key figure is a courtesy; never fail a run over it
                logging.warning("no key figure for %s: %s", node_id, e)
                figure = ""
            verb = "cached" if state == "CACHED" else "done in"
            reporter._say(f"{tag} {node_id} {verb} {seconds:.1f} s" + (f": {figure}" if figure else ""))
            return info

        launcher.Launcher.launch = launch
        try:
            yield self
        finally:
            launcher.Launcher.launch = original


def count_steps(pipeline) -> int:
    """The steps StepReporter numbers: the pipeline's components, resolvers excluded."""
    return sum(1 for c in pipeline.components if not _is_system_node(c.id))


def summary_lines(summary: RunSummary) -> List[str]:
    """The summary for people, one fact a line."""
    lines = [f"dataset: {summary.dataset}  model: {summary.model}  wall: {summary.wall_seconds} s"]
    if summary.retrain:  # --retrain-if: whether the run trained, and why
        lines.append(summary.retrain["why"])
    if summary.examples_per_split:
        lines.append("examples: " + ", ".join(f"{k} {v}" for k, v in summary.examples_per_split.items()))
    cached = [k for k, v in summary.components.items() if v["state"] == "CACHED"]
    if cached:
        lines.append(f"from the cache: {', '.join(cached)}")
    train_text = (summary.text_statistics or {}).get("train")
    if train_text and train_text.get("examples"):
        t = train_text
        lines.append(f"text (train): {t['examples']} texts, {t['tokens_mean']} tokens on average (95% up to "
                     f"{t['tokens_p95']}), {t['truncated']} truncated to {t['max_seq_length']}, {t['empty']} empty, "
                     f"[UNK] {t['unk_share']:.2%} of tokens")
    if summary.serving:  # --serving-logs: the verdict, what crossed, and where the sample to label is
        lines.append(f"in service: {summary.serving.get('verdict')}")
        lines.extend(f"in service: {crossed['description']}" for crossed in summary.serving.get("crossed") or [])
    for warning in summary.warnings:
        lines.append(f"warning: {warning}")
    if summary.anomalies:
        lines.append(f"anomalies: {len(summary.anomalies)} (see {ANOMALIES_REPORT} in the pipeline root)")
    metrics = summary.eval_metrics or {}
    keys = ["sparse_categorical_accuracy", "macro_f1_score", "macro_auc", "example_count"]
    tasks = [k.split("/")[0] for k in metrics if k.endswith("/sparse_categorical_accuracy")]
    for task in tasks or ([""] if metrics else []):  # one line per task with several label columns
        prefix = f"{task}/" if task else ""
        over = classes_averaged(metrics, task)  # which classes macro F1 averaged: those with an eval example
        lines.append(f"eval{f' ({task})' if task else ''}: " + ", ".join(
            f"{k} {metrics[prefix + k]}" + (f" (over {over})" if k == "macro_f1_score" and over else "")
            for k in keys if prefix + k in metrics))
    if summary.test_metrics is not None:
        t = summary.test_metrics
        for name, scores in (t.get("tasks") or {"": t}).items():
            lines.append(f"test{f' ({name})' if name else ''}: accuracy {scores.get('accuracy')}, macro F1 "
                         f"{scores.get('macro_f1')} on {scores.get('examples')} examples")
    if summary.frozen_schema:
        lines.append(f"schema: frozen to {summary.frozen_schema}; later runs check their data against it (edit it "
                     "when the data changes on purpose, e.g. a new class: see docs/protections.md)")
    if (summary.not_comparable or {}).get("accepted"):
        lines.append(f"note: {not_comparable_text(summary.not_comparable)}")
    lines.append(f"blessed: {summary.blessed}" + (
        f" ({'; '.join(summary.not_blessed_because)})" if summary.not_blessed_because else ""))
    lines.append(f"pushed: {summary.pushed_dir or 'no'}")
    if summary.model_card:
        lines.append(f"model card: {summary.model_card}")
    if summary.report:
        lines.append(f"report: {summary.report}")
    return lines
