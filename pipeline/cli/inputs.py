"""The second stage of a local run's front door: the input data checked before any TFX component starts (`check`).

Everything a user can get wrong about the data files is caught here with one clear sentence (errors.InputError): the
files are read and checked as CsvExampleGen reads them (components/ingestion/), the labels against the schema
(curated, given or frozen), and what the run needs is derived from them: the splits, each label column's classes, the
texts the sequence length is planned from. A data root or schema on an object store is read from a local copy here; the
pipeline's steps read the store.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import posixpath
from pathlib import Path
from typing import Optional, Tuple, Union

from components.ingestion import csv_checks, csv_files
from components.runtime import storage
from components.validation import frozen_files, schema_file, text_checks
from pipeline.cli import labels
from pipeline.cli.errors import InputError, as_given, as_input_errors
from pipeline.cli.locations import REMOTE_COPIES, Locations, mirror
from pipeline.data import assets, datasets, subsets
from pipeline.planning.sequence_length import Texts


@dataclasses.dataclass(frozen=True)
class CheckedData:
    """What the input checks found, and what the run reads."""

    data_root: str  # as ExampleGen reads it: the data root (a store's URI), or the --max-examples subset
    name: str  # the run's name for the default folders
    splits: Tuple[str, ...]  # the data's own split folders, or () for files split by hash
    use_spans: bool
    label_key: str  # --label-column, or the built-in dataset's columns
    label_domains: Tuple[Tuple[str, ...], ...]  # each label column's classes
    schema_file: Optional[str]  # what ImportSchemaGen imports (a snapshot), or None (curated by the run)
    schema_origin: Optional[str]  # the schema as the user knows it
    schema_source: str  # "--schema", "curated", "frozen" or "none" (PipelineConfig.schema_source)
    frozen_edit: str
    text_checks_file: Optional[str]
    texts: Texts  # the training texts, for the plan
    unlabeled: dict  # the Pretrainer's --unlabeled-data settings ({}: none)
    warnings: Tuple[str, ...]
    notes: Tuple[str, ...]


def check(args: argparse.Namespace, where: Locations) -> CheckedData:
    """Reads and checks the data the run ingests (the newest span's, with spans); InputError for anything the
    pipeline could not use."""
    data_root = where.data_root
    if where.dataset != "custom":
        try:
            data_root = assets.ensure_dataset(where.dataset)
        except assets.AssetError as e:
            raise InputError(str(e)) from None
    label_key = labels.label_key_of(args, where.dataset)
    text_key = args.text_key
    # The checks read the CSV files here; ExampleGen reads the store itself.
    readable = mirror(data_root, "--data-root", REMOTE_COPIES) if storage.is_uri(data_root) else data_root
    with as_input_errors(readable, data_root):
        span_folders = csv_files.spans(readable)
        newest = span_folders[-1][1] if span_folders else readable  # the span this run ingests
        splits = csv_files.detect_splits(newest)
        origin, source = _schema(args, where)
        schema = _schema_copy(origin) if origin and storage.is_uri(origin) else origin  # read here
        label_plan = labels.plan(schema, label_key)
        required = schema_file.schema_requires_text(schema, text_key) if schema else True
        warnings = csv_checks.check_input(newest, splits, text_key, label_key, label_plan.check_domains,
                                          origin or "", text_required=required,
                                          missing_allowed=label_plan.missing_allowed)
        warnings = [as_given(w, readable, data_root) for w in warnings]
        if span_folders and args.max_examples:
            raise InputError("--max-examples cannot be combined with span folders; subset the spans instead.")
        trained = newest
        if args.max_examples:
            data_root = trained = subsets.subset(readable, splits, args.max_examples, text_key, label_key,
                                                 assets.DATA_DIR / "subsets")
        checks_file = text_checks_for(schema)
        label_domains = labels.domains(label_plan, newest, splits, text_key, label_key)
        texts = _texts(trained, splits, text_key, label_key)
    notes = []
    if source == "none":
        notes.append(f"no schema yet: this run checks the data against the schema inferred from it, and once the data "
                     f"passes, freezes it to {frozen_files.frozen_schema_file(str(where.pipeline_root))}, which later "
                     "runs check against")
    elif source == "frozen":
        notes.append(f"schema: {origin} (frozen by this pipeline's first accepted run)")
    unlabeled = {}
    if args.unlabeled_data is not None:
        if len(csv_files.text_columns(text_key)) > 1:
            raise InputError(f"--unlabeled-data takes texts of one column, but --text-column {text_key!r} names a "
                             "pair: the masked-LM stage reads the training split's pairs; leave --unlabeled-data out.")
        folder = args.unlabeled_data if storage.is_uri(args.unlabeled_data) else args.unlabeled_data.resolve()
        unlabeled, note = _unlabeled(folder, text_key)
        notes.append(note)
    return CheckedData(
        str(data_root), where.name, splits, bool(span_folders), label_key, label_domains,
        # A curated schema is imported (a snapshot); a frozen one is published by the pipeline's SchemaCurator, which
        # keeps the cache across the freeze.
        schema_file=_snapshot(schema, where.pipeline_root) if source in ("--schema", "curated") else None,
        schema_origin=origin, schema_source=source,
        frozen_edit=frozen_files.frozen_edit(str(where.pipeline_root)) if source == "frozen" else "",
        text_checks_file=checks_file, texts=texts, unlabeled=unlabeled, warnings=tuple(warnings), notes=tuple(notes))


def _schema(args: argparse.Namespace, where: Locations) -> Tuple[Optional[str], str]:
    """(schema file, where it comes from): --schema, the built-in dataset's curated schema, the schema the pipeline
    froze on its first accepted run, or none yet (the run curates SchemaGen's and freezes it once accepted)."""
    if args.schema is not None:
        if not storage.exists(args.schema) or storage.is_dir(args.schema):
            raise InputError(f"schema file {args.schema} does not exist.", "NO_SCHEMA", path=str(args.schema))
        return (str(args.schema) if storage.is_uri(args.schema) else str(Path(args.schema).resolve())), "--schema"
    if datasets.curated_schema(where.dataset):
        return str(datasets.curated_schema(where.dataset)), "curated"
    frozen = frozen_files.frozen_schema_file(str(where.pipeline_root))
    if storage.exists(frozen):
        return frozen, "frozen"
    return None, "none"


def _schema_copy(schema_uri: str) -> str:
    """A local copy of a schema on an object store, with the text_checks.toml beside it when there is one."""
    copy = mirror(schema_uri, "--schema", REMOTE_COPIES)
    checks = storage.read_bytes(posixpath.join(posixpath.dirname(schema_uri), text_checks.CHECKS_FILE))
    if checks is not None:
        (copy.parent / text_checks.CHECKS_FILE).write_bytes(checks)
    return str(copy)


def text_checks_for(schema: Optional[str]) -> Optional[str]:
    """The text_checks.toml beside a (local) schema, checked now: its mistakes are input errors."""
    checks_file = text_checks.checks_file_for(schema) if schema else None
    try:
        text_checks.load_checks(checks_file)
    except ValueError as e:
        raise InputError(str(e), "INVALID_TEXT_CHECKS", path=str(checks_file)) from None
    return checks_file


def _texts(root: Path, splits, text_key: str, label_key: str) -> Texts:
    """The training texts (a pair's as a tuple; all rows when split by hash) and the eval/ folder's number of texts."""
    count = len(csv_files.text_columns(text_key))
    rows = [row[0] if count == 1 else tuple(row[:count]) for path in csv_files.training_files(root, splits)
            for row in csv_files.read_rows(path, text_key, label_key)]
    evaluated = sum(len(csv_files.read_rows(path, text_key, label_key))
                    for path in csv_files.split_files(root, splits).get("eval", []))
    return Texts(rows, bool(splits), evaluated)


def _unlabeled(folder, text_key: str):
    """--unlabeled-data's settings (location, digest, the newest request-log file), read once here, and a line saying
    so."""
    from components.module_files import unlabeled

    try:
        count, digest, until = unlabeled.check(str(folder), text_key)
    except unlabeled.UnlabeledDataError as e:
        raise InputError(str(e)) from None
    source = f"the request log up to {until}" if until else str(folder)
    return {"unlabeled_data": str(folder), "unlabeled_digest": digest, "unlabeled_until": until}, \
        f"unlabeled data: {count} texts from {source}"


def _snapshot(schema: str, pipeline_root: Union[Path, str]) -> str:
    """A copy of `schema` named by its content, under the pipeline root, for ImportSchemaGen: TFX's cache keys the
    import on the file's path, so an edited schema imported from the same path would be served from the cache."""
    data = Path(schema).read_bytes()
    target = storage.join(pipeline_root, "imported_schemas", hashlib.sha256(data).hexdigest()[:16], "schema.pbtxt")
    if not storage.exists(target):
        storage.write_file(target, data)
    return target
