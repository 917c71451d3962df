"""The compiled pipeline's runtime parameters, and `--param NAME=VALUE` for `run` and `schedule`.

TFX 1.16's V2 runner accepts a `RuntimeParameter` only in place of a whole exec property, so the compiled pipeline
has these (STRING) inputs, each defaulting to the value given at compile time:

    data_root       CsvExampleGen's input_base: the folder of CSV files to train on
    train_args      the Trainer's TrainArgs as JSON; "num_steps" caps training (absent: full epochs)
    trainer_config  the Trainer's custom_config as JSON: every TrainerSettings and DataSettings field
                    (components/settings/trainer.py, data.py)
    eval_config     the Evaluator's tfma.EvalConfig as JSON, with the accuracy gate

`--param` also sets single fields of the JSON ones, merged into the compiled default: train_steps, every Trainer
hyperparameter (the TrainerSettings fields with a flag) and the Evaluator's gates (EvaluatorSettings). A whole
trainer_config is checked like the Trainer reads it: a missing or unknown key is refused before anything is sent.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Sequence, Tuple

from components.settings import base as settings_lib
from components.settings.data import read_config
from components.settings.evaluator import EvaluatorSettings
from components.settings.trainer import TrainerSettings, hyperparameters
from pipeline.kubeflow.compile_config import pod_location
from pipeline.kubeflow.errors import UserError


@dataclasses.dataclass(frozen=True)
class RuntimeParam:
    name: str
    node: str  # the name of the node-id constant in pipeline/dag/pipeline.py whose exec property it replaces
    exec_property: str
    is_json: bool
    description: str


RUNTIME_PARAMETERS = (
    RuntimeParam("data_root", "EXAMPLE_GEN", "input_base", False,
                 "Folder of CSV files to train on (URI, or a path as the pipeline's pods see it), laid out as at "
                 "compile time."),
    RuntimeParam("train_args", "TRAINER", "train_args", True,
                 'TFX TrainArgs as JSON; "num_steps" caps the number of training batches (absent: full epochs).'),
    RuntimeParam("trainer_config", "TRAINER", "custom_config", True,
                 "The Trainer's custom_config as JSON, every setting of components/settings/trainer.py (epochs, "
                 "batch_size, learning_rate, ...) and of components/settings/data.py (the columns, classes and "
                 "vocabulary); a value given here replaces the whole object and must hold every key."),
    RuntimeParam("eval_config", "EVALUATOR", "eval_config", True,
                 "tfma.EvalConfig as JSON; the SparseCategoricalAccuracy threshold is the blessing gate."),
)

# The Evaluator's settings, as the (metric, threshold field) of the eval_config each one sets. accept_new_classes is
# not among them: it chooses the Evaluator's executor, compiled into the spec (compile --accept-new-classes).
EVAL_FIELDS = {"min_accuracy": ("SparseCategoricalAccuracy", "lower_bound"),
               "max_accuracy_drop": ("SparseCategoricalAccuracy", "absolute"),
               "min_macro_f1": ("MacroF1Score", "lower_bound"),
               "max_macro_f1_drop": ("MacroF1Score", "absolute")}


def shortcuts() -> Dict[str, Tuple[str, str, Any]]:
    """`--param FIELD=VALUE` fields: name -> (runtime parameter, field, (settings class, dataclass field) or None).
    Every Trainer hyperparameter (a TrainerSettings field with a flag): the columns, vocabulary and checkpoint must
    match what Transform was compiled with, so they are not offered."""
    fields = {f.name: f for f in dataclasses.fields(EvaluatorSettings)}
    return {
        "train_steps": ("train_args", "num_steps", None),
        **{f.name: ("trainer_config", f.name, (TrainerSettings, f)) for f in hyperparameters()},
        **{name: ("eval_config", gate, (EvaluatorSettings, fields[name])) for name, gate in EVAL_FIELDS.items()},
    }


def expose_runtime_parameters(pipeline) -> Dict[str, str]:
    """Replaces the exec properties named in RUNTIME_PARAMETERS by RuntimeParameters whose defaults are the values
    create_pipeline() set (the same strings the executors would have received), and returns those defaults."""
    from tfx.orchestration import data_types

    from pipeline.dag import nodes

    defaults = {}
    by_id = {c.id: c for c in pipeline.components}
    for param in RUNTIME_PARAMETERS:
        node_id = getattr(nodes, param.node)
        component = by_id[node_id]
        value = component.exec_properties.get(param.exec_property)
        if not isinstance(value, str):
            raise RuntimeError(f"{node_id}.{param.exec_property} is {type(value).__name__}, not the string "
                               f"runtime parameter {param.name!r} can stand for")
        if param.is_json:  # one line, keys sorted: readable in the KFP UI's run form, and deterministic
            value = json.dumps(json.loads(value), sort_keys=True)
        component.exec_properties[param.exec_property] = data_types.RuntimeParameter(
            name=param.name, ptype=str, default=value, description=param.description)
        defaults[param.name] = value
    return defaults


def _setting_value(text: str, target, key: str):
    """`text` as the value of a settings field (its type, its checks), or UserError."""
    cls, field = target
    try:
        return settings_lib.parse_value(cls, field, text)
    except settings_lib.SettingsError as e:
        raise UserError(f"--param {key}={text}: {str(e).removeprefix(text + ': ')}.") from None


def _key(document: dict, snake: str, camel: str) -> str:
    """The spelling of a proto JSON field a document uses (TFX writes snake_case; JSON parsers take both)."""
    return camel if camel in document and snake not in document else snake


def _set_gate(eval_config: dict, target: Tuple[str, str], value: float) -> None:
    """Sets the lower bound or the allowed drop (`target`: metric class, "lower_bound" or "absolute") of a gate."""
    metric_class, field = target
    found = False
    for spec in eval_config.get(_key(eval_config, "metrics_specs", "metricsSpecs"), []):
        for metric in spec.get("metrics", []):
            threshold = metric.get("threshold") or {}
            if metric.get(_key(metric, "class_name", "className"), "") != metric_class or not threshold:
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
        raise UserError(f"the pipeline's eval_config has no {metric_class} threshold with a {field} to set; pass a "
                        "whole eval_config instead.")


def spec_parameters(spec: dict) -> Dict[str, dict]:
    return spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})


def _wires_base_model(spec: dict) -> bool:
    """Whether the spec's Trainer receives the model in service (compiled with --warm-start)."""
    from pipeline.dag import nodes

    task = spec.get("root", {}).get("dag", {}).get("tasks", {}).get(nodes.TRAINER, {})
    return "base_model" in task.get("inputs", {}).get("artifacts", {})


def check_trainer_config(document: dict, spec: dict) -> None:
    """A trainer_config as the Trainer will read it (strictly), and warm_start only where the spec wires it."""
    try:
        trainer, _ = read_config(TrainerSettings, document)
    except settings_lib.SettingsError as e:
        raise UserError(f"--param trainer_config: {e}") from None
    # A spec compiled with --trainer-workers N runs the Trainer on Vertex AI Training, set up by the ai_platform_*
    # keys of the compiled trainer_config: a whole trainer_config without them would fail in the Trainer step.
    try:
        compiled = json.loads(spec_parameters(spec).get("trainer_config", {}).get("defaultValue") or "{}")
    except ValueError:
        compiled = {}
    missing = sorted(k for k in compiled if k.startswith(settings_lib.EXTENSION_KEY_PREFIX) and k not in document)
    if missing:
        raise UserError(f"--param trainer_config: this spec's Trainer runs on Vertex AI Training and needs the "
                        f"compiled keys {', '.join(missing)} too (or set single fields with --param FIELD=VALUE).")
    if trainer.warm_start and not _wires_base_model(spec):
        raise UserError("--param warm_start=true: this spec's Trainer is not given the model in service; compile with "
                        "--warm-start (then warm_start=false turns it off for a run).")


def resolve_parameters(spec: dict, assignments: Sequence[str]) -> Dict[str, Any]:
    """`--param NAME=VALUE` items -> runtime parameter values for a run (only the parameters given; the others keep
    the pipeline's defaults). Shortcut fields are merged into the JSON default of their parameter."""
    declared = spec_parameters(spec)
    fields = shortcuts()
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
        elif key in fields:
            param, field, target = fields[key]
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
            if key == "train_steps":
                try:
                    number = int(value)
                except ValueError:
                    raise UserError(f"--param {key}={value}: not an integer.") from None
                if number < 0:
                    raise UserError("--param train_steps must be 0 (no cap: full epochs) or positive.")
                document.pop("numSteps", None)
                document.pop("num_steps", None)
                if number:
                    document["num_steps"] = number
            elif param == "eval_config":
                _set_gate(document, field, _setting_value(value, target, key))
            else:
                document[field] = _setting_value(value, target, key)
        else:
            raise UserError(f"unknown parameter {key!r}; the pipeline's runtime parameters are "
                            f"{', '.join(sorted(declared)) or '(none)'}, and the fields "
                            f"{', '.join(fields)} set parts of them.")
    for param, document in edited.items():
        result[param] = json.dumps(document, sort_keys=True)
    if "trainer_config" in result:
        check_trainer_config(json.loads(result["trainer_config"]), spec)
    return result


def _fields_of(param: str) -> List[str]:
    return [name for name, (target, _, _) in shortcuts().items() if target == param]


def _typed_parameter(name: str, value: str, declaration: dict) -> Any:
    kind = declaration.get("parameterType", "STRING")
    if kind == "NUMBER_INTEGER":
        try:
            return int(value)
        except ValueError:
            raise UserError(f"--param {name}={value}: not an integer.") from None
    if kind == "NUMBER_DOUBLE":
        try:
            return float(value)
        except ValueError:
            raise UserError(f"--param {name}={value}: not a number.") from None
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
        return pod_location(value, "--param data_root")
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
