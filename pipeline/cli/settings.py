"""The last stage of the front door, for both runners: the components' settings from the flags, and the checks across
them (InputError), once what the data, the checkpoint and the plan decide is known."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Optional, Sequence

from components.ingestion import csv_files
from components.settings import base as settings_lib
from components.settings.data import DataSettings
from components.settings.distillation import DistillerSettings
from components.settings.evaluator import EvaluatorSettings
from components.settings.pretraining import PretrainerSettings
from components.settings.serving_loop import ServingLoopSettings
from components.settings.trainer import TrainerSettings
from components.settings.transform import TransformSettings
from components.settings.unlabeled import check_readers
from pipeline.cli import labels
from pipeline.cli.errors import InputError, as_input_errors
from pipeline.cli.flags import PRETRAINER_FLAGS
from pipeline.cli.model_choice import ModelChoice, check_student


@dataclasses.dataclass(frozen=True)
class ComponentSettings:
    """Every component's settings, as PipelineConfig composes them (its fields of the same names)."""

    data: DataSettings
    transform: TransformSettings
    trainer: TrainerSettings
    evaluator: EvaluatorSettings
    pretrainer: PretrainerSettings
    distiller: DistillerSettings
    serving: ServingLoopSettings

    def as_fields(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def build(args: argparse.Namespace, model: ModelChoice, label_key: str, label_domains: Sequence[Sequence[str]],
          max_seq_length: Optional[int] = None, unlabeled: Optional[dict] = None) -> ComponentSettings:
    """The settings from the flags, the `ModelChoice`, the label columns (labels.label_key_of) and each one's classes,
    the length the plan chose for --max-seq-length auto, and the Pretrainer's --unlabeled-data settings."""
    chosen = {"max_seq_length": max_seq_length} if max_seq_length is not None else {}
    unlabeled = unlabeled or {}
    with as_input_errors():
        columns = csv_files.label_columns(label_key)
    classes = labels.settings_for(columns, label_domains)
    try:
        data = settings_lib.from_args(DataSettings, args, label_key=label_key, vocab_mode=model.vocab_mode,
                                      vocab_file=model.vocab_file, lower_case=model.lower_case, **classes)
        transform = settings_lib.from_args(TransformSettings, args, **chosen)
        trainer = settings_lib.from_args(TrainerSettings, args, pretrained_dir=model.pretrained_dir)
        trainer.task_weights_of(data.label_key)
        evaluator = settings_lib.from_args(EvaluatorSettings, args)
        pretrainer = PretrainerSettings.derived_from(
            trainer, **{f.name: getattr(args, f.name) for f in PRETRAINER_FLAGS}, **unlabeled)
        distiller = settings_lib.from_args(DistillerSettings, args, **(unlabeled if args.distill_unlabeled else {}))
        check_readers(bool(unlabeled), pretrainer.enabled, distiller.distill_unlabeled, distiller.enabled)
    except settings_lib.SettingsError as e:
        raise InputError(str(e)) from None
    if pretrainer.enabled and trainer.warm_start:
        raise InputError("--warm-start and --pretrain-epochs exclude each other: a warm start continues from the model "
                         "in service, whose encoder was already adapted; pass one of them.")
    if pretrainer.enabled:
        trainer = dataclasses.replace(trainer, adapted_encoder=True)
    check_student(distiller.student_layers, model, trainer.warm_start)
    return ComponentSettings(data, transform, trainer, evaluator, pretrainer, distiller,
                             settings_lib.from_args(ServingLoopSettings, args))
