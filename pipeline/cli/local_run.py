"""A local run's front door: its command line as one typed plan (`plan`), in four stages, each entered once, before
anything heavy loads: the locations resolved (locations.py, with what the checkpoint decides: model_choice.py), the
inputs checked (inputs.py), the run planned (pipeline/planning/: the sequence length within the time budget), the
settings built (settings.py). A refusal at any stage is one InputError (errors.py), exit status 2."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Optional, Tuple

from components.settings.base import AUTO
from components.settings.transform import TransformSettings
from pipeline.cli import inputs, locations, settings
from pipeline.cli.errors import InputError
from pipeline.cli.model_choice import ModelChoice, model_settings
from pipeline.dag.config import PipelineConfig
from pipeline.data import assets
from pipeline.planning import sequence_length, training_cost


@dataclasses.dataclass(frozen=True)
class LocalPlan:
    """What the front door hands the local runner."""

    config: PipelineConfig
    warnings: Tuple[str, ...]  # the input checks' (also in the run summary)
    notes: Tuple[str, ...]  # what was chosen for the user: the sequence length, the schema, the unlabeled texts


def plan(args: argparse.Namespace) -> LocalPlan:
    """The plan of a local run with these flags; InputError when it cannot run. The checks across the model flags
    come first: they fail in a second, reading no data."""
    where = locations.resolve(args)
    model = model_settings(args, where.checkpoint, packaged_vocab=lambda: str(assets.ensure_checkpoint() / "vocab.txt"))
    data = inputs.check(args, where)
    max_seq_length, length_note = planned_length(args, model, data.texts, str(where.state))
    built = settings.build(args, model, data.label_key, data.label_domains, max_seq_length, data.unlabeled)
    config = PipelineConfig(
        pipeline_root=str(where.pipeline_root), data_root=data.data_root, serving_dir=str(where.serving_dir),
        **built.as_fields(), metadata_path=str(where.state / "metadata.sqlite"), dataset=where.dataset,
        input_splits=data.splits, use_spans=data.use_spans, spans_window=args.spans_window,
        schema_file=data.schema_file, schema_source=data.schema_source, schema_origin=data.schema_origin,
        frozen_edit=data.frozen_edit, text_checks_file=data.text_checks_file, train_steps=args.train_steps,
        beam_pipeline_args=where.beam_pipeline_args, enable_cache=not args.no_cache,
        infra_validator=_docker_checked(args.infra_validator), model_config_file=where.model_config_file)
    return LocalPlan(config, data.warnings, ((length_note,) if length_note else ()) + data.notes)


def planned_length(args: argparse.Namespace, model: ModelChoice, texts: sequence_length.Texts,
                   state: str) -> Tuple[Optional[int], Optional[str]]:
    """(the length --max-seq-length auto chose, or None for a given one; the note about it, or None)."""
    workload = sequence_length.Workload(
        batch_size=args.batch_size, epochs=args.epochs, pretrain_epochs=args.pretrain_epochs,
        student_layers=args.student_layers, distill_epochs=args.distill_epochs, train_steps=args.train_steps,
        precision=args.precision, truncation=args.truncation, budget_minutes=args.time_budget,
        checkpoint_config=model.config, model_size=args.model_size,
        vocab_size=args.learned_vocab_size or TransformSettings.learned_vocab_size)
    timings = f"{state}/{training_cost.TIMINGS_FILE}"
    if args.max_seq_length == AUTO:
        return sequence_length.auto_length(texts, workload, model.vocab_file, model.lower_case, model.positions,
                                           timings)
    return None, sequence_length.given_length(args.max_seq_length, texts, workload, model.vocab_file, model.lower_case,
                                              timings)


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
