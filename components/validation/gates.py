"""The data gates: stop a run when a validator found anomalies.

The validators (ExampleValidator, DriftValidator, TextStatisticsGen) only record anomalies; they never fail.
A gate reads the anomalies of every split and raises `DataValidationError` with a few short lines, a problem a line
(each feature, kind and the splits it was found in) and then what to do, so nothing downstream runs: the pipeline
has one gate before Transform (the raw data) and one before the Trainer (the tokenized text). A gate that passes
republishes the statistics it accepted as `validated_statistics`: the next run's drift checks compare against the
last accepted data, never against data that was refused.

Warnings: a column that the schema does not know (SCHEMA_NEW_COLUMN) does not stop the run. Transform reads the
raw data through the schema and serving requests carry only the text, so an extra column can never reach the
model; it is reported in the run summary.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import os
import re
from typing import Dict, List

from absl import logging
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import standard_artifact_utils

from components.baselines.lookup import resolve_under_root
from components.runtime import versioned_folders

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes under each Split-<name>/ folder
STATISTICS_FILE = "FeatureStats.pb"  # what StatisticsGen writes under each Split-<name>/ folder
# Anomaly kinds reported without stopping the run: a column the schema does not know; texts cut at the sequence
# length when there is no baseline yet (a first run: components/validation/text_stats.py).
WARNING_KINDS = frozenset({"SCHEMA_NEW_COLUMN", "TRUNCATED_TEXTS_REPORTED"})


class DataValidationError(RuntimeError):
    """The data does not match the schema; the message says where and how."""


def load_anomalies(uri: str, split_names: str) -> Dict[str, anomalies_pb2.Anomalies]:
    """The anomalies of each split of an ExampleAnomalies artifact, by split name."""
    import tensorflow as tf  # deferred: importing TF is slow and this module is imported at pipeline build

    result = {}
    for split in standard_artifact_utils.decode_split_names(split_names):
        path = os.path.join(uri, f"Split-{split}", ANOMALIES_FILE)
        if not tf.io.gfile.exists(path):
            continue
        proto = anomalies_pb2.Anomalies()
        proto.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        result[split] = proto
    return result


# What TFDV's terser anomalies mean for CSV text data, added to their description.
HINTS = {
    "INVALID_FEATURE_SHAPE": "some examples have no value: an empty CSV field",
    "FEATURE_TYPE_LOW_FRACTION_PRESENT": "some examples have no value: an empty CSV field",
    "FEATURE_TYPE_LOW_NUMBER_PRESENT": "too few examples have a value",
}


def _record(split: str, feature: str, info: anomalies_pb2.AnomalyInfo) -> dict:
    # Checks of our own (TFDV's CUSTOM_VALIDATION type) name themselves in short_description, e.g. EMPTY_TEXTS.
    kinds = [r.short_description if r.type == anomalies_pb2.AnomalyInfo.CUSTOM_VALIDATION and r.short_description
             else anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason] or ["UNKNOWN"]
    description = _with_hints(info.description or info.short_description, kinds)
    record = {"split": split, "feature": feature, "kind": ",".join(kinds), "description": description}
    if len(info.reason) > 1:  # each reason's own sentence, for a refusal that says one problem a line
        record["reasons"] = [{"kind": kind, "description": _with_hints(r.description or r.short_description or kind,
                                                                       [kind])}
                             for kind, r in zip(kinds, info.reason)]
    return record


def _with_hints(description: str, kinds: List[str]) -> str:
    hints = sorted({HINTS[k] for k in kinds if k in HINTS})
    return f"{description} ({'; '.join(hints)})" if hints else description


def anomaly_problems(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies]) -> List[dict]:
    """Flattens anomalies to records {split, feature, kind, description} (also written to the run summary)."""
    problems = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            problems.append(_record(split, feature, info))
        if anomalies.HasField("dataset_anomaly_info"):
            problems.append(_record(split, "(dataset)", anomalies.dataset_anomaly_info))
    return problems


def write_anomalies(artifact, anomalies_by_split: Dict[str, anomalies_pb2.Anomalies]) -> None:
    """Writes an ExampleAnomalies artifact the way ExampleValidator does (Split-<name>/SchemaDiff.pb)."""
    import tensorflow as tf

    for split, anomalies in anomalies_by_split.items():
        folder = os.path.join(artifact.uri, f"Split-{split}")
        tf.io.gfile.makedirs(folder)
        with tf.io.gfile.GFile(os.path.join(folder, ANOMALIES_FILE), "wb") as f:
            f.write(anomalies.SerializeToString())
    artifact.split_names = standard_artifact_utils.encode_split_names(sorted(anomalies_by_split))


def is_warning(problem: dict) -> bool:
    return set(problem["kind"].split(",")) <= WARNING_KINDS


DEFAULT_FIX = ("update the schema or the text_checks.toml beside it (see docs/protections.md, 'Where the thresholds "
               "live')")


def _by_feature_and_kind(problems: List[dict]) -> List[List[dict]]:
    """The problems, one per reason, grouped by feature and kind in their first appearance's order."""
    groups: Dict[tuple, List[dict]] = {}
    for problem in problems:
        for reason in problem.get("reasons") or [problem]:
            one = {**problem, "kind": reason["kind"], "description": reason["description"]}
            groups.setdefault((one["feature"], one["kind"]), []).append(one)
    return list(groups.values())


_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")  # a figure of a description, with its percent sign


def _said_once(group: List[dict]) -> str:
    """One problem of one feature, with every split it was found in: the description once when the splits share
    it, else each split's."""
    first = group[0]
    if len(group) == 1:
        return f"feature '{first['feature']}' in split '{first['split']}': {first['description']} [{first['kind']}]"
    splits = ", ".join(f"'{p['split']}'" for p in group)
    if len({p["description"] for p in group}) == 1:
        return f"feature '{first['feature']}' in splits {splits}: {first['description']} [{first['kind']}]"
    head = f"feature '{first['feature']}' [{first['kind']}] in splits {splits}:"
    if len({_NUMBER.sub("#", p["description"]) for p in group}) == 1:  # the same sentence with other figures
        figures = [_NUMBER.findall(p["description"]) for p in group]
        differ = [i for i in range(len(figures[0])) if len({f[i] for f in figures}) > 1]
        others = ", ".join(f"{' / '.join(f[i] for i in differ)} in '{p['split']}'" for f, p in zip(figures[1:],
                                                                                                  group[1:]))
        return f"{head} {first['description']} (in '{first['split']}'; {others})"
    each = "; ".join(f"in '{p['split']}', {p['description']}" for p in group)
    return f"{head} {each}"


def said_once(problems: List[dict]) -> List[str]:
    """A sentence per problem (feature and kind), each said once for all the splits it was found in."""
    return [_said_once(group) for group in _by_feature_and_kind(problems)]


VOCABULARY_KINDS = frozenset({"UNKNOWN_TOKENS", "LOW_WORD_COVERAGE"})  # the vocabulary, not the data, is wrong


def describe_problems(problems: List[dict], fix: str = "", vocabulary_fix: str = "") -> str:
    """A few short lines: that nothing was trained, each problem on its own line (the splits it was found in said
    once), then what to do. `fix` says what to change when the data changed legitimately, naming the user's own files
    (the pipeline knows which schema it validated against); `vocabulary_fix`, when the problems include the
    vocabulary's (its coverage of the words, its [UNK] share), comes first: the remedy is usually another
    vocabulary, not other data. The continuation lines are indented, so the console shows one refusal block."""
    lines = ["the data failed validation, so nothing was trained or pushed:"]
    lines += [f"  {sentence}" for sentence in said_once(problems)]
    kinds = {kind for p in problems for kind in p["kind"].split(",")}
    data_fix = f"fix the data, or, if it changed legitimately, {fix or DEFAULT_FIX}."
    if vocabulary_fix and kinds & VOCABULARY_KINDS:
        lines += [f"  what to do: {vocabulary_fix}.", f"  otherwise: {data_fix}"]
    else:
        lines.append(f"  what to do: {data_fix}")
    return "\n".join(lines)


@tfx.dsl.components.component
def DataValidationGate(
        anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
        statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        validated_statistics: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        more_anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies] = None,
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples] = None,
        fix: tfx.dsl.components.Parameter[str] = "",
        vocabulary_fix: tfx.dsl.components.Parameter[str] = "",
        baselines_dir: tfx.dsl.components.Parameter[str] = ""):
    """Fails the run when a validator reported any anomaly that is not a warning; else republishes `statistics`, and
    publishes them as the next version under `baselines_dir` (relative: under the pipeline root), where the next
    run's BaselineLookup finds them (components/baselines/), with the span of `examples` (the examples ingested:
    TFX's StatisticsGen does not carry the span over). `fix`: what the refusal message tells the user to change
    when the data changed legitimately; `vocabulary_fix`: what to do when the vocabulary does not fit the texts."""
    import tensorflow as tf

    problems = anomaly_problems(load_anomalies(anomalies.uri, anomalies.split_names))
    if more_anomalies is not None:
        problems += anomaly_problems(load_anomalies(more_anomalies.uri, more_anomalies.split_names))
    errors = [p for p in problems if not is_warning(p)]
    if errors:
        raise DataValidationError(describe_problems(errors, fix, vocabulary_fix))
    for split in standard_artifact_utils.decode_split_names(statistics.split_names):
        source = os.path.join(statistics.uri, f"Split-{split}")
        target = os.path.join(validated_statistics.uri, f"Split-{split}")
        tf.io.gfile.makedirs(target)
        for name in tf.io.gfile.listdir(source):
            tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name), overwrite=True)
    validated_statistics.split_names = statistics.split_names
    validated_statistics.span = span_of(examples if examples is not None else statistics)
    if baselines_dir:
        publish_accepted(validated_statistics, resolve_under_root(baselines_dir, validated_statistics.uri),
                         produced_by=statistics.uri)


def span_of(artifact) -> int:
    """An artifact's span: TFX keeps it as a property or, for ExampleGen's examples, as a custom property."""
    span = int(getattr(artifact, "span", 0) or 0)
    if not span and hasattr(artifact, "has_custom_property") and artifact.has_custom_property("span"):
        span = int(artifact.get_int_custom_property("span"))
    return span


def publish_accepted(statistics, base: str, produced_by: str) -> str:
    """Publishes accepted `statistics` as the next baseline version under `base`, with the run (the URI of the
    statistics, which names the run's execution locally and its run id on Kubeflow), span and time."""
    span = getattr(statistics, "span", None)
    record = {"gate": os.path.basename(base.rstrip("/")), "produced_by": produced_by,
              "span": int(span) if span is not None else None, "split_names": statistics.split_names,
              "accepted_at": versioned_folders.now()}
    folder = versioned_folders.publish(statistics.uri, base, record)
    logging.info("%s: accepted statistics published as the next baseline, %s", record["gate"], folder)
    return folder
