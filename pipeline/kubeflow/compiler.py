"""`compile`: the very pipeline run_local.py runs (`create_pipeline(config)`), as a KFP v2 pipeline spec.

TFX's KubeflowV2DagRunner does the compiling. Nothing is read from the pipeline root and nothing is uploaded: the
user code is referenced by module path and runs from the image built with k8s/Dockerfile (code under /pipeline, on
PYTHONPATH; the built-in datasets, the packaged checkpoint and the curated schemas inside it).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Dict, Optional, Sequence

from components.runtime.storage import write_file
from pipeline.dag.config import PipelineConfig
from pipeline.kubeflow import compile_config, storage
from pipeline.kubeflow.errors import UserError
from pipeline.kubeflow.parameters import RUNTIME_PARAMETERS, expose_runtime_parameters, shortcuts, spec_parameters

DEFAULT_IMAGE = "ghcr.io/your-org/bert-tfx-pipeline:0.1.0"  # the placeholder the k8s/ manifests use too
# Every step's command: TFX's kubeflow_v2_run_executor, with the input artifacts' types that open-source KFP leaves
# out taken from the spec (pipeline/kubeflow/entrypoint.py).
ENTRYPOINT = ["python", "-m", "pipeline.kubeflow.entrypoint"]


def compile_pipeline(config: PipelineConfig, image: str, output: str, s3_endpoint: Optional[str] = None,
                     s3_credentials: str = storage.DEFAULT_SECRET) -> dict:
    """Compiles create_pipeline(config) with KubeflowV2DagRunner and writes the spec to `output`: a PipelineJob
    as JSON, or (.yaml/.yml) the PipelineSpec as YAML, the form `kfp` itself writes. With a location on s3://,
    every step gets the endpoint and the credentials' secret (pipeline/kubeflow/storage.py); the platform spec that
    carries the secret is the YAML's second document, or the PipelineJob's `platformSpec`. Returns the PipelineJob
    dict."""
    from tfx import v1 as tfx

    from pipeline.dag import nodes
    from pipeline.dag.pipeline import create_pipeline

    pipeline = create_pipeline(config)
    defaults = expose_runtime_parameters(pipeline)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, default_commands=ENTRYPOINT,
            use_pipeline_spec_2_1=True),  # schema 2.1.0: the one KFP 2 servers read; it passes the inputs spec
        output_dir=os.path.dirname(os.path.abspath(output)), output_filename=os.path.basename(output))
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    finish_spec(job["pipelineSpec"], defaults, config, uncached=[nodes.EXAMPLE_GEN, *nodes.NEVER_CACHED])
    if storage.uses_s3(config.pipeline_root, config.serving_dir, config.data_root):
        platform = storage.apply(job["pipelineSpec"], s3_endpoint, s3_credentials)
        if platform:
            job["platformSpec"] = platform
    elif s3_endpoint:
        raise UserError("--s3-endpoint applies only when --pipeline-root, --serving-dir or --data-root is on s3://.")
    write_spec(job, output)
    return job


def finish_spec(spec: dict, defaults: Dict[str, str], config: PipelineConfig, uncached: Sequence[str]) -> None:
    """What TFX's compiler leaves out and a KFP server needs from the spec alone (it reads no PipelineJob):
    parameter defaults and descriptions, and the pipeline root. Also turns the KFP cache off for the tasks whose
    output depends on what KFP's cache key does not see: ExampleGen (the files under data_root), BaselineLookup
    (what is in service now; with constant inputs, a cached lookup would answer with run 1's baselines forever), and
    with --serving-logs the read of the request logs and its commit (what is new under the prefix)."""
    declared = spec_parameters(spec)
    for param in RUNTIME_PARAMETERS:
        declared[param.name].update(defaultValue=defaults[param.name], isOptional=True, description=param.description)
    if config.pipeline_root:
        spec["defaultPipelineRoot"] = config.pipeline_root
    tasks = spec["root"]["dag"]["tasks"]
    for task_id in uncached:
        if task_id in tasks:  # the serving logs' steps exist only with --serving-logs
            tasks[task_id]["cachingOptions"] = {}


def write_spec(job: dict, output: str) -> None:
    if output.endswith((".yaml", ".yml")):
        import yaml

        spec = job["pipelineSpec"]
        header = ["# PIPELINE DEFINITION", f"# Name: {spec['pipelineInfo']['name']}",
                  "# Compiled by pipeline/run_kubeflow.py (TFX KubeflowV2DagRunner).", "# Inputs:"]
        header += [f"#    {name}: str" for name in sorted(spec_parameters(spec))]
        documents = [spec] + ([job["platformSpec"]] if job.get("platformSpec") else [])
        text = "\n".join(header) + "\n" + yaml.safe_dump_all(documents, sort_keys=True)
    else:
        text = json.dumps(job, sort_keys=True, indent=2) + "\n"
    write_file(output, text)  # renamed into place when complete


def cmd_compile(args: argparse.Namespace) -> int:
    if not args.output.endswith((".json", ".yaml", ".yml")):
        raise UserError(f"--output {args.output}: the spec file name must end in .json, .yaml or .yml.")
    if not args.image.strip():
        raise UserError("--image must name the container image built from k8s/Dockerfile.")
    config = compile_config.kubeflow_config(args)
    try:
        job = compile_pipeline(config, args.image, args.output, args.s3_endpoint, args.s3_credentials_secret)
    except (ValueError, TypeError) as e:  # TFX's checks of the pipeline and its arguments
        raise UserError(f"the pipeline does not compile: {e}") from None
    spec = job["pipelineSpec"]
    print(f"wrote {args.output}: pipeline {spec['pipelineInfo']['name']}, {len(spec['root']['dag']['tasks'])} tasks, "
          f"image {args.image}")
    print(f"runtime parameters: {', '.join(p.name for p in RUNTIME_PARAMETERS)} "
          f"(run/schedule --param also sets {', '.join(shortcuts())})")
    if not config.pipeline_root:
        print("no --pipeline-root: runs use the KFP server's default pipeline root (or run --pipeline-root)")
    return 0
