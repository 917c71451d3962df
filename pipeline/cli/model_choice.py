"""What --pretrained decides: the checkpoint's config and lower-casing, read from this machine or a URI before
anything heavy loads, and the vocabulary and position limit that follow, checked against the other model flags."""

from __future__ import annotations

import argparse
import dataclasses
import json
import posixpath
from typing import Callable, Optional, Tuple

from components.features import MIN_LEARNED_VOCAB_SIZE
from components.model import tokenizer_config
from components.model.presets import PRESETS
from components.runtime import storage
from components.settings.base import AUTO
from components.settings.data import default_vocab_mode
from components.settings.encoder import SCRATCH_MAX_POSITIONS
from pipeline.cli.errors import InputError


def _read_text(location: str) -> Optional[str]:
    """A small file's text, from this machine or a URI; None when absent."""
    try:
        return storage.read_text(location)
    except OSError as e:
        raise InputError(f"cannot read {location} from here ({str(e).splitlines()[0]}); the checkpoint's config is "
                         "checked before the run.") from None


def read_checkpoint(location: str, shown: Optional[str] = None) -> Tuple[dict, bool]:
    """(config.json as a dict, lower_case from tokenizer_config.json) of a checkpoint folder. `shown` is the folder
    as the user named it, when `location` is a local copy of it."""
    shown = shown or location
    config_text = _read_text(posixpath.join(location, "config.json"))
    has_vocab = _read_text(posixpath.join(location, "vocab.txt")) is not None
    has_weights = storage.exists(posixpath.join(location, "model.safetensors"))
    if config_text is None or not has_vocab or not has_weights:
        raise InputError(f"--pretrained {shown} is not a BERT checkpoint folder (config.json, model.safetensors and "
                         "vocab.txt expected).")
    try:
        config = json.loads(config_text)
        tokenizer_text = _read_text(posixpath.join(location, tokenizer_config.TOKENIZER_CONFIG_FILE))
        tokenizer = json.loads(tokenizer_text) if tokenizer_text else {}
    except ValueError as e:
        raise InputError(f"--pretrained {shown}: config.json or tokenizer_config.json is not valid JSON ({e}).") \
            from None
    return config, tokenizer_config.lower_case(tokenizer)


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """What follows from --pretrained, --vocab and --vocab-size, checked against each other and the checkpoint."""

    vocab_mode: str  # TransformSettings.vocab_mode
    vocab_file: str  # '' when the vocabulary is learned
    lower_case: bool
    pretrained_dir: Optional[str]  # None: from scratch
    positions: int  # the encoder's position embeddings: the longest --max-seq-length it takes
    layers: int  # the encoder's depth (a --student-layers student has fewer)
    config: Optional[dict] = None  # the checkpoint's config.json (None: a --model-size encoder from scratch)


def model_settings(args: argparse.Namespace, checkpoint: Optional[str], local_copy: Optional[str] = None,
                   packaged_vocab: Callable[[], str] = str) -> ModelChoice:
    """The model settings the flags and the checkpoint decide, with the cross-setting checks (InputError).
    `checkpoint` is None when training from scratch; `local_copy` is a readable copy of it; `packaged_vocab()` is the
    packaged uncased vocabulary's file, for training from scratch with --vocab checkpoint."""
    from_scratch = checkpoint is None
    vocab_mode = args.vocab_mode or default_vocab_mode(pretrained=not from_scratch)
    if vocab_mode == "learn" and not from_scratch:
        raise InputError(f"--vocab learn cannot be used with --pretrained {args.pretrained}: a pretrained model needs "
                         "its own vocabulary (use --pretrained none to learn one).")
    if args.learned_vocab_size is not None and vocab_mode != "learn":
        raise InputError("--vocab-size applies only to a learned vocabulary (--vocab learn).")
    if args.learned_vocab_size is not None and args.learned_vocab_size < MIN_LEARNED_VOCAB_SIZE:
        raise InputError(f"--vocab-size must be at least {MIN_LEARNED_VOCAB_SIZE}.")
    config = None
    if from_scratch:
        positions, where = SCRATCH_MAX_POSITIONS, f"the --model-size {args.model_size} encoder's"
        lower_case, vocab_file = True, ("" if vocab_mode == "learn" else packaged_vocab())
        layers = PRESETS[args.model_size]["num_layers"]
    else:
        config, lower_case = read_checkpoint(local_copy or checkpoint, shown=checkpoint)
        positions = int(config.get("max_position_embeddings", 512))
        where = f"the checkpoint's max_position_embeddings ({posixpath.join(checkpoint, 'config.json')})"
        vocab_file = posixpath.join(checkpoint, "vocab.txt")
        layers = int(config.get("num_hidden_layers", 0))
    if args.max_seq_length != AUTO and args.max_seq_length > positions:
        raise InputError(f"--max-seq-length {args.max_seq_length} is more than {where} {positions} positions; pass "
                         f"--max-seq-length {positions} or less.")
    if vocab_mode == "learn":
        lower_case = True  # the learned vocabulary is lower-cased (components/module_files/learned_vocab.py)
    return ModelChoice(vocab_mode, vocab_file, lower_case, checkpoint, positions, layers, config)


def check_student(student_layers: int, model: ModelChoice, warm_start: bool) -> None:
    """--student-layers against the encoder it distils (fewer layers than the checkpoint's or the preset's) and
    against --warm-start (InputError)."""
    if not student_layers:
        return
    if student_layers >= model.layers:
        raise InputError(f"--student-layers {student_layers}: a student has fewer layers than the model it learns "
                         f"from, which has {model.layers}; pass --student-layers {max(model.layers - 1, 1)} or less"
                         + (" (or a deeper --model-size)" if model.pretrained_dir is None else "") + ".")
    if warm_start:
        raise InputError("--warm-start and --student-layers exclude each other: the model in service is then a "
                         "student, which the fine-tuned model (its teacher) cannot start from; pass one of them.")
