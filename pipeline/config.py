"""The one typed configuration shared by every runner, and the project's defaults.

`create_pipeline(config)` in pipeline.py reads nothing else; the runners (run_local.py, run_kubeflow.py)
only turn their command lines into a `PipelineConfig`. Each default is defined here once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Tuple

from pipeline.assets import DATA_DIR, REPO_ROOT

PIPELINE_NAME = "bert_text_classifier"
MODEL_NAME = "bert_classifier"  # the model's name under the serving directory (TF Serving's --model_name)

# Module paths of the user code: referenced by path (not uploaded module files) so the same pipeline runs
# from this checkout locally and from the code baked into the image on Kubeflow.
PREPROCESSING_FN = "components.preprocessing.preprocessing_fn"
RUN_FN = "components.trainer.run_fn"

SCHEMA_DIR = REPO_ROOT / "schema"
OUTPUTS_DIR = REPO_ROOT / "outputs"

MODEL_SIZES = ("tiny", "mini", "small")
POOLING_MODES = ("cls", "mean")
VOCAB_CHOICES = ("checkpoint", "learn")  # the runners' --vocab: "checkpoint" is vocab_mode "file"
BEAM_DIRECT_MODES = ("in_memory", "multi_processing")

# Peak learning rate when training from scratch (no checkpoint): a new encoder needs larger steps than fine-tuning.
# Chosen on Rotten Tomatoes' eval split, mini encoder, learned vocabulary: 0.782 eval accuracy at 5e-4, 0.760 at 5e-5.
SCRATCH_LEARNING_RATE = 5e-4

# Hash split used when the data does not bring its own train/eval/test folders.
HASH_BUCKETS = (("train", 8), ("eval", 1), ("test", 1))
SPAN_FOLDER = "span-{SPAN}"  # ExampleGen's span placeholder


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything a pipeline run depends on. Paths are strings so they may be local or URIs (gs://...)."""

    # Where things live.
    pipeline_root: str
    data_root: str
    serving_dir: str
    pipeline_name: str = PIPELINE_NAME
    model_name: str = MODEL_NAME
    metadata_path: Optional[str] = None  # SQLite file for ML Metadata; None: the runner's own store (KFP)
    orchestrator: str = "local"  # "local" or "kubeflow": what the pipeline is built for (only resolver classes differ)
    dataset: str = "custom"  # a built-in dataset's name, or "custom" for a user's CSV files

    # Input data: CSV files with a header; `input_splits` lists sub-folders that are already
    # train/eval/test splits, empty means one set of files split by hash (HASH_BUCKETS).
    text_key: str = "text"
    label_key: str = "label"
    input_splits: Tuple[str, ...] = ()
    # Span folders (`span-1/`, `span-2/`, ... under data_root, each laid out as above): each run ingests the
    # newest span; Transform and Trainer see the last `spans_window` spans ingested so far.
    use_spans: bool = False
    spans_window: int = 1
    label_names: Tuple[str, ...] = ()  # the label domain, in the curated schema's order
    schema_file: Optional[str] = None  # curated schema; None: SchemaGen's inferred schema is used
    # Thresholds of the checks on the tokenized text (components/text_stats.py): a text_checks.toml, by default the
    # one beside the curated schema; None: text_stats.DEFAULT_CHECKS.
    text_checks_file: Optional[str] = None

    # Tokenization (Transform).
    vocab_file: str = ""  # WordPiece vocabulary file when vocab_mode is "file" (a checkpoint's vocab.txt)
    lower_case: bool = True
    max_seq_length: int = 128
    vocab_mode: str = "file"  # "file": vocab_file; "learn": Transform learns one from the training split
    learned_vocab_size: int = 8000  # target size of a learned vocabulary, special tokens included

    # Model and training (Trainer).
    pretrained_dir: Optional[str] = None  # Hugging Face-format BERT checkpoint; None: train from scratch
    model_size: str = "mini"  # preset when training from scratch
    pooling: str = "mean"  # all-MiniLM-L6-v2 was trained with mean pooling; measured better than [CLS] here
    epochs: int = 3
    train_steps: Optional[int] = None  # caps the number of training steps (quick runs); None: `epochs` full passes
    batch_size: int = 32
    learning_rate: float = 5e-5  # fine-tuning a checkpoint; runners use SCRATCH_LEARNING_RATE without one
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    dropout: float = 0.1
    early_stopping_patience: int = 1
    seed: int = 42
    # Start from the weights of the model in service (the latest blessed model) instead of the checkpoint or a
    # random init; the architecture and vocabulary must be the same.
    warm_start: bool = False

    # Evaluation gates (Evaluator): a model is blessed only when accuracy on eval is at least
    # `min_accuracy` and not lower than the model in service's by more than `max_accuracy_drop`.
    min_accuracy: float = 0.6
    max_accuracy_drop: float = 0.01

    # Execution.
    beam_pipeline_args: Tuple[str, ...] = ()
    enable_cache: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def trainer_custom_config(self) -> dict:
        """What components/trainer.py reads (a JSON-able dict: it is an exec property of the Trainer)."""
        return {
            "text_key": self.text_key,
            "label_key": self.label_key,
            "vocab_file": self.vocab_file,
            "pretrained_dir": self.pretrained_dir,
            "model_size": self.model_size,
            "pooling": self.pooling,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "warmup_ratio": self.warmup_ratio,
            "dropout": self.dropout,
            "early_stopping_patience": self.early_stopping_patience,
            "seed": self.seed,
            "warm_start": self.warm_start,
        }


def default_pipeline_root(name: str) -> Path:
    return OUTPUTS_DIR / name / "pipeline_root"


def default_serving_dir(name: str) -> Path:
    return OUTPUTS_DIR / name / "serving"


def curated_schema(dataset: str) -> Optional[Path]:
    path = SCHEMA_DIR / dataset / "schema.pbtxt"
    return path if path.exists() else None


__all__ = [
    "PipelineConfig", "PIPELINE_NAME", "MODEL_NAME", "PREPROCESSING_FN", "RUN_FN", "SCHEMA_DIR",
    "DATA_DIR", "SPAN_FOLDER", "MODEL_SIZES", "POOLING_MODES", "VOCAB_CHOICES", "BEAM_DIRECT_MODES", "HASH_BUCKETS",
    "SCRATCH_LEARNING_RATE",
    "default_pipeline_root", "default_serving_dir", "curated_schema",
]
