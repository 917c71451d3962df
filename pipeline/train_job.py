"""The pipeline's Trainer step as a stand-alone job: components/module_files/trainer.py's run_fn on a Transform step's
outputs.

    python -m pipeline.train_job --examples ROOT/Transform/transformed_examples/ID \\
        --transform-graph ROOT/Transform/transform_graph/ID --model-dir /models/candidate --config trainer.json

This is how the same module runs as a multi-worker job outside the pipeline, e.g. as a Kubeflow TFJob
(k8s/trainer-tfjob.yaml): every replica runs this command with the TF_CONFIG the Training Operator sets, run_fn trains
under MultiWorkerMirroredStrategy (components/model/distribution.py), and only the chief writes the model. The inputs
are read as TFX's Trainer reads them (TFX's own FnArgs from the artifacts); --config is the Trainer's custom_config, as
the pipeline passes it (the Kubeflow spec's `trainer_config` parameter, or `training_history.json`'s settings).

Exit status: 0 when trained (and, on the chief, the model written under MODEL_DIR/Format-Serving); 2 for invalid input
(a missing folder, an unreadable or invalid --config, a bad TF_CONFIG); 1 when training failed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere: TFT needs Keras 2
if __package__ in (None, ""):  # `python pipeline/train_job.py`: make the repo root importable, not pipeline/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
from typing import List, Optional  # noqa: E402

from pipeline.dag.config import PRETRAIN_RUN_FN, RUN_FN  # noqa: E402  (the module paths the pipeline's Trainers load)

RUN_FNS = {"trainer": RUN_FN, "pretrainer": PRETRAIN_RUN_FN}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.train_job",
        description="Train the classifier from a Transform step's outputs with the pipeline's own run_fn, on one "
                    "process or as one replica of a multi-worker job (TF_CONFIG, as a TFJob or Vertex AI Training "
                    "sets it).",
        epilog="Only the chief (TF_CONFIG task 'chief', or worker 0 without one) keeps what it writes; the other "
               "workers write to temporary folders that are deleted. Exit status: 0 trained, 1 training failed, 2 "
               "invalid input.")
    p.add_argument("--examples", required=True,
                   help="Transform's transformed_examples artifact folder (with Split-train/ and Split-eval/)")
    p.add_argument("--transform-graph", required=True, help="Transform's transform_graph artifact folder")
    p.add_argument("--model-dir", required=True,
                   help="the Model artifact folder to write: the serving model goes to MODEL_DIR/Format-Serving")
    p.add_argument("--model-run-dir", help="TensorBoard logs (default: MODEL_DIR-logs)")
    p.add_argument("--config", required=True, type=Path,
                   help="JSON file with the step's custom_config (every setting, as the pipeline passes it)")
    p.add_argument("--train-steps", type=int, default=0,
                   help="stop after this many global steps (0: the configured epochs)")
    p.add_argument("--train-split", default="train", help="split of --examples to train on")
    p.add_argument("--eval-split", default="eval", help="split of --examples to choose the epoch on")
    p.add_argument("--step", choices=sorted(RUN_FNS), default="trainer",
                   help="which step's run_fn: the Trainer (fine-tuning; --config holds the Trainer's settings) or the "
                        "Pretrainer (the masked-LM stage; --config holds the Pretrainer's settings)")
    return p


class InputError(ValueError):
    """Invalid input; the message is one sentence for the user."""


def _check(args: argparse.Namespace) -> dict:
    import tensorflow as tf

    for flag, folder in (("--examples", args.examples), ("--transform-graph", args.transform_graph)):
        if not tf.io.gfile.isdir(folder):
            raise InputError(f"{flag} {folder}: no such folder.")
    for split in (args.train_split, args.eval_split):
        if not tf.io.gfile.isdir(os.path.join(args.examples, f"Split-{split}")):
            raise InputError(f"--examples {args.examples} has no Split-{split}/ folder.")
    if not tf.io.gfile.exists(os.path.join(args.transform_graph, "transform_fn")):
        raise InputError(f"--transform-graph {args.transform_graph} is not a Transform output (no transform_fn/).")
    if args.train_steps < 0:
        raise InputError("--train-steps must be 0 or positive.")
    try:
        config = json.loads(args.config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"--config {args.config}: {e}.") from None
    from components.settings.base import SettingsError
    from components.settings.data import read_config
    from components.settings.pretraining import PretrainerSettings
    from components.settings.trainer import TrainerSettings

    try:
        read_config(PretrainerSettings if args.step == "pretrainer" else TrainerSettings, config)
    except SettingsError as e:
        raise InputError(f"--config {args.config}: {e}") from None
    return config


def fn_args(args: argparse.Namespace, custom_config: dict):
    """TFX's FnArgs for run_fn, from the artifact folders, as TFX's Trainer executor builds them."""
    from tfx.components.trainer import fn_args_utils
    from tfx.proto import trainer_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import path_utils, proto_utils

    examples = standard_artifacts.Examples()
    examples.uri = args.examples
    splits = sorted(name[len("Split-"):] for name in os.listdir(args.examples) if name.startswith("Split-")) \
        if os.path.isdir(args.examples) else [args.train_split, args.eval_split]
    examples.split_names = artifact_utils.encode_split_names(splits)
    transform_graph = standard_artifacts.TransformGraph()
    transform_graph.uri = args.transform_graph
    exec_properties = {
        "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(
            splits=[args.train_split], **({"num_steps": args.train_steps} if args.train_steps else {}))),
        "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=[args.eval_split])),
        "custom_config": json.dumps(custom_config),
    }
    result = fn_args_utils.get_common_fn_args({"examples": [examples], "transform_graph": [transform_graph]},
                                              exec_properties)
    result.transform_output = result.transform_graph_path
    result.serving_model_dir = path_utils.serving_model_dir(args.model_dir)
    result.eval_model_dir = path_utils.eval_model_dir(args.model_dir)
    result.model_run_dir = args.model_run_dir or args.model_dir.rstrip("/") + "-logs"
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from components.model import distribution

    try:
        distribution.read_tf_config()  # a bad TF_CONFIG is the user's to fix, before TensorFlow starts
        config = _check(args)
    except (InputError, distribution.DistributionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import importlib

    module, _, function = RUN_FNS[args.step].rpartition(".")
    getattr(importlib.import_module(module), function)(fn_args(args, config))
    if distribution.is_chief():
        print(f"trained: {args.model_dir}/Format-Serving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
