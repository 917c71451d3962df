"""Spec files: what `compile` wrote (a PipelineJob as JSON, or a PipelineSpec as YAML), read back and checked, and
the YAML file KFP's upload and run APIs take. A spec may carry a Kubernetes platform spec (the S3 credentials' secret,
pipeline/kubeflow/storage.py): the second document of the YAML file, as KFP's own compiler writes it, or the
PipelineJob's `platformSpec`."""

from __future__ import annotations

import json
import os
import re

from pipeline.kubeflow.errors import UserError, one_line
from pipeline.kubeflow.parameters import spec_parameters


def load_spec(path: str) -> dict:
    """The PipelineSpec dict of a spec file: compile's JSON PipelineJob, or a (YAML or JSON) PipelineSpec."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    if not os.path.isfile(path):
        raise UserError(f"spec file {path} does not exist." if not os.path.exists(path) else f"{path} is not a file.")
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, ValueError) as e:  # unreadable, or not UTF-8 text
        raise UserError(f"cannot read spec file {path}: {one_line(e, 200)}") from None
    try:
        if path.endswith(".json"):
            document = json.loads(text)
        else:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
            document = documents[0] if documents else None
    except (ValueError, yaml.YAMLError) as e:
        raise UserError(f"{path} is not a pipeline spec: {one_line(e, 200)}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path} is not a pipeline spec (no JSON/YAML object in it).")
    if "pipelineSpec" in document:  # a PipelineJob, as compile writes it
        spec = document["pipelineSpec"]
        if not isinstance(spec, dict):
            raise UserError(f"{path} is not a pipeline spec (its pipelineSpec is not an object).")
        runtime = document.get("runtimeConfig", {})
        for name, value in runtime.get("parameterValues", {}).items():
            spec_parameters(spec).get(name, {}).setdefault("defaultValue", value)
        if runtime.get("gcsOutputDirectory"):
            spec.setdefault("defaultPipelineRoot", runtime["gcsOutputDirectory"])
    else:
        spec = document
    try:
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as e:
        reason = " ".join(str(e).split()).split(" Available Fields")[0]
        raise UserError(f"{path} is not a KFP pipeline spec: {one_line(reason, 200)}") from None
    if not spec.get("pipelineInfo", {}).get("name") or not spec.get("root", {}).get("dag", {}).get("tasks"):
        raise UserError(f"{path} is not a KFP pipeline spec (no pipeline name or no tasks).")
    return spec


def load_platform_spec(path: str):
    """The platform spec a spec file carries (a dict with `platforms`), or None. The file was read by load_spec."""
    import yaml

    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        return json.loads(text).get("platformSpec")
    documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    return next((d for d in documents[1:] if "platforms" in d), None)


def write_upload_file(spec: dict, folder: str, name: str, platform=None) -> str:
    """The spec as the YAML file KFP's upload and run APIs take (kfp.Client reads only .yaml/.yml packages): the
    PipelineSpec, then the platform spec as a second document when there is one (what the backend's
    template/v2_template.go reads)."""
    import yaml

    path = os.path.join(folder, f"{re.sub(r'[^A-Za-z0-9_.-]', '-', name) or 'pipeline'}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump_all([spec] + ([platform] if platform else []), f, sort_keys=True)
    return path
