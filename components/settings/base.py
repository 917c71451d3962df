"""The settings contract: each component's settings are one frozen dataclass, and this is how they travel.

A settings class (TransformSettings, TrainerSettings and PretrainerSettings, which share EncoderTrainingSettings,
and EvaluatorSettings, one file each beside this one) declares each setting once, with its default and, for the ones
a user sets, its command-line flag and help text (`setting(...)`). From that one declaration:
- the component's `custom_config` is the dataclass serialized (`to_custom_config`), and reading it back
  (`from_custom_config`) is strict: a missing or unknown key, or a value of the wrong type, is an error naming the key
  and the component, never a silent default (a Kubeflow user editing the `trainer_config` runtime parameter must not
  get a model trained from scratch because one key was left out);
- the runners' flags are generated (`add_flags`), so both runners offer every setting with the same default.

Why not pydantic 2 (pinned here as a dependency of TFX's): its strict mode would do the type checks below, but most
of this file is what it does not do (the argparse flags, their help and defaults, 'auto', the derived-setting
documentation, and refusals worded for the command line and the Kubeflow parameter), and frozen stdlib dataclasses
keep the settings importable in every Beam and Kubeflow worker without another library's version rules.

No TensorFlow here: the runners import this to build their command lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Type, TypeVar

# An extra key the pipeline adds to custom_config: a digest of the code under components/, so TFX's cache is invalidated
# when the code changes (pipeline/dag/pipeline.py). Not a setting; allowed, and ignored, when reading a custom_config
# back.
CODE_VERSION_KEY = "code_version"
# Keys TFX's Google Cloud AI Platform (Vertex AI Training) Trainer reads from the Trainer's custom_config (the worker
# pools, region...), which its training job hands on to run_fn with the rest: allowed, and ignored, when reading back.
EXTENSION_KEY_PREFIX = "ai_platform_"

S = TypeVar("S")


class SettingsError(ValueError):
    """A custom_config that does not match its settings class; the message names the component and the keys."""


AUTO = "auto"  # the flag value of a setting with auto=True: the front door chooses it from the data


def setting(default: Any, help: str = "", *, flag: Optional[str] = None, choices: Sequence[Any] = (),
            derived: str = "", positive: bool = False, unit_interval: bool = False, auto: bool = False,
            default_by: Optional[Callable[[Any], Any]] = None):
    """A dataclass field of a settings class.

    flag: the command-line flag both runners offer for it (None: no flag of its own). derived: for a setting without
    its own flag, what the runners derive it from (documentation, and a test checks every setting is either a flag or
    derived). positive/unit_interval: checks of the value. auto: the flag also takes 'auto' (and defaults to it), for
    the runner to choose from the data. default_by: a default that follows from the other settings, a named function
    of the instance declared beside the field: the field's default is then None, which the instance replaces with
    `default_by(instance)` when it is built (a custom_config always holds the value, never null)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "flag": flag or "", "choices": tuple(choices), "derived": derived, "positive": positive,
        "unit_interval": unit_interval, "auto": auto, "default_by": default_by})


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag", "")


def component_name(cls: type) -> str:
    return getattr(cls, "COMPONENT", cls.__name__)


def _type_of(cls: type, field: dataclasses.Field):
    hints = typing.get_type_hints(cls)
    kind = hints[field.name]
    optional = False
    if typing.get_origin(kind) is typing.Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional, kind = True, args[0]
    return kind, optional


def check_value(cls: type, field: dataclasses.Field, value: Any) -> Any:
    """`value` as the field's type (an int for a float field becomes a float), or SettingsError."""
    kind, optional = _type_of(cls, field)
    where = f"{component_name(cls)} setting {field.name!r}"
    if value is None:
        if optional and not field.metadata.get("default_by"):
            return None
        raise SettingsError(f"{where} must not be null.")
    nested = typing.get_origin(kind) is tuple and typing.get_origin(typing.get_args(kind)[0]) is tuple
    if nested:  # Tuple[Tuple[str, ...], ...]: a JSON list of lists of strings
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v) for v in value)
        value = tuple(tuple(v) for v in value) if ok else value
        kind = tuple
    elif typing.get_origin(kind) is tuple:  # Tuple[str, ...]: a JSON list of strings
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
        kind = tuple
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - a settings class with an unsupported type is a programming error
        raise TypeError(f"{where}: unsupported type {kind}")
    if not ok:
        name = ("a list of lists of strings" if nested else "a list of strings") if kind is tuple else kind.__name__
        raise SettingsError(f"{where} must be {name}{' or null' if optional else ''}, not {value!r}.")
    meta = field.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise SettingsError(f"{where} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}.")
    if meta.get("positive") and value <= 0:
        raise SettingsError(f"{where} must be positive; got {value!r}.")
    if meta.get("unit_interval") and not 0.0 <= value <= 1.0:
        raise SettingsError(f"{where} must be between 0 and 1; got {value!r}.")
    return value


def validate(settings: Any) -> None:
    """Fills the defaults that follow from other settings (`default_by`), then checks every field of a settings
    instance (call from __post_init__)."""
    for field in dataclasses.fields(settings):
        if getattr(settings, field.name) is None and field.metadata.get("default_by"):
            object.__setattr__(settings, field.name, field.metadata["default_by"](settings))
    for field in dataclasses.fields(settings):
        value = check_value(type(settings), field, getattr(settings, field.name))
        object.__setattr__(settings, field.name, value)


def to_custom_config(settings: Any, code_version: Optional[str] = None) -> Dict[str, Any]:
    """The settings as a JSON-able dict (every field, none left to a default), plus the code version when given."""
    config = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}
    config = {k: [list(x) if isinstance(x, tuple) else x for x in v] if isinstance(v, tuple) else v
              for k, v in config.items()}
    if code_version is not None:
        config[CODE_VERSION_KEY] = code_version
    return config


def from_custom_config(cls: Type[S], config: Optional[Mapping[str, Any]], others: Sequence[type] = ()) -> S:
    """The settings a custom_config holds; every field must be there, and nothing else (but the fields of the `others`
    settings classes read from the same object, the code version and the Vertex AI Trainer's ai_platform_* keys)."""
    name = component_name(cls)
    if not isinstance(config, Mapping):
        raise SettingsError(f"the {name} custom_config must be a JSON object with the keys "
                            f"{', '.join(f.name for f in dataclasses.fields(cls))}; got {type(config).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    beside = {f.name for other in others for f in dataclasses.fields(other)}
    missing = [k for k in fields if k not in config]
    unknown = sorted(k for k in config if k not in fields and k not in beside and k != CODE_VERSION_KEY
                     and not k.startswith(EXTENSION_KEY_PREFIX))
    problems = []
    if missing:
        problems.append(f"missing key(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}")
    if problems:
        raise SettingsError(f"the {name} custom_config has {' and '.join(problems)}; it must hold exactly the "
                            f"{name} settings ({', '.join(fields)}).")
    return cls(**{k: check_value(cls, f, config[k]) for k, f in fields.items()})


class CustomConfigMixin:
    """`to_custom_config()` and `from_custom_config()` as methods of a settings dataclass (and so of its subclasses)."""

    def to_custom_config(self, code_version: Optional[str] = None) -> Dict[str, Any]:
        return to_custom_config(self, code_version)

    @classmethod
    def from_custom_config(cls: Type[S], config: Optional[Mapping[str, Any]]) -> S:
        return from_custom_config(cls, config)


def flag_fields(cls: type):
    return [f for f in dataclasses.fields(cls) if flag_of(f)]


def declared_fields(cls: type):
    """The fields `cls` declares itself, not those it inherits (a class extending shared settings offers only
    these flags of its own: the shared ones are its parent's flags, offered once)."""
    own = vars(cls).get("__annotations__", {})
    return [f for f in dataclasses.fields(cls) if f.name in own]


def parse_value(cls: type, field: dataclasses.Field, text: str) -> Any:
    """A setting's value from its text on a command line (true/false for a bool), checked; or SettingsError."""
    kind, _ = _type_of(cls, field)
    if field.metadata.get("auto") and text == AUTO:
        return AUTO
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "yes", "no", "1", "0"):
            raise SettingsError(f"{text!r} is not true or false")
        value = lowered in ("true", "yes", "1")
    elif kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            raise SettingsError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    else:
        value = text
    try:
        return check_value(cls, field, value)
    except SettingsError as e:
        if field.metadata.get("positive"):
            raise SettingsError(f"{text} is not a positive {'integer' if kind is int else 'number'}") from None
        raise SettingsError(f"{text}: must {str(e).split(' must ', 1)[-1].rstrip('.')}") from None


def _converter(cls: type, field: dataclasses.Field):
    kind, _ = _type_of(cls, field)

    def convert(text: str):
        try:
            return parse_value(cls, field, text)
        except SettingsError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def add_flags(group, cls: type, names: Optional[Sequence[str]] = None,
              defaults: Optional[Mapping[str, Any]] = None) -> None:
    """Adds one flag per setting of `cls` that has one (only `names`, when given). Its default is the dataclass
    default (or `defaults[name]`: None for a setting whose default the front door chooses from the data or the
    checkpoint); the value lands in args.<field name>."""
    defaults = defaults or {}
    for field in flag_fields(cls):
        if names is not None and field.name not in names:
            continue
        kind, _ = _type_of(cls, field)
        default = defaults.get(field.name, AUTO if field.metadata.get("auto") else field.default)
        help_text = field.metadata["help"].replace("%", "%%")  # argparse formats help with %
        if kind is bool and default is False:
            group.add_argument(flag_of(field), dest=field.name, action="store_true", help=help_text)
            continue
        group.add_argument(flag_of(field), dest=field.name, type=_converter(cls, field), default=default,
                           choices=field.metadata["choices"] or None, help=help_text,
                           metavar=None if field.metadata["choices"] else field.name.upper())


def from_args(cls: Type[S], args: argparse.Namespace, **given) -> S:
    """The settings from parsed flags (fields without a flag, or overridden, come from `given`)."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in given:
            values[field.name] = given[field.name]
        elif flag_of(field) and getattr(args, field.name, None) not in (None, AUTO):
            values[field.name] = getattr(args, field.name)
    return cls(**values)


__all__ = ["CODE_VERSION_KEY", "CustomConfigMixin", "SettingsError", "setting", "validate", "to_custom_config",
           "from_custom_config", "add_flags", "from_args", "flag_fields", "declared_fields", "flag_of", "check_value",
           "parse_value", "component_name"]
