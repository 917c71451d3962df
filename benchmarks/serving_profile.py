"""Benchmark: where a served model's CPU time goes, part by part, in-process.

    .venv/bin/python benchmarks/serving_profile.py [--serving-dir outputs/rotten_tomatoes/serving] [--calls 200]

On the newest pushed version, with the eval texts of its own warm-up requests, one text and 32 texts a call:
- the whole `serving_default` signature (what a Predict request runs);
- the Transform graph alone (the WordPiece tokenizer, the cut and the padding to max_seq_length), the three model
  inputs only, as the signature uses them;
- the classifier alone (encoder and head) on those inputs trimmed to the batch's longest text, as the signature runs
  it, and on them padded to max_seq_length (what trimming saves);
- the rest: the whole signature less the two parts (the class-name lookup, argmax, the call itself).
The parts take turns call by call, so a slow moment of the machine hits all of them alike; each figure is the median
of --calls calls after a few untimed ones.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.serving import newest_version  # noqa: E402
from pipeline.dag.config import default_serving_dir  # noqa: E402

MODEL_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
WARMUP_CALLS = 5


def load(model_dir: Path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the WordPiece ops of the Transform graph)

    return tf.saved_model.load(str(model_dir))


def parts(loaded, texts: list):
    """name -> a no-argument callable running that part of the loaded SavedModel on `texts`, and the batch's
    (longest, padded) length."""
    import tensorflow as tf

    batch = tf.constant(texts)
    serve = loaded.signatures["serving_default"]
    # the Transform layer's one input: the text column, [batch, 1] as serving_default shapes it
    (spec,), _ = loaded.tft_layer.__call__.concrete_functions[0].structured_input_signature
    (text_key,) = spec

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def transform(text):
        out = loaded.tft_layer({text_key: tf.reshape(text, [-1, 1])})
        return {k: tf.cast(out[k], tf.int32) for k in MODEL_INPUTS}

    padded = transform(batch)
    longest = int(tf.reduce_max(tf.reduce_sum(padded["input_mask"], axis=1)))
    trimmed = {k: v[:, :longest] for k, v in padded.items()}
    return {
        "whole signature": lambda: serve(text=batch),
        "Transform graph": lambda: transform(batch),
        "classifier, trimmed": lambda: loaded.model(trimmed, training=False),
        "classifier, padded": lambda: loaded.model(padded, training=False),
    }, longest, int(padded["input_mask"].shape[1])


def measure(named: dict, calls: int) -> dict:
    """The median milliseconds of each part, the parts taking turns call by call."""
    for run in named.values():
        for _ in range(WARMUP_CALLS):
            run()
    seconds = {name: [] for name in named}
    for _ in range(calls):
        for name, run in named.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(s) for name, s in seconds.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serving-dir", type=Path, default=default_serving_dir("rotten_tomatoes"))
    parser.add_argument("--calls", type=int, default=200, help="timed calls of each part and batch size")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    model_dir = newest_version(args.serving_dir)
    if model_dir is None:
        return 2
    from components.module_files import warmup

    batch_request = next(inputs for signature, inputs in warmup.read_requests(str(model_dir))
                         if signature == "serving_default" and len(inputs["text"]) > 1)
    texts = [t.decode("utf-8") for t in batch_request["text"]]
    results, loaded = {}, load(model_dir)
    for size in (1, 32):
        chosen = [texts[i % len(texts)] for i in range(size)]
        named, longest, padded = parts(loaded, chosen)
        results[size] = {"ms": measure(named, args.calls), "longest": longest, "padded": padded}
    print(f"model: {model_dir}; median ms of {args.calls} calls; machine: {platform.machine()}, {os.cpu_count()} "
          "cores")
    print("| part | 1 text | 32 texts |\n|---|---|---|")
    for name in results[1]["ms"]:
        print(f"| {name} | {results[1]['ms'][name]:.2f} | {results[32]['ms'][name]:.2f} |")
    rest = {size: r["ms"]["whole signature"] - r["ms"]["Transform graph"] - r["ms"]["classifier, trimmed"]
            for size, r in results.items()}
    print(f"| rest (whole less Transform and trimmed classifier) | {rest[1]:.2f} | {rest[32]:.2f} |")
    print(f"lengths: 1 text {results[1]['longest']} tokens, 32 texts {results[32]['longest']} at the longest; "
          f"padded {results[1]['padded']}")
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
