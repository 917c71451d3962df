"""The Trainer of a compiled Kubeflow pipeline as a multi-worker Vertex AI Training job (`--trainer-workers`): the
flags, and the VertexTraining of PipelineConfig they make (pipeline/dag/training.py launches the job)."""

from __future__ import annotations

import argparse
from typing import Optional

from pipeline.cli.errors import InputError
from pipeline.dag.config import DEFAULT_TRAINER_MACHINE_TYPE, VertexTraining


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Kubeflow: the Trainer as a multi-worker Vertex AI Training job."""
    group = parser.add_argument_group(
        "distributed training", "with --trainer-workers above 1 the Trainer step launches a Vertex AI Training job "
                                "(TFX's Google Cloud AI Platform Trainer): one chief and N-1 workers, each running "
                                "--image; run_fn then trains with MultiWorkerMirroredStrategy")
    group.add_argument("--trainer-workers", type=int, default=1, metavar="N",
                       help="Trainer replicas; 1 trains in the Trainer step's own pod")
    group.add_argument("--trainer-machine-type", metavar="TYPE",
                       help=f"Vertex AI machine type of every replica (default: {DEFAULT_TRAINER_MACHINE_TYPE})")
    group.add_argument("--vertex-project", metavar="PROJECT",
                       help="Google Cloud project of the Vertex AI Training job (required with --trainer-workers "
                            "above 1)")
    group.add_argument("--vertex-region", metavar="REGION",
                       help="Vertex AI region, e.g. europe-west4 (required with --trainer-workers above 1)")


def vertex_training(args: argparse.Namespace, pipeline_root: str) -> Optional[VertexTraining]:
    """The Trainer's Vertex AI Training job from the flags, or None for the plain Trainer (one worker)."""
    workers = args.trainer_workers
    if workers < 1:
        raise InputError(f"--trainer-workers must be 1 or more, not {workers}.")
    if workers == 1:
        for name in ("trainer_machine_type", "vertex_project", "vertex_region"):
            if getattr(args, name) is not None:
                raise InputError(f"--{name.replace('_', '-')} applies only with --trainer-workers above 1 (a Vertex "
                                 "AI Training job); one worker trains in the Trainer step's own pod.")
        return None
    for name in ("vertex_project", "vertex_region"):
        if not getattr(args, name):
            raise InputError(f"--trainer-workers {workers} runs the Trainer on Vertex AI Training, which needs "
                             f"--{name.replace('_', '-')}.")
    if pipeline_root and not pipeline_root.startswith("gs://"):
        raise InputError(f"--trainer-workers {workers}: the Vertex AI Training workers read and write the artifacts "
                         f"under the pipeline root, so --pipeline-root must be on Cloud Storage (gs://...), not "
                         f"{pipeline_root}.")
    return VertexTraining(workers=workers, project=args.vertex_project, region=args.vertex_region, image=args.image,
                          machine_type=args.trainer_machine_type or DEFAULT_TRAINER_MACHINE_TYPE)
