"""ServingLogsGen and ServingLogsCommit: what the model in service was asked since the last run, as examples.

ServingLogsGen reads the request logs that the model server wrote under a prefix (components/tf_serving/
request_log.py: PredictionLog records in TFRecord files) and that no completed run has consumed yet (the ledger,
components/tf_serving/consumed_logs.py), and writes an Examples artifact with one split, `serving`, as ExampleGen
writes its splits (gzipped TFRecord files of tf.Examples), so StatisticsGen and the text statistics read it as any
other. Each text of a logged request is one tf.Example holding
- the text, under the pipeline's text column;
- per label column, the class the model answered (`predicted_<column>`) and its probability
  (`probability_<column>`);
- the version that answered (`model_version`) and when (`request_time`, seconds since the epoch).
Its `serving_logs.json` says what was read: the files, requests, examples, time range and versions.

Logs written for a model with another text column or other classes are refused (ServingLogsError, one sentence
naming the prefix and the mismatch); a prefix with no new file is "no new traffic", an empty split, not an error.

ServingLogsCommit writes the ledger entry naming the files the read consumed, once the traffic's figures are
published (the argument for exactly-once consumption is in consumed_logs.py). Neither step is ever answered from a
cache (pipeline/dag/nodes.py's NEVER_CACHED): what is new under the prefix is not in their inputs.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import collections
import json
import os
from typing import Dict, List, Mapping, Optional, Tuple

from tfx import v1 as tfx

from components import tasks
from components.tf_serving import consumed_logs, request_log

SPLIT = "serving"
SUMMARY_FILE = "serving_logs.json"  # in the Examples artifact: what the read found
DATA_FILE = "data_tfrecord-00000-of-00001.gz"  # ExampleGen's file name pattern for a split's shard
VERSION_KEY = "model_version"
TIME_KEY = "request_time"
# The input of the exported model's predict signature (serving_default, components/module_files/serving_module.py):
# a predict request carries its texts under this name whatever the text column is called; a classify request's
# tf.Examples carry them under the text column.
PREDICT_TEXT_INPUT = "text"


class ServingLogsError(ValueError):
    """Request logs this pipeline cannot read as its model's traffic; the message says which and why."""


def predicted_key(column: str) -> str:
    return f"predicted_{column}"


def probability_key(column: str) -> str:
    return f"probability_{column}"


def answer_columns(label_key: str, classes_record) -> List[Tuple[str, str, Tuple[str, ...]]]:
    """(label column, output prefix in the model's answers, classes) per task."""
    by_task = tasks.classes_by_task(classes_record)
    return [(name or label_key, f"{name}{tasks.OUTPUT_SEPARATOR}" if name else "", classes)
            for name, classes in by_task.items()]


def _request_inputs(log) -> List[str]:
    """The names of a logged request's inputs (a predict request's tensors, the features of the first example)."""
    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        return sorted(log.predict_log.request.inputs)
    if kind in ("classify_log", "regress_log", "multi_inference_log"):
        source = getattr(log, kind).request.input
        which = source.WhichOneof("kind")
        examples = (source.example_list.examples if which == "example_list" else
                    source.example_list_with_context.examples if which else [])
        return sorted(examples[0].features.feature) if examples else []
    return []


def _answer(example: request_log.LoggedExample, prefix: str,
            classes: Tuple[str, ...]) -> Optional[Tuple[str, float]]:
    """(the class answered, its probability) of one logged example, None when the answer has no class (a regress
    request); _MismatchedClasses when a predict answer has another number of probabilities than `classes`."""
    outputs = example.outputs
    if example.kind == "predict":
        probabilities = outputs.get(f"{prefix}probabilities")
        label = outputs.get(f"{prefix}label")
        if probabilities is None:
            return None
        if not isinstance(probabilities, list) or len(probabilities) != len(classes):
            width = len(probabilities) if isinstance(probabilities, list) else 1
            raise _MismatchedClasses(f"{width} class probabilities")
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return (label if isinstance(label, str) else classes[best]), float(probabilities[best])
    if example.kind == "classify":
        names, scores = outputs.get("classes") or [], outputs.get("scores") or []
        if not scores:
            return None
        best = max(range(len(scores)), key=scores.__getitem__)
        return str(names[best]) if best < len(names) else classes[best], float(scores[best])
    return None


class _MismatchedClasses(Exception):
    pass


def to_example(example: request_log.LoggedExample, text_key: str, answers: Mapping[str, Tuple[str, float]]):
    """One logged example as a tf.Example."""
    import tensorflow as tf

    feature = {text_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[(example.text or "").encode()])),
               VERSION_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[example.version])),
               TIME_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[example.time]))}
    for column, (label, probability) in answers.items():
        feature[predicted_key(column)] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()]))
        feature[probability_key(column)] = tf.train.Feature(float_list=tf.train.FloatList(value=[probability]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def read_traffic(prefix: str, paths: List[str], text_key: str, label_key: str, classes_record,
                 writer=None) -> Dict:
    """Reads the log files `paths` of `prefix`, writing each logged text as a tf.Example to `writer` (a
    TFRecordWriter, or None to only count); returns what serving_logs.json says. ServingLogsError on logs of
    another model."""
    columns = answer_columns(label_key, classes_record)
    counted = collections.Counter()
    versions: Dict[str, int] = collections.Counter()
    times: List[int] = []
    for path in paths:
        for log in request_log.read([path]):
            counted["requests"] += 1
            key = PREDICT_TEXT_INPUT if log.WhichOneof("log_type") == "predict_log" else text_key
            logged = request_log.examples(log, key)
            inputs = _request_inputs(log)
            if any(e.text is None for e in logged) or (inputs and key not in inputs):
                raise ServingLogsError(
                    f"the request logs under {prefix} are not this pipeline's model's: the requests of {path} have no "
                    f"text input {key!r} (their inputs: {', '.join(inputs) or 'none'}), so they were written for a "
                    f"model with another text column; give --serving-logs the prefix this pipeline's model logs to.")
            if not logged:  # a record of no text (an empty batch, a kind of request without texts)
                counted["skipped"] += 1
                continue
            for example in logged:
                answers = {}
                for column, out_prefix, classes in columns:
                    try:
                        answer = _answer(example, out_prefix, classes)
                    except _MismatchedClasses as e:
                        raise ServingLogsError(
                            f"the request logs under {prefix} are not this pipeline's model's: {path} answers with "
                            f"{e} where this pipeline has {len(classes)} classes ({', '.join(classes)}); give "
                            f"--serving-logs the prefix this pipeline's model logs to.") from None
                    if answer is None:
                        continue
                    if answer[0] not in classes:
                        raise ServingLogsError(
                            f"the request logs under {prefix} are not this pipeline's model's: {path} answers class "
                            f"{answer[0]!r}, which is not among this pipeline's classes ({', '.join(classes)}) of "
                            f"column {column!r}; give --serving-logs the prefix this pipeline's model logs to.")
                    answers[column] = answer
                if not answers:
                    counted["skipped"] += 1  # an answer without classes (regress): nothing to compare
                    continue
                counted["examples"] += 1
                versions[str(example.version)] += 1
                times.append(example.time)
                if writer is not None:
                    writer.write(to_example(example, text_key, answers).SerializeToString())
    return {"prefix": prefix, "files": list(paths), "requests": counted["requests"],
            "examples": counted["examples"], "skipped": counted["skipped"], "new_traffic": bool(paths),
            "first_time": min(times) if times else None, "last_time": max(times) if times else None,
            "versions": dict(sorted(versions.items(), key=lambda kv: int(kv[0])))}


def write_split(examples_uri: str, prefix: str, paths: List[str], text_key: str, label_key: str,
                classes_record) -> Dict:
    """Writes the `serving` split of the log files `paths` and its serving_logs.json under `examples_uri`; returns
    what serving_logs.json says."""
    import tensorflow as tf

    from components.runtime import storage

    folder = os.path.join(examples_uri, f"Split-{SPLIT}")
    tf.io.gfile.makedirs(folder)
    with tf.io.TFRecordWriter(os.path.join(folder, DATA_FILE), options="GZIP") as writer:
        summary = read_traffic(prefix, paths, text_key, label_key, classes_record, writer)
    storage.write_file(os.path.join(examples_uri, SUMMARY_FILE), json.dumps(summary, indent=1))
    return summary


def read_summary(examples_uri: str) -> Dict:
    """The serving_logs.json of a ServingLogsGen output ({} when there is none)."""
    from components.runtime import storage

    text = storage.read_text(os.path.join(examples_uri, SUMMARY_FILE))
    return json.loads(text) if text else {}


def no_new_traffic(prefix: str) -> str:
    return f"no new traffic: no request log under {prefix} that an earlier run has not read."


@tfx.dsl.components.component
def ServingLogsGen(
        examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
        prefix: tfx.dsl.components.Parameter[str],
        ledger: tfx.dsl.components.Parameter[str],
        text_key: tfx.dsl.components.Parameter[str],
        label_key: tfx.dsl.components.Parameter[str],
        label_names: tfx.dsl.components.Parameter[str]):
    """`prefix`: the request logs' filename prefix (TF Serving's logging_config). `ledger`: the folder of consumed
    files. `label_names`: the class names, as class_names.json holds them (JSON)."""
    from absl import logging

    paths = consumed_logs.new_files(prefix, ledger)
    summary = write_split(examples.uri, prefix, paths, text_key, label_key, json.loads(label_names))
    examples.split_names = json.dumps([SPLIT])
    examples.set_string_custom_property("file_format", "tfrecords_gzip")
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    logging.info("ServingLogsGen: %s", no_new_traffic(prefix) if not paths else
                 f"{summary['examples']} texts of {summary['requests']} requests from {len(paths)} files")


@tfx.dsl.components.component
def ServingLogsCommit(
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        ledger: tfx.dsl.components.Parameter[str],
        reported: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None):
    """Records the files ServingLogsGen read (`examples`) as consumed. `reported`: the output that reports on the
    traffic, only to run after it is published."""
    from absl import logging

    summary = read_summary(examples.uri)
    entry = consumed_logs.commit(ledger, examples.uri, summary.get("files", []), summary.get("requests", 0))
    logging.info("ServingLogsCommit: %s", f"consumed files recorded in {entry}" if entry else "nothing to record")
