"""Run the pipeline on this machine: TFX LocalDagRunner, Apache Beam's DirectRunner (or --beam-runner), ML Metadata in
SQLite.

    python pipeline/run_local.py                      # built-in rotten_tomatoes, pretrained MiniLM
    python pipeline/run_local.py --dataset 20newsgroups
    python pipeline/run_local.py --data-root my_csvs/ --text-column review --label-column stars

Exit status: 0 when the run finished (the summary says whether the model was blessed and pushed),
2 when the input or the data validation stopped it, 1 when a component failed, 3 when another run is using the
same pipeline root (one run at a time per pipeline root: an exclusive lock on <pipeline_root>/.run.lock, held for
the whole run and released by the OS when the process ends, even when it is killed; for a pipeline root on an object
store the lock is in its local state folder, pipeline/dag/config.py's local_state_dir, and guards this machine only).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere: TFT/TFMA need Keras 2
if __package__ in (None, ""):  # `python pipeline/run_local.py`: make the repo root importable, not pipeline/
    _ROOT = str(Path(__file__).resolve().parent.parent)
    sys.path[0] = _ROOT
    # Beam's multi-processing workers are fresh interpreters: they find the project through PYTHONPATH.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)

import argparse
import time
import traceback
from typing import List, Optional

from components.runtime import storage
from components.runtime.quiet_exit import quiet_exit
from pipeline.cli import flags, local_run
from pipeline.cli.errors import InputError
from pipeline.cli.locations import S3_ENDPOINT_HELP, local_path
from pipeline.cli.runner_options import LOCAL, add_beam_flags
from pipeline.dag.config import local_state_dir
from pipeline.data import assets
from pipeline.local import console, reports


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_local.py",
        description="Validate labelled text, tokenize it in-graph, fine-tune BERT, evaluate against the model in "
                    "service and push it in TensorFlow Serving's layout, all on this machine.",
        epilog="Outputs default to outputs/<dataset>/{pipeline_root,serving}/. Re-running with the same "
               "arguments reuses unchanged steps from the cache; the model in service is the baseline the "
               "new model must match. The libraries' logs go to <pipeline_root>/logs/ (--verbose shows them; "
               "outputs/object-store/... for an s3:// or gs:// root). "
               "Exit status: 0 finished (blessed or not), 1 a component failed, 2 invalid input or data, 3 another "
               "run is using the same pipeline root.",
        formatter_class=flags.HelpFormatter)
    flags.add_pipeline_flags(p, LOCAL)
    run = p.add_argument_group("run")
    run.add_argument("--pipeline-root", type=local_path,
                     help="where the artifacts, the run report and the run-to-run baselines go: a local folder, or "
                          "s3://BUCKET/PATH (see --s3-endpoint) or gs://BUCKET/PATH; the ML Metadata store, the run "
                          "lock and the log file of an object-store root stay on this machine, under "
                          "outputs/object-store/")
    run.add_argument("--serving-dir", type=local_path,
                     help="where blessed models are pushed, as SERVING_DIR/MODEL_NAME/VERSION/ (a local folder, "
                          "s3:// or gs://)")
    run.add_argument("--model-config-file", type=local_path, metavar="FILE",
                     help="TF Serving's model config file (text ModelServerConfig) that the model server reads: the "
                          "version its policy serves for --serving-dir's model is the model in service, the baseline "
                          "and --warm-start's start (default: the highest pushed version, TF Serving's default "
                          "policy); see docs/serving.md")
    run.add_argument("--s3-endpoint", metavar="URL", help=S3_ENDPOINT_HELP)
    run.add_argument("--no-cache", action="store_true", help="re-run every component instead of reusing outputs")
    run.add_argument("--infra-validator", action="store_true",
                     help="also start the pinned tensorflow/serving image on the candidate with the local Docker "
                          "daemon (TFX's InfraValidator) and push only what it served")
    run.add_argument("--summary-json", type=local_path,
                     help="also write the run summary to this JSON file (a local path, s3:// or gs://)")
    run.add_argument("--verbose", action="store_true",
                     help="show the TFX/Beam/TensorFlow logs on screen instead of writing them to "
                          "<pipeline_root>/logs/")
    add_beam_flags(p, LOCAL)
    return p


RUN_LOCK = ".run.lock"
EXIT_BUSY = 3
_run_locks: dict = {}  # pipeline root -> descriptor, kept open for the life of the process: the lock is the open file


def lock_pipeline_root(pipeline_root: str, folder: Optional[str] = None) -> Optional[str]:
    """Takes an exclusive flock on <folder>/.run.lock (folder: the pipeline root's local state folder, the root
    itself when local) for the rest of this process's life; returns None, or the error message when another live
    run holds it. The kernel drops the lock when the process ends however it ends (SIGKILL included), so a dead run
    never leaves a stale lock; the pid in the file is only for the message."""
    import fcntl

    folder = folder or pipeline_root
    if folder in _run_locks:  # main() called again in this process (flock is per open file, not re-entrant)
        return None
    os.makedirs(folder, exist_ok=True)
    # os.open's descriptors are not inherited by exec'd children (PEP 446): the lock dies with this process.
    fd = os.open(os.path.join(folder, RUN_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        return (f"another run is using pipeline root {pipeline_root} (pid {holder}); "
                "wait for it or use another --pipeline-root.")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _run_locks[folder] = fd
    return None


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    console.quiet_libraries(args.verbose)
    with console.LogFile(enabled=not args.verbose) as log:
        status, summary, config = _main(args, log)
    if config is not None:
        reports.write_summaries(summary, args.summary_json and str(args.summary_json), config.pipeline_root)
        print("\n".join(console.summary_lines(summary)), flush=True)
    return status


def _main(args: argparse.Namespace, log: console.LogFile):
    """(exit status, summary, config): the checks of the command line and the data, then the run."""
    err = log.console_err
    try:
        plan = local_run.plan(args)
    except (InputError, assets.AssetError) as e:
        print(f"error: {e}", file=err, flush=True)
        reports.write_refusal(args, e)
        return 2, None, None
    for warning in plan.warnings:
        print(f"warning: {warning}", file=err, flush=True)
    for note in plan.notes:
        print(f"note: {note}", flush=True)
    config = plan.config
    state = str(local_state_dir(config.pipeline_root))  # the local disk's part of the pipeline root
    busy = lock_pipeline_root(config.pipeline_root, state)  # before any TFX work; held until this process exits
    if busy:
        print(f"error: {busy}", file=err, flush=True)
        return EXIT_BUSY, None, None
    print(f"pipeline root: {config.pipeline_root}\nserving dir:   {config.serving_dir}", flush=True)
    if log.enabled:
        log.move_to(os.path.join(state, console.LOG_DIR, time.strftime("run-%Y%m%d-%H%M%S.log")))
        print(f"log file:      {log.path}", flush=True)
    status, summary = _run(config, list(plan.warnings), err)
    return status, summary, config


def _run(config, warnings: List[str], err):
    """Runs the pipeline with a line per step; returns (exit status, summary)."""
    from tfx import v1 as tfx

    from components.ingestion.serving_logs import ServingLogsError
    from components.release.serving_check import ServingCheckError
    from components.validation.gates import DataValidationError
    from pipeline.dag import beam_dependencies
    from pipeline.dag.pipeline import create_pipeline, local_ir
    from pipeline.local.record import execution_state
    from pipeline.local.step_figures import step_figure

    reporter = console.StepReporter(0, lambda node, execution: step_figure(config.metadata_path, node, execution))
    start = time.time()
    error, status = None, 0
    try:
        pipeline = create_pipeline(config)
        beam_dependencies.skip_tfx_package()
        reporter.steps = console.count_steps(pipeline)
        with reporter.watching(lambda execution: execution_state(config.metadata_path, execution)):
            tfx.orchestration.LocalDagRunner().run_with_ir(local_ir(pipeline))
    except Exception as e:  # noqa: BLE001 - reported as one line below, with the component's own message
        refusals = (DataValidationError, ServingCheckError, ServingLogsError)  # the data, model or logs refused
        cause = e
        while cause.__cause__ is not None or cause.__context__ is not None:
            if isinstance(cause, refusals):
                break
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, refusals):
            error, status = str(cause), 2
        else:
            # Not something the user can fix from the exception's text: name the step, say what to try, and keep
            # the whole story in a file.
            log = os.path.join(config.pipeline_root, "last_error.log")
            storage.write_file(log, traceback.format_exc())
            failed = next((node for node, state in reporter.states.items() if state == "FAILED"), None)
            reason = f"{type(cause).__name__}: {str(cause).strip()}".splitlines()[0][:300]
            error, status = (f"step {failed or 'pipeline'} failed ({reason}); {step_advice(failed)} (traceback in "
                             f"{log})"), 1
        print(f"error: {error}", file=err, flush=True)
    summary = reports.summary_of_run(config, time.time() - start, warnings, error)
    reports.record_history(config, summary, err)  # before the report, which plots the history
    try:  # the report, of a finished or a stopped run alike; a failure to draw it never changes the run's outcome
        summary.report = reports.write_report(config, summary)
    except Exception as e:  # noqa: BLE001 - reported in one line
        print(f"warning: the run report could not be written ({type(e).__name__}: {str(e)[:200]})", file=err,
              flush=True)
    return status, summary


def step_advice(node: Optional[str]) -> str:
    """What a user can try when a step fails with an error of its own (not a refusal of the data)."""
    from pipeline.dag import nodes

    advice = {
        nodes.EXAMPLE_GEN: "check that the CSV files can be read and did not change during the run",
        nodes.TRANSFORM: "check the text column's content and the vocabulary settings (--pretrained, --vocab)",
        nodes.TRAINER: "check the training settings (memory grows with --batch-size and --max-seq-length) and the log",
        nodes.DISTILLER: "check the distillation settings (--student-layers, --distill-learning-rate) and the log",
        nodes.EVALUATOR: "the model was trained but not evaluated; the log says which metric or model failed",
        nodes.PUSHER: "check that --serving-dir is writable and has free space",
    }.get(node or "", "run again with --verbose to see the libraries' logs, or read the log file")
    return advice + "; the same command, run again, resumes after the last finished step"


def main_exit() -> None:
    """`python pipeline/run_local.py` and the console script `bert-tfx-run` (pyproject.toml):
    main, ended by quiet_exit."""
    quiet_exit(main())


if __name__ == "__main__":
    main_exit()
