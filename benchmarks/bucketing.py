"""Benchmark: training throughput with length bucketing vs padding every batch to max_seq_length.

The Trainer (components/module_files/training_loop.py, `bucket_batches`) groups examples of similar length and pads each
batch only to its longest example. This measures what that buys on the default data and model: the same fine-tuning
steps (all-MiniLM-L6-v2 + mean-pooling head, AdamW, batch 32) on the same Rotten Tomatoes snippets, tokenized by the
pipeline's own WordPiece tokenizer, fed (a) bucketed as the Trainer does and (b) padded to max_seq_length.

    .venv/bin/python benchmarks/bucketing.py [--steps 40] [--json out.json]

Only the timed steps count (a few warm-up steps per mode are excluded: tracing, first-batch allocation).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from components import features  # noqa: E402
from components.model import hf_checkpoint  # noqa: E402
from components.model.heads import build_classifier  # noqa: E402
from components.module_files import trainer, training_loop, wordpiece  # noqa: E402
from components.settings.trainer import TrainerSettings  # noqa: E402
from components.settings.transform import TransformSettings  # noqa: E402
from pipeline.data import assets  # noqa: E402

KEYS = (features.WORD_IDS_KEY, features.MASK_KEY, features.TYPE_IDS_KEY)


def load_examples(limit: int):
    path = assets.ensure_dataset("rotten_tomatoes") / "data.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:limit]
    names = sorted({r["label"] for r in rows})
    return [r["text"] for r in rows], [names.index(r["label"]) for r in rows]


def time_steps(dataset: tf.data.Dataset, steps: int, warmup: int, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    checkpoint = assets.ensure_checkpoint()
    model = build_classifier(hf_checkpoint.load_pretrained(checkpoint), 2, "mean", 0.1)
    settings = TrainerSettings()
    model.compile(optimizer=trainer._make_optimizer(settings, steps + warmup),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    batches = iter(dataset.repeat())
    tokens = 0
    for _ in range(warmup):
        x, y = next(batches)
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        tokens += int(tf.size(x[features.WORD_IDS_KEY]))
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    return {"steps": steps, "seconds": round(seconds, 2), "steps_per_second": round(steps / seconds, 3),
            "padded_tokens_per_batch": round(tokens / steps, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per mode")
    parser.add_argument("--warmup", type=int, default=10,
                        help="untimed steps per mode (tracing: each new batch shape retraces until Keras relaxes it)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=TransformSettings.max_seq_length)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    texts, labels = load_examples(4096)
    vocab_file, lower_case = hf_checkpoint.checkpoint_tokenizer_settings(str(assets.ensure_checkpoint()))
    tokenizer = wordpiece.build_tokenizer(str(vocab_file), lower_case)
    encoded = wordpiece.tokenize(tf.constant(texts), tokenizer, args.max_seq_length, tokenizer.cls_id,
                                     tokenizer.sep_id)
    encoded = {k: tf.cast(encoded[k], tf.int32) for k in KEYS}
    lengths = tf.reduce_sum(encoded[features.MASK_KEY], axis=1)
    labels = tf.constant(labels, tf.int32)

    padded = (tf.data.Dataset.from_tensor_slices((encoded, labels))
              .shuffle(10_000, seed=42).batch(args.batch_size).prefetch(tf.data.AUTOTUNE))

    def trim(example, label):
        length = tf.reduce_sum(example[features.MASK_KEY])
        return {k: example[k][:length] for k in KEYS}, label

    bucketed = training_loop.bucket_batches(tf.data.Dataset.from_tensor_slices((encoded, labels)).map(trim),
                                      args.batch_size, shuffle=True, seed=42)

    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}",
        "examples": len(texts), "mean_tokens": round(float(tf.reduce_mean(tf.cast(lengths, tf.float32))), 1),
        "max_seq_length": args.max_seq_length, "batch_size": args.batch_size,
        "padded_to_max_seq_length": time_steps(padded, args.steps, args.warmup, 42),
        "length_bucketing": time_steps(bucketed, args.steps, args.warmup, 42),
    }
    results["speedup"] = round(results["length_bucketing"]["steps_per_second"] /
                               results["padded_to_max_seq_length"]["steps_per_second"], 2)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
