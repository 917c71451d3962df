"""The command line of pipeline/run_kubeflow.py: compile, upload, run, schedule.

`compile` takes the same data, model and training flags as run_local.py (pipeline/cli/flags.py generates both), so a
setting added to a settings dataclass is offered here too.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import List, Optional

from pipeline.cli.errors import InputError
from pipeline.cli.flags import HelpFormatter, add_pipeline_flags
from pipeline.cli.runner_options import KUBEFLOW, add_beam_flags
from pipeline.kubeflow import commands, compile_config, storage, vertex
from pipeline.kubeflow.client import ENV_COOKIE, ENV_ENDPOINT, ENV_TOKEN
from pipeline.kubeflow.compiler import DEFAULT_IMAGE, cmd_compile
from pipeline.kubeflow.errors import ApiError, one_line
from pipeline.kubeflow.parameters import RUNTIME_PARAMETERS, shortcuts


def _add_connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=os.environ.get(ENV_ENDPOINT), required=not os.environ.get(ENV_ENDPOINT),
                   help=f"URL of the KFP API, e.g. http://localhost:8080 (default: ${ENV_ENDPOINT}); credentials come "
                        f"from ${ENV_TOKEN} (bearer token) or ${ENV_COOKIE} (session cookie)")
    p.add_argument("--namespace", help="Kubernetes namespace (multi-user Kubeflow); default: the server's or "
                                       "your kfp context's")
    p.add_argument("--verbose", action="store_true", help="show logs, and tracebacks of unexpected errors")


def _add_source(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("file", nargs="?", metavar="FILE", help=f"spec file written by `compile` to {what}")
    p.add_argument("--pipeline-id", help=f"{what} an uploaded pipeline instead (its latest version, or --version-id)")
    p.add_argument("--pipeline", metavar="NAME", help=f"{what} the uploaded pipeline of this name instead")
    p.add_argument("--version-id", help="pipeline version to use with --pipeline-id/--pipeline (default: latest)")
    p.add_argument("--experiment", default=compile_config.KFP_PIPELINE_NAME,
                   help="experiment to file runs under (created if new)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="runtime parameter (" + ", ".join(r.name for r in RUNTIME_PARAMETERS) + ") or one field of "
                        f"one ({', '.join(shortcuts())}); repeatable")
    p.add_argument("--pipeline-root", help="pipeline root of the runs (default: the spec's, else the server's)")
    p.add_argument("--no-cache", action="store_true", help="re-run every step instead of reusing cached outputs")
    p.add_argument("--service-account", help="Kubernetes service account the steps run as")


def build_parser() -> argparse.ArgumentParser:
    fmt = HelpFormatter
    p = argparse.ArgumentParser(
        prog="run_kubeflow.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compile the pipeline for Kubeflow Pipelines (KFP v2) and upload, run or schedule it.",
        epilog="Each subcommand has --help. Runtime parameters of the compiled pipeline: "
               + ", ".join(p.name for p in RUNTIME_PARAMETERS) + ".")
    sub = p.add_subparsers(dest="command", required=True, metavar="{compile,upload,run,schedule}")

    c = sub.add_parser("compile", formatter_class=fmt, help="write the KFP v2 pipeline spec",
                       description="Compile create_pipeline() with TFX's KubeflowV2DagRunner into a KFP v2 pipeline "
                                   "spec: JSON (a PipelineJob), or YAML (a PipelineSpec) when --output ends in .yaml "
                                   "or .yml. Paths are as the pipeline's pods see them: inside the image or URIs; "
                                   "nothing is read from or written to them now. The data and training flags are "
                                   "run_local.py's; their values become the defaults of the runtime parameters.")
    c.add_argument("--output", required=True, help="spec file to write (.json, .yaml or .yml)")
    c.add_argument("--image", default=DEFAULT_IMAGE, help="container image built from k8s/Dockerfile that every step "
                                                          "runs in")
    c.add_argument("--name", default=compile_config.KFP_PIPELINE_NAME,
                   help="pipeline name (lowercase letters, digits, '-')")
    c.add_argument("--pipeline-root", help="where the runs' artifacts go (gs://..., s3://...); default: the KFP "
                                           "server's default pipeline root")
    c.add_argument("--serving-dir", help="where blessed models are pushed, as SERVING_DIR/MODEL_NAME/VERSION/ "
                                         "(default: PIPELINE_ROOT/serving)")
    c.add_argument("--model-config-file", metavar="URI",
                   help="TF Serving's model config file that the serving deployment reads (as the pods see it): "
                        "each run's BaselineLookup takes the version its policy serves as the model in service "
                        "(default: the highest pushed version)")
    storage.add_flags(c)
    c.add_argument("--no-cache", action="store_true", help="compile with KFP's step cache off")
    c.add_argument("--verbose", action="store_true", help="show TFX/TensorFlow logs")
    add_pipeline_flags(c, KUBEFLOW)
    add_beam_flags(c, KUBEFLOW)
    vertex.add_flags(c)

    u = sub.add_parser("upload", formatter_class=fmt, help="upload a spec as a pipeline, or a new version of it",
                       description="Upload a spec file as a new pipeline, or as a new version of the pipeline of "
                                   "that name when one exists.")
    u.add_argument("file", metavar="FILE", help="spec file written by `compile`")
    u.add_argument("--name", help="pipeline name in KFP (default: the spec's)")
    u.add_argument("--version", help="version name, when the pipeline exists (default: NAME-UTCTIME-SPECHASH)")
    u.add_argument("--description", help="description shown in the KFP UI")
    _add_connection(u)

    r = sub.add_parser("run", formatter_class=fmt, help="start a run now",
                       description="Start a run now, of a spec file or of an uploaded pipeline.")
    _add_source(r, "run")
    r.add_argument("--run-name", help="display name of the run (default: pipeline name and UTC time)")
    _add_connection(r)

    s = sub.add_parser("schedule", formatter_class=fmt, help="create, pause, resume or delete a recurring run",
                       description="Create a recurring run for scheduled retraining (at most one run at a time, "
                                   "missed runs not caught up), or pause, resume or delete one.")
    mode = s.add_mutually_exclusive_group(required=True)
    mode.add_argument("--cron", help='when to run: 5-field cron "minute hour day-of-month month day-of-week" '
                                     '(e.g. "0 3 * * 1"), or 6 fields with seconds first, as KFP takes them')
    mode.add_argument("--pause", metavar="NAME_OR_ID", help="pause (disable) this recurring run")
    mode.add_argument("--resume", metavar="NAME_OR_ID", help="resume (enable) this recurring run")
    mode.add_argument("--delete", metavar="NAME_OR_ID", help="delete this recurring run")
    _add_source(s, "schedule")
    s.add_argument("--name", help="name of the recurring run (default: PIPELINE-retraining)")
    s.add_argument("--description", help="description shown in the KFP UI")
    s.add_argument("--paused", action="store_true", help="create it paused")
    _add_connection(s)
    return p


def _quiet(verbose: bool) -> None:
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    warnings.filterwarnings("ignore")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet(args.verbose)
    command = {"compile": cmd_compile, "upload": commands.cmd_upload, "run": commands.cmd_run,
               "schedule": commands.cmd_schedule}[args.command]
    try:
        return command(args)
    except InputError as e:  # the front door's and the Kubeflow commands' UserError
        print(f"error: {one_line(e, 1000)}", file=sys.stderr)
        return 2
    except ApiError as e:
        print(f"error: {one_line(e, 1000)}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug, not a user error: one line unless --verbose asks for more
        if args.verbose:
            raise
        print(f"error: unexpected {type(e).__name__}: {one_line(e, 500)} (--verbose shows the traceback)",
              file=sys.stderr)
        return 1
