"""Compile the pipeline for Kubeflow Pipelines (KFP v2), and upload, run and schedule it on a KFP cluster.

    python pipeline/run_kubeflow.py compile --output bert.json --image REGISTRY/bert-tfx-pipeline:TAG \\
        --pipeline-root gs://BUCKET/bert/root --serving-dir gs://BUCKET/bert/serving
    python pipeline/run_kubeflow.py upload --host http://localhost:8080 bert.json
    python pipeline/run_kubeflow.py run --host http://localhost:8080 --param epochs=5 bert.json
    python pipeline/run_kubeflow.py schedule --host http://localhost:8080 --cron "0 3 * * 1" \\
        --pipeline bert-text-classifier
    python pipeline/run_kubeflow.py schedule --host http://localhost:8080 --pause bert-text-classifier-retraining

`compile` builds the very pipeline run_local.py runs (`create_pipeline(config)`) and turns it into a KFP v2
pipeline spec with TFX's KubeflowV2DagRunner. It reads nothing from the pipeline root and uploads nothing: the user
code is referenced by module path and runs from the image built with k8s/Dockerfile (code under /pipeline, on
PYTHONPATH; the built-in datasets, the packaged checkpoint and the curated schemas inside it).

Runtime parameters. TFX 1.16's V2 runner accepts a `RuntimeParameter` only in place of a whole exec property, so
the compiled pipeline has these (STRING) inputs, each defaulting to the value given at compile time:

    data_root       CsvExampleGen's input_base: the folder of CSV files to train on
    train_args      the Trainer's TrainArgs as JSON; "num_steps" caps training (absent: full epochs)
    trainer_config  the Trainer's custom_config as JSON: epochs, batch_size, learning_rate, ...
    eval_config     the Evaluator's tfma.EvalConfig as JSON, with the accuracy gate

`run` and `schedule` take `--param NAME=VALUE` for those, and for single fields of the JSON ones, merged into the
compiled default: train_steps, epochs, batch_size, learning_rate, weight_decay, warmup_ratio, dropout,
early_stopping_patience, seed, min_accuracy, max_accuracy_drop (e.g. `--param epochs=5 --param min_accuracy=0.8`).

The KFP server is addressed with --host (or KF_PIPELINES_ENDPOINT); credentials, where the endpoint wants them, come
from KF_PIPELINES_TOKEN (a bearer token) or KF_PIPELINES_COOKIE (e.g. "authservice_session=...").

Exit status: 0 on success; 2 for invalid input (arguments, spec file, cron expression, parameters); 1 when the
Kubeflow Pipelines API could not be reached, or refused or failed a request.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere: TFT/TFMA need Keras 2
if __package__ in (None, ""):  # `python pipeline/run_kubeflow.py`: make the repo root importable, not pipeline/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import io
import json
import posixpath
import re
import shlex
import socket
import tempfile
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from components import text_checks
from pipeline import assets, inputs
from pipeline.config import (MODEL_SIZES, PIPELINE_NAME, POOLING_MODES, SCRATCH_LEARNING_RATE, PipelineConfig,
                             curated_schema)

DEFAULTS = PipelineConfig(pipeline_root="", data_root="", serving_dir="")

# KFP pipeline names must match this (TFX's V2 compiler checks it); the local name has underscores.
KFP_PIPELINE_NAME = PIPELINE_NAME.replace("_", "-")
PIPELINE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")

# The image (k8s/Dockerfile): WORKDIR and PYTHONPATH /pipeline, BERT_TFX_DATA_DIR=/pipeline/data.
DEFAULT_IMAGE = "ghcr.io/your-org/bert-tfx-pipeline:0.1.0"  # the placeholder the k8s/ manifests use too
IMAGE_ROOT = "/pipeline"
IMAGE_DATA_DIR = posixpath.join(IMAGE_ROOT, "data")
IMAGE_CHECKPOINT = posixpath.join(IMAGE_DATA_DIR, "checkpoints", assets.DEFAULT_CHECKPOINT)

# How pipeline/assets.py lays out the built-in datasets: one file split by hash, or train/eval/test folders.
BUILTIN_SPLITS = {"rotten_tomatoes": (), "20newsgroups": inputs.SPLIT_FOLDERS}

DEFAULT_BEAM_ARGS = "--direct_running_mode=in_memory --direct_num_workers=1"

ENV_TOKEN = "KF_PIPELINES_TOKEN"
ENV_COOKIE = "KF_PIPELINES_COOKIE"
ENV_ENDPOINT = "KF_PIPELINES_ENDPOINT"  # the variable kfp.Client itself reads
CONNECT_TIMEOUT = (10, 60)  # seconds (connect, read) of the first request, which finds out whether the host answers


class UserError(Exception):
    """Invalid input: arguments, a spec file, a cron expression, parameters (exit status 2)."""


class ApiError(Exception):
    """The Kubeflow Pipelines API could not be reached, or refused or failed a request (exit status 1)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered one


# ----------------------------------------------------------------------------------------------------------------
# Runtime parameters

@dataclasses.dataclass(frozen=True)
class RuntimeParam:
    name: str
    component: str  # class name of the TFX component whose exec property it replaces
    exec_property: str
    is_json: bool
    description: str


RUNTIME_PARAMETERS = (
    RuntimeParam("data_root", "CsvExampleGen", "input_base", False,
                 "Folder of CSV files to train on (URI, or a path as the pipeline's pods see it), laid out as at "
                 "compile time."),
    RuntimeParam("train_args", "Trainer", "train_args", True,
                 'TFX TrainArgs as JSON; "num_steps" caps the number of training batches (absent: full epochs).'),
    RuntimeParam("trainer_config", "Trainer", "custom_config", True,
                 "The Trainer's custom_config as JSON (epochs, batch_size, learning_rate, ...); a value given here "
                 "replaces the whole object."),
    RuntimeParam("eval_config", "Evaluator", "eval_config", True,
                 "tfma.EvalConfig as JSON; the SparseCategoricalAccuracy threshold is the blessing gate."),
)

# `--param FIELD=VALUE` shortcuts: (runtime parameter, field, type). Trainer hyperparameters only; the columns,
# vocabulary and checkpoint must match what Transform was compiled with, so they are not offered.
TRAINER_FIELDS = {"epochs": int, "batch_size": int, "learning_rate": float, "weight_decay": float,
                  "warmup_ratio": float, "dropout": float, "early_stopping_patience": int, "seed": int}
SHORTCUTS: Dict[str, Tuple[str, str, type]] = {
    "train_steps": ("train_args", "num_steps", int),
    **{name: ("trainer_config", name, kind) for name, kind in TRAINER_FIELDS.items()},
    "min_accuracy": ("eval_config", "lower_bound", float),
    "max_accuracy_drop": ("eval_config", "absolute", float),
}


def expose_runtime_parameters(pipeline) -> Dict[str, str]:
    """Replaces the exec properties named in RUNTIME_PARAMETERS by RuntimeParameters whose defaults are the values
    create_pipeline() set (the same strings the executors would have received), and returns those defaults."""
    from tfx.orchestration import data_types

    defaults = {}
    for param in RUNTIME_PARAMETERS:
        matches = [c for c in pipeline.components if type(c).__name__ == param.component]
        if len(matches) != 1:
            raise RuntimeError(f"expected one {param.component} in the pipeline for runtime parameter "
                               f"{param.name!r}, found {len(matches)}")
        value = matches[0].exec_properties.get(param.exec_property)
        if not isinstance(value, str):
            raise RuntimeError(f"{param.component}.{param.exec_property} is {type(value).__name__}, not the string "
                               f"runtime parameter {param.name!r} can stand for")
        if param.is_json:  # one line, keys sorted: readable in the KFP UI's run form, and deterministic
            value = json.dumps(json.loads(value), sort_keys=True)
        matches[0].exec_properties[param.exec_property] = data_types.RuntimeParameter(
            name=param.name, ptype=str, default=value, description=param.description)
        defaults[param.name] = value
    return defaults


def _location(value: str, what: str) -> str:
    """A URI (scheme://...) or an absolute POSIX path: what a pod of the pipeline can resolve."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) or value.startswith("/"):
        return value.rstrip("/") if len(value) > 1 else value
    raise UserError(f"{what} {value!r} must be a URI (gs://..., s3://...) or an absolute path as the pipeline's "
                    "pods see it (e.g. inside the image).")


def _coerce(value: str, kind: type, what: str):
    try:
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
    except ValueError:
        raise UserError(f"--param {what}={value}: not {'an integer' if kind is int else 'a number'}.") from None
    return value


def _key(document: dict, snake: str, camel: str) -> str:
    """The spelling of a proto JSON field a document uses (TFX writes snake_case; JSON parsers take both)."""
    return camel if camel in document and snake not in document else snake


def _set_accuracy_gate(eval_config: dict, field: str, value: float) -> None:
    """Sets the lower bound (min_accuracy) or the allowed drop (max_accuracy_drop) of the accuracy thresholds."""
    found = False
    for spec in eval_config.get(_key(eval_config, "metrics_specs", "metricsSpecs"), []):
        for metric in spec.get("metrics", []):
            threshold = metric.get("threshold") or {}
            if "Accuracy" not in metric.get(_key(metric, "class_name", "className"), ""):
                continue
            if field == "lower_bound":
                bound = threshold.get(_key(threshold, "value_threshold", "valueThreshold"))
                if bound is not None:
                    bound[_key(bound, "lower_bound", "lowerBound")] = value
                    found = True
            else:
                change = threshold.get(_key(threshold, "change_threshold", "changeThreshold"))
                if change is not None:
                    change["absolute"] = -abs(value)
                    found = True
    if not found:
        raise UserError(f"the pipeline's eval_config has no accuracy threshold with a {field} to set; pass a whole "
                        "eval_config instead.")


def spec_parameters(spec: dict) -> Dict[str, dict]:
    return spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})


def resolve_parameters(spec: dict, assignments: Sequence[str]) -> Dict[str, Any]:
    """`--param NAME=VALUE` items -> runtime parameter values for a run (only the parameters given; the others keep
    the pipeline's defaults). Shortcut fields are merged into the JSON default of their parameter."""
    declared = spec_parameters(spec)
    result: Dict[str, Any] = {}
    edited: Dict[str, dict] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(f"--param {item!r} is not NAME=VALUE.")
        if key in declared:
            if key in edited:
                raise UserError(f"--param {key} and fields of it ({', '.join(sorted(_fields_of(key)))}) were both "
                                "given; give one or the other.")
            result[key] = _typed_parameter(key, value, declared[key])
        elif key in SHORTCUTS:
            param, field, kind = SHORTCUTS[key]
            if param not in declared:
                raise UserError(f"--param {key}: the pipeline has no runtime parameter {param!r} to set it in.")
            if param in result:
                raise UserError(f"--param {param} and its field {key} were both given; give one or the other.")
            if param not in edited:
                try:
                    edited[param] = json.loads(declared[param].get("defaultValue") or "{}")
                except ValueError:
                    raise UserError(f"--param {key}: the default of {param!r} is not JSON; pass a whole {param}.") \
                        from None
            document = edited[param]
            number = _coerce(value, kind, key)
            if key in ("epochs", "batch_size") and number <= 0:
                raise UserError(f"--param {key} must be positive.")
            if key == "train_steps":
                if number < 0:
                    raise UserError("--param train_steps must be 0 (no cap: full epochs) or positive.")
                document.pop("numSteps", None)
                document.pop("num_steps", None)
                if number:
                    document["num_steps"] = number
            elif param == "eval_config":
                _set_accuracy_gate(document, field, number)
            else:
                document[field] = number
        else:
            raise UserError(f"unknown parameter {key!r}; the pipeline's runtime parameters are "
                            f"{', '.join(sorted(declared)) or '(none)'}, and the fields "
                            f"{', '.join(SHORTCUTS)} set parts of them.")
    for param, document in edited.items():
        result[param] = json.dumps(document, sort_keys=True)
    return result


def _fields_of(param: str) -> List[str]:
    return [name for name, (target, _, _) in SHORTCUTS.items() if target == param]


def _typed_parameter(name: str, value: str, declaration: dict) -> Any:
    kind = declaration.get("parameterType", "STRING")
    if kind == "NUMBER_INTEGER":
        return _coerce(value, int, name)
    if kind == "NUMBER_DOUBLE":
        return _coerce(value, float, name)
    if kind == "BOOLEAN":
        if value.lower() not in ("true", "false"):
            raise UserError(f"--param {name}={value}: not true or false.")
        return value.lower() == "true"
    if kind in ("LIST", "STRUCT"):
        try:
            return json.loads(value)
        except ValueError:
            raise UserError(f"--param {name}: not valid JSON.") from None
    if name == "data_root":
        return _location(value, "--param data_root")
    default = declaration.get("defaultValue")
    if isinstance(default, str) and default.startswith("{"):  # a JSON object in a STRING parameter
        try:
            parsed = json.loads(value)
        except ValueError as e:
            raise UserError(f"--param {name}: not valid JSON ({e}).") from None
        if not isinstance(parsed, dict):
            raise UserError(f"--param {name}: a JSON object is expected.")
        return json.dumps(parsed, sort_keys=True)
    return value


# ----------------------------------------------------------------------------------------------------------------
# compile

def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The PipelineConfig of the KFP pipeline. Paths are as the pipeline's pods see them (inside the image, or
    URIs); nothing is read from them here. Only the repository's copy of a curated schema is read (label names)."""
    if not PIPELINE_NAME_PATTERN.match(args.name):
        raise UserError(f"--name {args.name!r}: KFP pipeline names are lowercase letters, digits and '-', starting "
                        "with a letter or digit, at most 128 characters.")
    dataset = args.dataset
    if dataset == "custom":
        if not args.data_root:
            raise UserError("--dataset custom needs --data-root (where the pipeline's pods find the CSV files).")
        data_root = _location(args.data_root, "--data-root")
        schema_file = _location(args.schema, "--schema") if args.schema else None
        splits = args.input_splits if args.input_splits is not None else ()
    else:
        data_root = _location(args.data_root, "--data-root") if args.data_root else \
            posixpath.join(IMAGE_DATA_DIR, "datasets", dataset)
        schema_file = _location(args.schema, "--schema") if args.schema else \
            posixpath.join(IMAGE_ROOT, "schema", dataset, "schema.pbtxt")
        splits = args.input_splits if args.input_splits is not None else BUILTIN_SPLITS.get(dataset)
        if splits is None:
            raise UserError(f"the split layout of dataset {dataset!r} is not known here; pass --input-splits.")
    if splits and not {"train", "eval"} <= set(splits):
        raise UserError(f"--input-splits {','.join(splits)}: the Trainer needs a 'train' and the Evaluator an 'eval' "
                        "split.")

    # This checkout's copy of the schema (the image has the same one), for the label names and the thresholds of
    # the text checks, which are compiled into the pipeline.
    local_schema = None
    if dataset != "custom" and not args.schema:
        local_schema = curated_schema(dataset)
    elif args.schema and os.path.isfile(args.schema):
        local_schema = Path(args.schema)
    labels = tuple(args.labels or ())
    if not labels:
        if dataset != "custom" and not args.schema and local_schema is None:
            raise UserError(f"no curated schema for {dataset!r} in this checkout (schema/{dataset}/schema.pbtxt); "
                            "pass --labels.")
        if local_schema is None:
            raise UserError("pass --labels (the label values, comma-separated): the schema is not readable here, "
                            "and compiling reads no data.")
        try:
            labels = inputs.schema_label_names(str(local_schema), args.label_column) or ()
        except inputs.InputError as e:
            raise UserError(str(e)) from None
        if not labels:
            raise UserError(f"{local_schema} does not list the label values of {args.label_column!r}; pass --labels.")
    if len(set(labels)) < 2:
        raise UserError(f"a classifier needs at least 2 label values; got {', '.join(labels) or 'none'}.")

    if args.pretrained.lower() == "none":
        pretrained, vocab_dir = None, IMAGE_CHECKPOINT  # the packaged uncased WordPiece vocabulary
    else:
        pretrained = vocab_dir = _location(args.pretrained, "--pretrained")

    pipeline_root = _location(args.pipeline_root, "--pipeline-root") if args.pipeline_root else ""
    if args.serving_dir:
        serving_dir = _location(args.serving_dir, "--serving-dir")
    elif pipeline_root:
        serving_dir = posixpath.join(pipeline_root, "serving")
    else:
        raise UserError("pass --serving-dir (where blessed models are pushed, readable by TensorFlow Serving), or "
                        "--pipeline-root to push under PIPELINE_ROOT/serving.")
    try:
        beam_args = tuple(shlex.split(args.beam_args))
    except ValueError as e:
        raise UserError(f"--beam-args: {e}.") from None

    learning_rate = args.learning_rate
    if learning_rate is None:
        learning_rate = SCRATCH_LEARNING_RATE if pretrained is None else DEFAULTS.learning_rate
    return PipelineConfig(
        pipeline_root=pipeline_root, data_root=data_root, serving_dir=serving_dir, pipeline_name=args.name,
        metadata_path=None, orchestrator="kubeflow", dataset=dataset, text_key=args.text_column,
        label_key=args.label_column,
        input_splits=tuple(splits), use_spans=args.spans, label_names=labels, schema_file=schema_file,
        text_checks_file=text_checks.checks_file_for(str(local_schema)) if local_schema else None,
        vocab_file=posixpath.join(vocab_dir, "vocab.txt"), lower_case=not args.cased,
        max_seq_length=args.max_seq_length, pretrained_dir=pretrained, model_size=args.model_size,
        pooling=args.pooling, epochs=args.epochs, train_steps=args.train_steps, batch_size=args.batch_size,
        learning_rate=learning_rate, seed=args.seed, min_accuracy=args.min_accuracy,
        max_accuracy_drop=args.max_accuracy_drop, beam_pipeline_args=beam_args, enable_cache=not args.no_cache)


def compile_pipeline(config: PipelineConfig, image: str, output: str) -> dict:
    """Compiles create_pipeline(config) with KubeflowV2DagRunner and writes the spec to `output`: a PipelineJob
    as JSON, or (.yaml/.yml) the PipelineSpec as YAML, the form `kfp` itself writes. Returns the PipelineJob dict."""
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(config)
    defaults = expose_runtime_parameters(pipeline)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),  # schema 2.1.0: the one KFP 2 servers read
        output_dir=os.path.dirname(os.path.abspath(output)), output_filename=os.path.basename(output))
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    example_gens = [c.id for c in pipeline.components if type(c).__name__ == "CsvExampleGen"]
    finish_spec(job["pipelineSpec"], defaults, config, uncached=example_gens)
    write_spec(job, output)
    return job


def finish_spec(spec: dict, defaults: Dict[str, str], config: PipelineConfig, uncached: Sequence[str]) -> None:
    """What TFX's compiler leaves out and a KFP server needs from the spec alone (it reads no PipelineJob):
    parameter defaults and descriptions, and the pipeline root. Also turns the KFP cache off for ExampleGen, whose
    output depends on the files under data_root, which are not part of KFP's cache key."""
    declared = spec_parameters(spec)
    for param in RUNTIME_PARAMETERS:
        declared[param.name].update(defaultValue=defaults[param.name], isOptional=True, description=param.description)
    if config.pipeline_root:
        spec["defaultPipelineRoot"] = config.pipeline_root
    for task_id in uncached:
        spec["root"]["dag"]["tasks"][task_id]["cachingOptions"] = {}


def write_spec(job: dict, output: str) -> None:
    if output.endswith((".yaml", ".yml")):
        import yaml

        spec = job["pipelineSpec"]
        header = ["# PIPELINE DEFINITION", f"# Name: {spec['pipelineInfo']['name']}",
                  "# Compiled by pipeline/run_kubeflow.py (TFX KubeflowV2DagRunner).", "# Inputs:"]
        header += [f"#    {name}: str" for name in sorted(spec_parameters(spec))]
        text = "\n".join(header) + "\n" + yaml.safe_dump(spec, sort_keys=True)
    else:
        text = json.dumps(job, sort_keys=True, indent=2) + "\n"
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(output)}.{os.getpid()}.tmp")  # renamed into place when complete
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cmd_compile(args: argparse.Namespace) -> int:
    if not args.output.endswith((".json", ".yaml", ".yml")):
        raise UserError(f"--output {args.output}: the spec file name must end in .json, .yaml or .yml.")
    if not args.image.strip():
        raise UserError("--image must name the container image built from k8s/Dockerfile.")
    config = config_from_args(args)
    try:
        job = compile_pipeline(config, args.image, args.output)
    except (ValueError, TypeError) as e:  # TFX's checks of the pipeline and its arguments
        raise UserError(f"the pipeline does not compile: {e}") from None
    spec = job["pipelineSpec"]
    print(f"wrote {args.output}: pipeline {spec['pipelineInfo']['name']}, {len(spec['root']['dag']['tasks'])} tasks, "
          f"image {args.image}")
    print(f"runtime parameters: {', '.join(p.name for p in RUNTIME_PARAMETERS)} "
          f"(run/schedule --param also sets {', '.join(SHORTCUTS)})")
    if not config.pipeline_root:
        print("no --pipeline-root: runs use the KFP server's default pipeline root (or run --pipeline-root)")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# Spec files

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
        raise UserError(f"cannot read spec file {path}: {_one_line(e, 200)}") from None
    try:
        if path.endswith(".json"):
            document = json.loads(text)
        else:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
            document = documents[0] if documents else None
    except (ValueError, yaml.YAMLError) as e:
        raise UserError(f"{path} is not a pipeline spec: {_one_line(e, 200)}") from None
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
        raise UserError(f"{path} is not a KFP pipeline spec: {_one_line(reason, 200)}") from None
    if not spec.get("pipelineInfo", {}).get("name") or not spec.get("root", {}).get("dag", {}).get("tasks"):
        raise UserError(f"{path} is not a KFP pipeline spec (no pipeline name or no tasks).")
    return spec


def write_upload_file(spec: dict, folder: str, name: str) -> str:
    """The spec as the YAML file KFP's upload and run APIs take (kfp.Client reads only .yaml/.yml packages)."""
    import yaml

    path = os.path.join(folder, f"{re.sub(r'[^A-Za-z0-9_.-]', '-', name) or 'pipeline'}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(spec, f, sort_keys=True)
    return path


# ----------------------------------------------------------------------------------------------------------------
# The KFP API

def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _server_message(body) -> Optional[str]:
    """The error message in a KFP error response ({"error_message"|"message"|"error": ...}), if there is one."""
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(body)
    except ValueError:
        text = body.strip()
        return _one_line(text, 200) if text and "<" not in text[:1] and len(text) < 400 else None
    if isinstance(data, dict):
        for key in ("error_message", "message", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                return _one_line(data[key], 300)
    return None


def _connection_reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    text = str(reason)
    match = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if match:
        return match.group(0).strip()
    if "timed out" in text.lower():
        return "timed out"
    return type(reason).__name__


class Kfp:
    """A kfp.Client for one host and namespace, whose calls turn every failure into an ApiError of one line."""

    def __init__(self, host: str, namespace: Optional[str]):
        if not re.match(r"^https?://[^/\s]+", host):
            raise UserError(f"--host {host!r} must be the KFP API's URL, starting with http:// or https:// "
                            "(e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow "
                            "svc/ml-pipeline-ui 8080:80`).")
        self.host = host.rstrip("/")
        self.namespace = namespace or None
        with self.call(f"connecting to {self.host}"):
            self.client = _make_client(self.host, self.namespace)

    def link(self, fragment: str) -> str:
        return f"{self.host}/#/{fragment}"

    @contextlib.contextmanager
    def call(self, action: str, conflict: Optional[str] = None) -> Iterator[None]:
        """Runs kfp.Client calls: its printed links are dropped (this CLI prints its own) and its exceptions become
        an ApiError saying what was being done and what went wrong. `conflict` replaces the message of a 409."""
        import kfp_server_api
        import requests
        import urllib3

        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except kfp_server_api.ApiException as e:
            raise ApiError(self._describe(e, action, conflict), status=e.status) from None
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, ConnectionError,
                socket.gaierror, socket.timeout) as e:
            raise ApiError(f"{action}: cannot reach the Kubeflow Pipelines API at {self.host} "
                           f"({_connection_reason(e)}); check --host and that the API is reachable from here "
                           "(e.g. kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80).") from None
        except (ValueError, TimeoutError) as e:  # kfp.Client's own checks (e.g. several pipelines of one name)
            raise ApiError(f"{action}: {_one_line(e)}") from None

    def _describe(self, e, action: str, conflict: Optional[str]) -> str:
        status, detail = e.status, _server_message(e.body)
        said = f": {detail}" if detail else ""
        where = f" in namespace {self.namespace}" if self.namespace else ""
        if not status:  # no HTTP answer: TLS failure and the like
            return f"{action}: could not talk to {self.host}: {_one_line(e.reason or 'unknown error', 200)}"
        if status == 401:
            return (f"{action}: {self.host} refused the request as unauthenticated (HTTP 401{said}); set {ENV_TOKEN} "
                    f"to a bearer token, or {ENV_COOKIE} to a session cookie, that it accepts.")
        if status == 403:
            return (f"{action}: {self.host} denied access{where} (HTTP 403{said}); the credentials in use "
                    f"({ENV_TOKEN}/{ENV_COOKIE}) lack the permission, or --namespace is not one they may use.")
        if status == 409 and conflict:
            return f"{action}: {conflict} (HTTP 409{said})"
        if status == 404:
            return f"{action}: not found on {self.host}{where} (HTTP 404{said})."
        if status == 302 or 300 <= status < 400:
            return f"{action}: {self.host} redirected (HTTP {status}), probably to a login page; see {ENV_TOKEN}."
        return f"{action}: {self.host} answered HTTP {status} {e.reason or ''}".rstrip() + f"{said}."


def _make_client(host: str, namespace: Optional[str]):
    import kfp
    import kfp_server_api

    class Client(kfp.Client):
        """kfp.Client whose health check is one request with a timeout (kfp's retries 5 times, sleeping 5 s between
        tries, and then raises a TimeoutError that does not say why) and checks the answer is the KFP API's."""
        checked = False

        def get_kfp_healthz(self, sleep_duration: int = 0):
            response = self._healthz_api.healthz_service_get_healthz(
                _preload_content=False, _request_timeout=CONNECT_TIMEOUT)
            try:
                data = json.loads(response.data)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                kind = response.headers.get("Content-Type", "no JSON") if response.headers else "no JSON"
                raise ApiError(f"connecting to {host}: it answered, but not as the Kubeflow Pipelines API ({kind}; a "
                               f"login page?); check --host, and {ENV_TOKEN}/{ENV_COOKIE} if it needs credentials.")
            self.checked = True
            return kfp_server_api.V2beta1GetHealthzResponse(multi_user=data.get("multi_user"))

    # kfp.Client asks the health endpoint itself when it has no namespace; otherwise ask it here, so that a wrong
    # host or refused credentials show at once rather than in the middle of the first real request.
    client = Client(host=host, namespace=namespace or "kubeflow", existing_token=os.environ.get(ENV_TOKEN) or None,
                    cookies=os.environ.get(ENV_COOKIE) or None)
    if not client.checked:
        client.get_kfp_healthz()
    return client


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def find_pipeline(kfp: Kfp, name: str):
    """The pipeline named `name` visible in the namespace (shared ones too), or None. One of that name that the
    server lists under another namespace is an error: a new version must not go into someone else's pipeline."""
    with kfp.call(f"looking up pipeline {name!r}"):
        response = kfp.client.list_pipelines(filter=_name_filter(name), namespace=kfp.namespace, page_size=10)
    found = [p for p in (response.pipelines or []) if p.display_name == name]
    if kfp.namespace:
        elsewhere = [p for p in found if p.namespace and p.namespace != kfp.namespace]
        if elsewhere and len(elsewhere) == len(found):
            raise ApiError(f"a pipeline named {name!r} already exists in namespace {elsewhere[0].namespace}, not "
                           f"{kfp.namespace}; pass another --name.")
        found = [p for p in found if not p.namespace or p.namespace == kfp.namespace]
    if len(found) > 1:
        raise ApiError(f"several pipelines are named {name!r} ({', '.join(p.pipeline_id for p in found)}); "
                       "use --pipeline-id.")
    return found[0] if found else None


def latest_version(kfp: Kfp, pipeline_id: str):
    with kfp.call(f"listing the versions of pipeline {pipeline_id}"):
        response = kfp.client.list_pipeline_versions(pipeline_id, sort_by="created_at desc", page_size=1)
    versions = response.pipeline_versions or []
    return versions[0] if versions else None


def get_experiment(kfp: Kfp, name: str):
    with kfp.call(f"getting or creating experiment {name!r}"):
        return kfp.client.create_experiment(name, namespace=kfp.namespace)


@dataclasses.dataclass
class Source:
    """What a run or schedule runs: a spec file, or an uploaded pipeline version."""
    spec: dict
    package_path: Optional[str] = None
    pipeline_id: Optional[str] = None
    version_id: Optional[str] = None
    label: str = ""


def pipeline_source(kfp: Kfp, args: argparse.Namespace, folder: str, spec: Optional[dict]) -> Source:
    if spec is not None:  # FILE, loaded before connecting
        return Source(spec, package_path=write_upload_file(spec, folder, spec["pipelineInfo"]["name"]),
                      label=f"spec file {args.file}")
    pipeline_id = args.pipeline_id
    if args.pipeline:
        found = find_pipeline(kfp, args.pipeline)
        if found is None:
            raise ApiError(f"no pipeline named {args.pipeline!r} on {kfp.host}"
                           f"{' in namespace ' + kfp.namespace if kfp.namespace else ''}; upload it first.")
        pipeline_id = found.pipeline_id
    version_id = args.version_id
    if not version_id:
        latest = latest_version(kfp, pipeline_id)
        if latest is None:
            raise ApiError(f"pipeline {pipeline_id} has no versions.")
        version_id = latest.pipeline_version_id
    with kfp.call(f"getting version {version_id} of pipeline {pipeline_id}"):
        version = kfp.client.get_pipeline_version(pipeline_id, version_id)
    spec = version.pipeline_spec if isinstance(version.pipeline_spec, dict) else {}
    if isinstance(spec.get("pipeline_spec"), dict):  # stored together with a platform spec
        spec = spec["pipeline_spec"]
    spec.setdefault("pipelineInfo", {}).setdefault("name", args.pipeline or pipeline_id)
    return Source(spec, pipeline_id=pipeline_id, version_id=version_id,
                  label=f"pipeline {pipeline_id} version {version_id}")


def _check_source_args(args: argparse.Namespace) -> Optional[dict]:
    chosen = [x for x in (args.file, args.pipeline_id, args.pipeline) if x]
    if len(chosen) != 1:
        raise UserError("name what to run: a spec FILE, or --pipeline-id ID, or --pipeline NAME (one of them).")
    if args.version_id and not (args.pipeline_id or args.pipeline):
        raise UserError("--version-id goes with --pipeline-id or --pipeline.")
    return load_spec(args.file) if args.file else None


def _run_options(args: argparse.Namespace) -> dict:
    options = {"enable_caching": False if args.no_cache else None, "service_account": args.service_account}
    if args.pipeline_root:
        options["pipeline_root"] = _location(args.pipeline_root, "--pipeline-root")
    return options


# ----------------------------------------------------------------------------------------------------------------
# upload / run / schedule

def cmd_upload(args: argparse.Namespace) -> int:
    spec = load_spec(args.file)
    name = args.name or spec["pipelineInfo"]["name"]
    if not name.strip():
        raise UserError("--name must not be empty.")
    kfp = Kfp(args.host, args.namespace)
    with tempfile.TemporaryDirectory() as folder:
        path = write_upload_file(spec, folder, name)
        existing = find_pipeline(kfp, name)
        if existing is None:
            where = f"namespace {kfp.namespace}" if kfp.namespace else "this server"
            with kfp.call(f"uploading pipeline {name!r}",
                          conflict=f"a pipeline named {name!r} already exists outside {where} (another namespace, "
                                   "or shared) and cannot be seen or updated from here; pass another --name"):
                pipeline = kfp.client.upload_pipeline(path, pipeline_name=name, description=args.description,
                                                      namespace=kfp.namespace)
            version = latest_version(kfp, pipeline.pipeline_id)
            version_id = version.pipeline_version_id if version else None
            print(f"uploaded new pipeline {name!r}")
        else:
            digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
            version_name = args.version or f"{name}-{stamp}-{digest}"
            with kfp.call(f"uploading a new version of pipeline {name!r}",
                          conflict=f"pipeline {name!r} already has a version named {version_name!r}; pass another "
                                   "--version"):
                version = kfp.client.upload_pipeline_version(
                    path, version_name, pipeline_id=existing.pipeline_id, description=args.description)
            pipeline, version_id = existing, version.pipeline_version_id
            print(f"uploaded version {version_name!r} of pipeline {name!r}")
    print(f"pipeline id: {pipeline.pipeline_id}")
    print(f"version id:  {version_id or '(unknown)'}")
    page = f"pipelines/details/{pipeline.pipeline_id}" + (f"/version/{version_id}" if version_id else "")
    print(f"ui: {kfp.link(page)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    spec = _check_source_args(args)
    params = resolve_parameters(spec, args.param or []) if spec is not None else None
    options = _run_options(args)
    kfp = Kfp(args.host, args.namespace)
    with tempfile.TemporaryDirectory() as folder:
        source = pipeline_source(kfp, args, folder, spec)
        if params is None:
            params = resolve_parameters(source.spec, args.param or [])
        experiment = get_experiment(kfp, args.experiment)
        run_name = args.run_name or \
            f"{source.spec['pipelineInfo']['name']} {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S}"
        with kfp.call(f"starting a run of {source.label}"):
            run = kfp.client.run_pipeline(
                experiment.experiment_id, run_name, pipeline_package_path=source.package_path, params=params,
                pipeline_id=source.pipeline_id, version_id=source.version_id, **options)
    print(f"started run {run_name!r} in experiment {args.experiment!r}")
    print(f"run id: {run.run_id}")
    if args.param:
        print("parameters: " + ", ".join(args.param))
    print(f"ui: {kfp.link(f'runs/details/{run.run_id}')}")
    return 0


CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
CRON_FIELDS = (("second", 0, 59, None), ("minute", 0, 59, None), ("hour", 0, 23, None),
               ("day-of-month", 1, 31, None), ("month", 1, 12, MONTHS), ("day-of-week", 0, 6, DAYS))


def normalize_cron(expression: str) -> str:
    """A cron expression as KFP's scheduler (robfig/cron, seconds first) takes it. The usual 5 fields (minute hour
    day-of-month month day-of-week) get a leading "0" seconds field; 6 fields are checked as they are."""
    text = " ".join(expression.split())
    usage = ('use 5 fields "minute hour day-of-month month day-of-week" (e.g. "0 3 * * 1": Mondays at 03:00), '
             f"6 with seconds first, or one of {', '.join(CRON_DESCRIPTORS)}")
    if not text:
        raise UserError(f"the cron expression is empty; {usage}.")
    if text.startswith("@"):
        if text.lower() in CRON_DESCRIPTORS:
            return text.lower()
        raise UserError(f"invalid cron expression {expression!r}: unknown descriptor; {usage}.")
    fields = text.split(" ")
    if len(fields) == 5:
        fields = ["0"] + fields
    elif len(fields) != 6:
        raise UserError(f"invalid cron expression {expression!r}: {len(fields)} fields; {usage}.")
    for value, (name, low, high, names) in zip(fields, CRON_FIELDS):
        problem = _cron_field_problem(value, low, high, names, name.startswith("day"))
        if problem:
            raise UserError(f"invalid cron expression {expression!r}: the {name} field {value!r} {problem}.")
    return " ".join(fields)


def _cron_field_problem(value: str, low: int, high: int, names, question_allowed: bool) -> Optional[str]:
    for part in value.split(","):
        base, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            return f"has the step {step!r}; a step is a positive number"
        if base in ("*", "?"):
            if base == "?" and not question_allowed:
                return "uses '?', which only day-of-month and day-of-week allow"
            continue
        start, dash, end = base.partition("-")
        numbers = []
        for token in ((start, end) if dash else (start,)):
            if token.isdigit():
                number = int(token)
            elif names and token.upper() in names:
                number = names.index(token.upper()) + (1 if names is MONTHS else 0)
            else:
                return (f"has {token!r}, which is not a number{' or name' if names else ''}" if token
                        else "has an empty item")
            if not low <= number <= high:
                hint = " (0 is Sunday)" if names is DAYS and number == 7 else ""
                return f"has {number}, outside {low}-{high}{hint}"
            numbers.append(number)
        if dash and numbers[0] > numbers[1]:
            return f"has the range {base!r}, which runs backwards"
    return None


def find_recurring_run(kfp: Kfp, name_or_id: str):
    with kfp.call(f"looking up recurring run {name_or_id!r}"):
        response = kfp.client.list_recurring_runs(filter=_name_filter(name_or_id), namespace=kfp.namespace,
                                                  page_size=10)
    found = [r for r in (response.recurring_runs or []) if r.display_name == name_or_id]
    if len(found) > 1:
        raise ApiError(f"several recurring runs are named {name_or_id!r} "
                       f"({', '.join(r.recurring_run_id for r in found)}); give the id.")
    if found:
        return found[0]
    try:
        with kfp.call(f"looking up recurring run {name_or_id!r}"):
            return kfp.client.get_recurring_run(name_or_id)
    except ApiError as e:
        if e.status in (400, 404):
            raise ApiError(f"no recurring run named or with id {name_or_id!r} on {kfp.host}"
                           f"{' in namespace ' + kfp.namespace if kfp.namespace else ''}.") from None
        raise


def cmd_schedule(args: argparse.Namespace) -> int:
    if args.cron is None:
        return _manage_schedule(args)
    cron = normalize_cron(args.cron)
    spec = _check_source_args(args)
    params = resolve_parameters(spec, args.param or []) if spec is not None else None
    options = _run_options(args)
    kfp = Kfp(args.host, args.namespace)
    with tempfile.TemporaryDirectory() as folder:
        source = pipeline_source(kfp, args, folder, spec)
        if params is None:
            params = resolve_parameters(source.spec, args.param or [])
        name = args.name or f"{source.spec['pipelineInfo']['name']}-retraining"
        with kfp.call(f"looking up recurring run {name!r}"):
            response = kfp.client.list_recurring_runs(filter=_name_filter(name), namespace=kfp.namespace)
        clash = [r for r in (response.recurring_runs or []) if r.display_name == name]
        if clash:
            raise ApiError(f"a recurring run named {name!r} already exists ({clash[0].recurring_run_id}); delete it "
                           "first (--delete) or pass another --name.")
        experiment = get_experiment(kfp, args.experiment)
        with kfp.call(f"creating recurring run {name!r}"):
            job = kfp.client.create_recurring_run(
                experiment.experiment_id, name, description=args.description, cron_expression=cron,
                max_concurrency=1, no_catchup=True, params=params, pipeline_package_path=source.package_path,
                pipeline_id=source.pipeline_id, version_id=source.version_id, enabled=not args.paused, **options)
    print(f"created recurring run {name!r} ({'paused' if args.paused else 'enabled'}): cron {cron!r} "
          "(seconds first), at most one run at a time, no catch-up of missed runs")
    print(f"recurring run id: {job.recurring_run_id}")
    if args.param:
        print("parameters: " + ", ".join(args.param))
    print(f"ui: {kfp.link(f'recurringrun/details/{job.recurring_run_id}')}")
    return 0


def _manage_schedule(args: argparse.Namespace) -> int:
    action, target = next((a, getattr(args, a)) for a in ("pause", "resume", "delete") if getattr(args, a))
    extra = [flag for flag, value in (("FILE", args.file), ("--pipeline-id", args.pipeline_id),
                                      ("--pipeline", args.pipeline), ("--param", args.param)) if value]
    if extra:
        raise UserError(f"--{action} takes only the recurring run's name or id; drop {', '.join(extra)}.")
    kfp = Kfp(args.host, args.namespace)
    job = find_recurring_run(kfp, target)
    verb = {"pause": "pausing", "resume": "resuming", "delete": "deleting"}[action]
    with kfp.call(f"{verb} recurring run {job.display_name!r} ({job.recurring_run_id})"):
        if action == "pause":
            kfp.client.disable_recurring_run(job.recurring_run_id)
        elif action == "resume":
            kfp.client.enable_recurring_run(job.recurring_run_id)
        else:
            kfp.client.delete_recurring_run(job.recurring_run_id)
    done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[action]
    print(f"{done} recurring run {job.display_name!r} ({job.recurring_run_id})")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# Command line

def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def _csv_list(value: str) -> Tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults that say something (not None/False, and not already in the help text)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


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
    p.add_argument("--experiment", default=KFP_PIPELINE_NAME, help="experiment to file runs under (created if new)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="runtime parameter (data_root, train_args, trainer_config, eval_config) or one field of one "
                        f"({', '.join(SHORTCUTS)}); repeatable")
    p.add_argument("--pipeline-root", help="pipeline root of the runs (default: the spec's, else the server's)")
    p.add_argument("--no-cache", action="store_true", help="re-run every step instead of reusing cached outputs")
    p.add_argument("--service-account", help="Kubernetes service account the steps run as")


def build_parser() -> argparse.ArgumentParser:
    fmt = _HelpFormatter
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
                                   "nothing is read from or written to them now. The data/training values below "
                                   "become the defaults of the runtime parameters.")
    c.add_argument("--output", required=True, help="spec file to write (.json, .yaml or .yml)")
    c.add_argument("--image", default=DEFAULT_IMAGE, help="container image built from k8s/Dockerfile that every step "
                                                          "runs in")
    c.add_argument("--name", default=KFP_PIPELINE_NAME, help="pipeline name (lowercase letters, digits, '-')")
    c.add_argument("--pipeline-root", help="where the runs' artifacts go (gs://..., s3://...); default: the KFP "
                                           "server's default pipeline root")
    c.add_argument("--serving-dir", help="where blessed models are pushed, as SERVING_DIR/MODEL_NAME/VERSION/ "
                                         "(default: PIPELINE_ROOT/serving)")
    c.add_argument("--beam-args", default=DEFAULT_BEAM_ARGS,
                   help='Beam pipeline arguments of the data steps, one string: --beam-args="--runner=... ..."')
    c.add_argument("--no-cache", action="store_true", help="compile with KFP's step cache off")
    c.add_argument("--verbose", action="store_true", help="show TFX/TensorFlow logs")
    data = c.add_argument_group("data")
    data.add_argument("--dataset", choices=assets.BUILTIN_DATASETS + ("custom",), default="rotten_tomatoes",
                      help="built-in dataset (its copy in the image), or custom with --data-root")
    data.add_argument("--data-root", help="default of runtime parameter data_root: the folder of CSV files "
                                          "(default for built-ins: /pipeline/data/datasets/DATASET in the image)")
    data.add_argument("--input-splits", type=_csv_list, metavar="SPLITS",
                      help="sub-folders that are already splits, e.g. train,eval,test; '' for CSV files split "
                           "80/10/10 by hash (default: the built-in dataset's layout; custom: '')")
    data.add_argument("--spans", action="store_true",
                      help="data_root holds span-N/ folders (new data arriving over time), each laid out as above: "
                           "each run ingests the newest span (a rolling window of spans, run_local.py "
                           "--spans-window, needs a resolver TFX's Kubeflow V2 compiler does not support)")
    data.add_argument("--text-column", default=DEFAULTS.text_key, help="CSV column holding the text")
    data.add_argument("--label-column", default=DEFAULTS.label_key, help="CSV column holding the class label")
    data.add_argument("--schema", help="curated schema.pbtxt the pipeline validates against (default for built-ins: "
                                       "/pipeline/schema/DATASET/schema.pbtxt in the image; read here too, for the "
                                       "label values, when it exists on this machine)")
    data.add_argument("--labels", type=_csv_list, help="the label values, comma-separated, in the schema's order "
                                                       "(needed when the schema cannot be read here)")
    model = c.add_argument_group("model")
    model.add_argument("--pretrained", default=IMAGE_CHECKPOINT,
                       help="BERT checkpoint folder in the image (or a URI) to fine-tune; 'none' trains a "
                            "--model-size encoder from scratch with the packaged vocabulary")
    model.add_argument("--cased", action="store_true", help="the checkpoint's vocabulary is cased (no lower-casing)")
    model.add_argument("--model-size", choices=MODEL_SIZES, default=DEFAULTS.model_size,
                       help="encoder preset when training from scratch")
    model.add_argument("--pooling", choices=POOLING_MODES, default=DEFAULTS.pooling,
                       help="classification head on [CLS] or the mean over tokens")
    model.add_argument("--max-seq-length", type=_positive, default=DEFAULTS.max_seq_length,
                       help="WordPiece tokens per text incl. [CLS]/[SEP]")
    train = c.add_argument_group("training (defaults of the runtime parameters)")
    train.add_argument("--epochs", type=_positive, default=DEFAULTS.epochs, help="passes over the training split")
    train.add_argument("--train-steps", type=_positive, help="stop after this many batches")
    train.add_argument("--batch-size", type=_positive, default=DEFAULTS.batch_size, help="examples per batch")
    train.add_argument("--learning-rate", type=float,
                       help=f"peak AdamW learning rate (default {DEFAULTS.learning_rate:g} fine-tuning a checkpoint, "
                            f"{SCRATCH_LEARNING_RATE:g} with --pretrained none)")
    train.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed of training")
    train.add_argument("--min-accuracy", type=float, default=DEFAULTS.min_accuracy,
                       help="eval accuracy a model needs to be blessed")
    train.add_argument("--max-accuracy-drop", type=float, default=DEFAULTS.max_accuracy_drop,
                       help="how far below the model in service a new model's accuracy may be")

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
    command = {"compile": cmd_compile, "upload": cmd_upload, "run": cmd_run, "schedule": cmd_schedule}[args.command]
    try:
        return command(args)
    except UserError as e:
        print(f"error: {_one_line(e, 1000)}", file=sys.stderr)
        return 2
    except ApiError as e:
        print(f"error: {_one_line(e, 1000)}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug, not a user error: one line unless --verbose asks for more
        if args.verbose:
            raise
        print(f"error: unexpected {type(e).__name__}: {_one_line(e, 500)} (--verbose shows the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
