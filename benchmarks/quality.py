"""Benchmark: Trainer configurations side by side on one Transform output: eval and test accuracy, macro F1, speed.

Each configuration is the Trainer settings of the pipeline root's latest run with some overridden, trained from
scratch of the Trainer step (`python -m pipeline.train_job`, the pipeline's own run_fn) on the same transformed
splits. Settings are chosen on the eval split (the epoch early stopping keeps, its eval accuracy); test accuracy and
macro F1 come from the exported serving model on the test split's texts, as the run summary computes them.

    .venv/bin/python benchmarks/quality.py --pipeline-root outputs/rotten_tomatoes/pipeline_root \\
        --config float32:precision=float32 --config bf16:precision=mixed_bfloat16 [--steps N] [--json out.json]

A configuration is NAME:KEY=VALUE,KEY=VALUE with Trainer setting names (components/settings/trainer.py), values as
JSON where they parse (numbers, true/false), else strings. --steps caps each run (a speed comparison); without it
each runs its configured epochs; --speed-only then skips scoring the test split (a speed comparison needs no
accuracy, and 20newsgroups' 7,532 test posts take minutes a configuration). Configurations run in the order given:
repeat them interleaved (a, b, a, b) so that a change in the machine's speed falls on both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_jobs  # noqa: E402


def parse_config(text: str):
    name, _, pairs = text.partition(":")
    overrides = {}
    for pair in filter(None, pairs.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"error: --config {text}: {pair!r} is not KEY=VALUE.")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


PRETRAINER_KEYS = ("pretrain_epochs", "pretrain_learning_rate", "masking_rate", "whole_word_masking", "unlabeled_data")


def pretrain(name: str, base: Path, inputs, trainer_settings: dict, overrides: dict, steps: int) -> dict:
    """The masked-LM stage on the same Transform output (the Pretrainer's run_fn), from the Trainer's settings."""
    from components.settings.data import component_config, read_config
    from components.settings.encoder import shared_fields
    from components.settings.pretraining import PretrainerSettings
    from components.settings.trainer import TrainerSettings

    shared = {k: trainer_settings[k] for k in shared_fields()}
    config = PretrainerSettings(**shared, **overrides)
    data = read_config(TrainerSettings, trainer_settings)[1]
    return train_jobs.train(f"{name}-mlm", base, inputs, component_config(config, data), steps, step="pretrainer")


def test_metrics(model_dir: str, examples_dir: str):
    """Accuracy and macro F1 of the exported model on the test split's raw texts (Transform passes them through)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from components import features

    files = tf.io.gfile.glob(os.path.join(examples_dir, "Split-test", "*"))
    spec = {features.RAW_TEXT_KEY: tf.io.FixedLenFeature([], tf.string),
            features.LABEL_ID_KEY: tf.io.FixedLenFeature([], tf.int64)}
    data = tf.data.TFRecordDataset(files, compression_type="GZIP").map(
        lambda x: tf.io.parse_single_example(x, spec)).batch(64)
    serve = tf.saved_model.load(os.path.join(model_dir, "Format-Serving")).signatures["serving_default"]
    truth, predicted = [], []
    for batch in data:
        truth += batch[features.LABEL_ID_KEY].numpy().tolist()
        predicted += serve(text=batch[features.RAW_TEXT_KEY])["label_id"].numpy().tolist()
    truth, predicted = np.array(truth), np.array(predicted)
    f1s = []
    for c in np.unique(truth):
        tp = np.sum((predicted == c) & (truth == c))
        precision = tp / max(np.sum(predicted == c), 1)
        recall = tp / max(np.sum(truth == c), 1)
        f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(truth == predicted)), float(np.mean(f1s)), int(len(truth))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline-root", type=Path, default=train_jobs.DEFAULT_ROOT)
    p.add_argument("--config", action="append", required=True, help="NAME:KEY=VALUE,... (repeatable)")
    p.add_argument("--steps", type=int, default=0, help="cap each run at this many steps (0: the epochs)")
    p.add_argument("--speed-only", action="store_true", help="skip the test split's scores (with --steps)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--work-dir", type=Path, help="where the models and logs go while it runs (default: the system's "
                                                   "temporary folder); deleted at the end")
    args = p.parse_args()
    inputs, settings = train_jobs.pipeline_inputs(args.pipeline_root)
    configs = [parse_config(c) for c in args.config]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-quality-", dir=args.work_dir) as tmp:
        for name, overrides in configs:
            pretraining = {k: overrides.pop(k) for k in list(overrides) if k in PRETRAINER_KEYS}
            wall = 0.0
            if pretraining.get("pretrain_epochs"):
                adapted = pretrain(name, Path(tmp), inputs, {**settings, **overrides}, pretraining, args.steps)
                overrides["pretrained_dir"], wall = adapted["model_dir"] + "/Format-Serving", adapted["wall_seconds"]
                print(json.dumps({"name": name, "pretraining": adapted["history"], "before": adapted["before"],
                                  "wall_seconds": adapted["wall_seconds"]}), flush=True)
            history = train_jobs.train(name, Path(tmp), inputs, {**settings, **overrides}, args.steps)
            history["wall_seconds"] += wall
            overrides.update(pretraining)
            kept = history["kept_epoch"]
            accuracy, macro_f1, n = ((float("nan"), float("nan"), 0) if args.speed_only
                                     else test_metrics(history["model_dir"], inputs[1]))
            row = {"name": name, "overrides": overrides, "precision": history.get("precision"),
                   "eval_accuracy": history["history"]["val_accuracy"][kept - 1], "kept_epoch": kept,
                   "epochs_run": len(history["history"]["val_accuracy"]), "test_accuracy": accuracy,
                   "test_macro_f1": macro_f1, "test_examples": n,
                   "steps_per_second": round(history["train_steps_per_second"], 3),
                   "wall_seconds": history["wall_seconds"]}
            results.append(row)
            print(json.dumps(row), flush=True)
    print(f"Trainer configurations on {args.pipeline_root} ({os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}); selection on eval, test reported")
    print(f"{'config':<16} {'eval acc':>8} {'test acc':>8} {'macro F1':>8} {'steps/s':>8} {'wall s':>7}  epochs")
    for r in results:
        print(f"{r['name']:<16} {r['eval_accuracy']:>8.4f} {r['test_accuracy']:>8.4f} {r['test_macro_f1']:>8.4f} "
              f"{r['steps_per_second']:>8.3f} {r['wall_seconds']:>7.0f}  {r['kept_epoch']}/{r['epochs_run']}")
    if args.json:
        args.json.write_text(json.dumps({"pipeline_root": str(args.pipeline_root), "steps": args.steps,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
