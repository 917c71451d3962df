"""Where the pipeline's Beam steps run, as flags of both runners: the Beam runner presets (`--beam-runner` and what
each runner needs), added to both parsers and read into the PipelineConfig's beam_pipeline_args. (On Kubeflow the
Trainer may run as a Vertex AI Training job: pipeline/kubeflow/vertex.py.)"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from typing import Tuple

from pipeline.cli.errors import InputError
from pipeline.dag.config import BEAM_DIRECT_MODES, BEAM_ENVIRONMENTS, BEAM_RUNNERS

LOCAL, KUBEFLOW = "local", "kubeflow"  # the runner a parser or config is for

# The DirectRunner's settings when no flag sets them (local: --beam-direct-mode, --beam-workers; Kubeflow: the direct
# preset): every Beam step in its own process, one worker.
DIRECT_MODE, DIRECT_WORKERS = "in_memory", 1
# Flags that apply to some runners only (and to one portable environment, for --beam-environment-config): given with
# another, they are refused rather than silently ignored.
BEAM_RUNNER_FLAGS = {"beam_project": ("dataflow",), "beam_region": ("dataflow",),
                     "beam_temp_location": ("dataflow",), "beam_job_endpoint": ("flink", "spark"),
                     "beam_environment_config": ("flink", "spark")}
HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")


def add_beam_flags(parser: argparse.ArgumentParser, target: str) -> None:
    """Where the Beam steps run (`--beam-runner` and what each runner needs), for `target` (LOCAL or KUBEFLOW)."""
    local = target == LOCAL
    beam = parser.add_argument_group(
        "beam runner", "where the Beam steps (CsvExampleGen, StatisticsGen, SchemaGen, ExampleValidator, Transform, "
                       "Evaluator) run; docs/beam-runners.md says what each runner needs")
    beam.add_argument("--beam-runner", choices=BEAM_RUNNERS, default="direct",
                      help="direct: Beam's DirectRunner inside the step's own process; dataflow: Google Cloud Dataflow "
                           "(needs --beam-project, --beam-region, --beam-temp-location); flink, spark: a Flink or "
                           "Spark cluster through its Beam job server (Beam's PortableRunner; needs "
                           "--beam-job-endpoint)")
    if local:
        beam.add_argument("--beam-direct-mode", choices=BEAM_DIRECT_MODES, default=DIRECT_MODE,
                          help="Beam DirectRunner mode for the data components (--beam-runner direct)")
        beam.add_argument("--beam-workers", type=int, default=DIRECT_WORKERS,
                          help="Beam DirectRunner workers (0: one per CPU; --beam-runner direct)")
    beam.add_argument("--beam-project", metavar="PROJECT",
                      help="dataflow: the Google Cloud project the Dataflow jobs run in")
    beam.add_argument("--beam-region", metavar="REGION", help="dataflow: the Dataflow region, e.g. europe-west4")
    beam.add_argument("--beam-temp-location", metavar="gs://BUCKET/PATH",
                      help="dataflow: a Cloud Storage folder for Dataflow's temporary and staged files")
    beam.add_argument("--beam-sdk-image", metavar="IMAGE",
                      help="the container image the Beam workers run the project's code in (dataflow's "
                           "--sdk_container_image; flink/spark with --beam-environment DOCKER): it needs the "
                           "project's code and tensorflow-text 2.16, whose ops Transform's graph uses; the image "
                           "built from k8s/Dockerfile has both" +
                           (" (required for those runners here)" if local else " (default: --image)"))
    beam.add_argument("--beam-job-endpoint", metavar="HOST:PORT",
                      help="flink, spark: the Beam job server of the cluster (e.g. the Flink job server's port 8099)")
    beam.add_argument("--beam-environment", choices=BEAM_ENVIRONMENTS, default="DOCKER",
                      help="flink, spark: how the cluster starts the Python SDK workers: DOCKER, a container of "
                           "--beam-sdk-image" + ("" if local else " (default: --image)") + " on each node; "
                           "EXTERNAL, a worker pool already running (--beam-environment-config HOST:PORT); PROCESS, a "
                           "command run on each node (--beam-environment-config COMMAND, e.g. /opt/apache/beam/boot)")
    beam.add_argument("--beam-environment-config", metavar="HOST:PORT|COMMAND",
                      help="flink, spark: the worker pool's address (--beam-environment EXTERNAL) or the SDK worker "
                           "command (--beam-environment PROCESS)")
    if not local:
        beam.add_argument("--beam-args", default="",
                          help="more Beam pipeline arguments of the data steps, one string appended after the "
                               "preset's (a later argument overrides an earlier one): "
                               "--beam-args=\"--sdk_worker_parallelism=2 ...\" (default: none)")


def _beam_sdk_image(args: argparse.Namespace, why: str) -> str:
    image = args.beam_sdk_image or getattr(args, "image", None)
    if not image:
        raise InputError(f"{why} needs --beam-sdk-image (a container image with the project's code and "
                         "tensorflow-text, e.g. the one built from k8s/Dockerfile).")
    return image


def beam_pipeline_args(args: argparse.Namespace, target: str) -> Tuple[str, ...]:
    """The Beam pipeline arguments of --beam-runner and its flags (checked here: a missing or misplaced flag is an
    InputError naming it), followed on Kubeflow by --beam-args."""
    runner = args.beam_runner
    for name, runners in BEAM_RUNNER_FLAGS.items():
        if getattr(args, name) is not None and runner not in runners:
            raise InputError(f"--{name.replace('_', '-')} applies only to --beam-runner {' or '.join(runners)}, not "
                             f"{runner}.")
    if args.beam_environment != "DOCKER" and runner not in ("flink", "spark"):
        raise InputError(f"--beam-environment applies only to --beam-runner flink or spark, not {runner}.")
    if runner == "direct":
        mode, workers = (args.beam_direct_mode, args.beam_workers) if target == LOCAL else (DIRECT_MODE, DIRECT_WORKERS)
        preset = [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"]
    elif runner == "dataflow":
        for name in ("beam_project", "beam_region", "beam_temp_location"):
            if not getattr(args, name):
                raise InputError(f"--beam-runner dataflow needs --{name.replace('_', '-')}.")
        if not args.beam_temp_location.startswith("gs://"):
            raise InputError(f"--beam-temp-location {args.beam_temp_location!r} must be a Cloud Storage folder "
                             "(gs://BUCKET/PATH) for --beam-runner dataflow.")
        preset = ["--runner=DataflowRunner", f"--project={args.beam_project}", f"--region={args.beam_region}",
                  f"--temp_location={args.beam_temp_location}",
                  f"--sdk_container_image={_beam_sdk_image(args, '--beam-runner dataflow')}",
                  "--experiments=use_runner_v2"]  # custom SDK containers run on Dataflow Runner v2 only
    else:  # flink, spark: the cluster's Beam job server, and how its nodes start the Python SDK workers
        if not args.beam_job_endpoint:
            raise InputError(f"--beam-runner {runner} needs --beam-job-endpoint (HOST:PORT of the cluster's Beam job "
                             "server).")
        if not HOST_PORT.match(args.beam_job_endpoint):
            raise InputError(f"--beam-job-endpoint {args.beam_job_endpoint!r} must be HOST:PORT.")
        environment, config = args.beam_environment, args.beam_environment_config
        if environment == "DOCKER":
            if config is not None:
                raise InputError("--beam-environment-config applies only to --beam-environment EXTERNAL or PROCESS; "
                                 "DOCKER runs --beam-sdk-image.")
            value = _beam_sdk_image(args, f"--beam-runner {runner} with DOCKER")
        elif not config:
            raise InputError(f"--beam-environment {environment} needs --beam-environment-config ("
                             + ("HOST:PORT of the SDK worker pool" if environment == "EXTERNAL"
                                else "the command that starts an SDK worker on each node") + ").")
        elif environment == "EXTERNAL":
            if not HOST_PORT.match(config):
                raise InputError(f"--beam-environment-config {config!r} must be HOST:PORT (the SDK worker pool) with "
                                 "--beam-environment EXTERNAL.")
            value = config
        else:
            value = json.dumps({"command": config}, separators=(",", ":"))
        # --environment_config, not Beam's newer --environment_options KEY=VALUE: Beam 2.59's EXTERNAL environment
        # reads only the former (ExternalEnvironment.from_options fails on a missing environment_config).
        preset = ["--runner=PortableRunner", f"--job_endpoint={args.beam_job_endpoint}",
                  f"--environment_type={environment}", f"--environment_config={value}"]
    extra = []
    if target == KUBEFLOW:
        try:
            extra = shlex.split(args.beam_args)
        except ValueError as e:
            raise InputError(f"--beam-args: {e}.") from None
    return tuple(preset + extra)
