"""The run summary: what a run did, typed, built by one function (`summarize`) from the run's artifacts.

Every reader of a run's outcome reads this one record: the local runner's console and `--summary-json`
(`RunSummary.to_json`, whose keys are the field names), the run report's page (components/release/report_page.py),
and on Kubeflow the RunReport step (components/release/run_report.py). The local runner finds the artifacts in its ML
Metadata store (pipeline/local/record.py), the RunReport step is handed them as its inputs; both describe them as
`RunArtifacts` and the run's settings as `RunSetup`, so what a summary says cannot depend on where the run ran. The
meaning of each field is documented here, once (docs/pipeline.md points here).

Module-level imports are the standard library's: the artifacts' readers load TensorFlow and TFMA when they are read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """What the run was asked to do, from its PipelineConfig (pipeline/dag/config.py `PipelineConfig.run_setup`)."""

    dataset: str  # a built-in dataset's name, or "custom"
    data_root: str  # where its CSV files are (the subset's folder with --max-examples)
    schema: Optional[str]  # the schema the data was checked against, as the user knows it (None: none yet)
    schema_source: str  # "--schema", "curated", "frozen" or "none" (PipelineConfig.schema_source)
    model: str  # for people: "pretrained:<checkpoint folder>" or the --model-size, and the student's layers
    student_layers: int  # --student-layers (0: the fine-tuned model itself is released)
    model_size: str  # the checkpoint folder's name, or the --model-size preset
    max_seq_length: int  # the sequence length Transform pads every text to
    text_key: str  # the text column
    label_key: str  # the label column(s), as --label-column names them


@dataclasses.dataclass(frozen=True)
class RunArtifacts:
    """Where a run's artifacts are (URIs, local or on an object store) and the properties of them the summary reads.
    An artifact the run did not produce (a step that did not run, or one the Kubeflow RunReport is not given) is
    None."""

    statistics: Optional[str] = None  # StatisticsGen's
    # (the node that found them, URI, split names) of each validator's ExampleAnomalies
    anomalies: Sequence[Tuple[str, str, str]] = ()
    text_statistics: Optional[str] = None  # TextStatisticsGen's
    serving_check: Optional[str] = None  # ServingCheck's blessing
    evaluation: Optional[str] = None  # the Evaluator's ModelEvaluation
    blessed: Optional[bool] = None  # the Evaluator's ModelBlessing (None: no blessing was written)
    baseline_model: Optional[str] = None  # the version folder of the model in service it was compared with
    model: Optional[str] = None  # the Model judged: the Distiller's student when there is one, else the Trainer's
    card_model: Optional[str] = None  # ModelCardWriter's Model (the model with its card)
    pushed_dir: Optional[str] = None  # the version folder the Pusher published (None: not pushed)
    examples: Optional[str] = None  # ExampleGen's Examples (the test split, when no model card scored it)
    ingested_span: Optional[int] = None  # with span folders: the span ExampleGen ingested
    training_spans: Optional[List[int]] = None  # with span folders: the spans Transform and the Trainer read
    frozen_schema: Optional[str] = None  # the schema SchemaFreezer froze under the pipeline root, on a first run
    serving_skew: Optional[str] = None  # with --serving-logs: ServingSkewCheck's output (serving_skew.json)
    retrain_decision: Optional[str] = None  # with --retrain-if: RetrainDecision's output (decision.json)


# The keys --summary-json always holds (None when there is nothing to say); any other field is left out when None.
ALWAYS = ("dataset", "data_root", "schema", "schema_source", "model", "student_layers", "model_size",
          "max_seq_length", "wall_seconds", "components", "anomalies", "warnings", "blessed", "baseline_model",
          "pushed", "pushed_dir", "model_uri")


@dataclasses.dataclass
class RunSummary:
    """What a run did. With --summary-json, each field is a key of the JSON object (to_json)."""

    # What was asked (RunSetup's fields).
    dataset: Optional[str] = None
    data_root: Optional[str] = None
    schema: Optional[str] = None
    schema_source: Optional[str] = None
    model: Optional[str] = None
    student_layers: Optional[int] = None
    model_size: Optional[str] = None
    max_seq_length: Optional[int] = None
    # How long: the run's wall time in seconds (None on Kubeflow: its run's graph has it), and each step's state
    # (COMPLETE, CACHED, FAILED, ...) and seconds by node id, in the order they ran ({} on Kubeflow).
    wall_seconds: Optional[float] = None
    components: Dict[str, dict] = dataclasses.field(default_factory=dict)
    timings_note: Optional[str] = None  # where the timings are when `components` cannot have them
    # The data: examples per split (StatisticsGen), the spans, what the validators found (each anomaly a record
    # naming its step; each warning a sentence, said once), and the tokenized text's statistics per split.
    examples_per_split: Optional[Dict[str, int]] = None
    ingested_span: Optional[int] = None
    training_spans: Optional[List[int]] = None
    anomalies: List[dict] = dataclasses.field(default_factory=list)
    warnings: List[str] = dataclasses.field(default_factory=list)
    text_statistics: Optional[dict] = None
    frozen_schema: Optional[str] = None  # where a first run froze the schema later runs check against
    # The model: the serving check's report, the Evaluator's metrics (name -> value; "task/name" with several label
    # columns), whether it was blessed and, when not, why (one sentence per reason), why it could not be compared with
    # the model in service (its classes differ: evaluator.not_comparable_reason's record), that model's folder and
    # metrics.
    serving_check: Optional[dict] = None
    eval_metrics: Optional[Dict[str, Any]] = None
    blessed: bool = False
    not_blessed_because: Optional[List[str]] = None
    not_comparable: Optional[dict] = None
    baseline_model: Optional[str] = None
    baseline_eval_metrics: Optional[Dict[str, Any]] = None
    # The release: whether it was pushed and where, the Model artifact judged, the model card, the test split's
    # scores (accuracy, macro F1, examples, per task with several label columns; `model_dir`: the model scored).
    pushed: bool = False
    pushed_dir: Optional[str] = None
    model_uri: Optional[str] = None
    model_card: Optional[str] = None
    test_metrics: Optional[dict] = None
    # With --serving-logs, what the model in service met since the last run (components/validation/serving_skew.py):
    # `requests` read (and `examples`, their texts), `files`, `first_time` and `last_time` (seconds since the epoch),
    # `versions` (texts per answering version), `new_traffic`, `compared` (false without a model in service), and
    # `skew_found` with `crossed` (each check crossed: `check`, and a `description` naming the threshold); `classes`
    # (answered against trained shares per label column), `token_histogram` (training and serving shares per bucket
    # of tokens per text), `serving_text` and `training_text` (their shares and percentiles), `sample` (the CSV of
    # the texts furthest from training, when skew was found) and the `verdict` in one sentence.
    serving: Optional[dict] = None
    # With --retrain-if (components/validation/retrain_decision.py): the conditions `asked`, which `held`, whether
    # there was a `model_in_service`, whether the run would `train`, and `why`, in one sentence.
    retrain: Optional[dict] = None
    # Written afterwards: the run report's file, and the one-line reason a run stopped (None when it finished).
    report: Optional[str] = None
    error: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        """The summary as --summary-json writes it: every field of ALWAYS, and each other field that says something."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None or f.name in ALWAYS}


def not_comparable_text(note: dict) -> str:
    """Why the model was not compared with the model in service (evaluator.not_comparable_reason's record)."""
    added = [c for c in note["candidate_classes"] if c not in note["baseline_classes"]]
    dropped = [c for c in note["baseline_classes"] if c not in note["candidate_classes"]]
    change = "; ".join(part for part in (f"new: {', '.join(added)}" if added else "",
                                         f"gone: {', '.join(dropped)}" if dropped else "") if part) or "reordered"
    if note.get("accepted"):
        return (f"the model in service has other classes ({change}): judged on the absolute gates alone "
                "(--accept-new-classes)")
    return (f"not comparable with the model in service, whose classes differ ({change}); if the schema gained a "
            "class on purpose, run again with --accept-new-classes")


def _read_json(path: str) -> Optional[Any]:
    from components.runtime import storage

    text = storage.read_text(path)
    return None if text is None else json.loads(text)


def _data(artifacts: RunArtifacts) -> dict:
    from components.release.run_facts import anomalies_and_warnings, split_counts
    from components.validation.text_stats import SUMMARY_FILE

    anomalies, warnings = anomalies_and_warnings(list(artifacts.anomalies))
    return {"examples_per_split": split_counts(artifacts.statistics) if artifacts.statistics else None,
            "ingested_span": artifacts.ingested_span, "training_spans": artifacts.training_spans,
            "anomalies": anomalies, "warnings": warnings,
            "text_statistics": (_read_json(os.path.join(artifacts.text_statistics, SUMMARY_FILE))
                                if artifacts.text_statistics else None),
            "frozen_schema": artifacts.frozen_schema}


def _evaluation(artifacts: RunArtifacts) -> dict:
    from components.release.evaluator import not_comparable_reason
    from components.release.model_metrics import evaluator_metrics
    from components.release.run_facts import validation_failures
    from components.release.serving_check import read_report

    found: Dict[str, Any] = {"serving_check": read_report(artifacts.serving_check) if artifacts.serving_check else None,
                             "blessed": bool(artifacts.blessed), "baseline_model": artifacts.baseline_model}
    evaluation = artifacts.evaluation
    if not evaluation:
        return found
    found["eval_metrics"] = evaluator_metrics(evaluation)
    found["not_comparable"] = not_comparable_reason(evaluation)
    if artifacts.blessed is False:
        found["not_blessed_because"] = validation_failures(evaluation, found["eval_metrics"])
        if found["not_comparable"]:
            found["not_blessed_because"].insert(0, not_comparable_text(found["not_comparable"]))
    if artifacts.baseline_model and not found["not_comparable"]:
        found["baseline_eval_metrics"] = evaluator_metrics(evaluation, "baseline")  # the model in service's
    return found


def _release(artifacts: RunArtifacts, setup: RunSetup) -> dict:
    from components.release.model_card import CARD_JSON
    from components.release.model_metrics import read_split, test_metrics
    from components.tasks import label_columns

    pushed_dir = artifacts.pushed_dir
    found: Dict[str, Any] = {"pushed": pushed_dir is not None, "pushed_dir": pushed_dir, "model_uri": artifacts.model}
    model_dir = pushed_dir or (os.path.join(artifacts.model, "Format-Serving") if artifacts.model else None)
    card_file = os.path.join(artifacts.card_model, CARD_JSON) if artifacts.card_model else None
    card = _read_json(card_file) if card_file else None
    if card is not None:  # the model card scored the test split already
        found["model_card"] = os.path.join(pushed_dir, "assets.extra", CARD_JSON) if pushed_dir else card_file
        found["test_metrics"] = {**(card.get("test_metrics") or {}), "model_dir": model_dir}
    elif model_dir and artifacts.examples:  # no card (the run stopped before it): the model scores the test split
        texts, labels = read_split(artifacts.examples, "test", setup.text_key, setup.label_key)
        found["test_metrics"] = {**test_metrics(model_dir, texts, labels, columns=list(label_columns(setup.label_key)),
                                                text_key=setup.text_key),
                                 "model_dir": model_dir}
    return found


def _serving(artifacts: RunArtifacts) -> Optional[dict]:
    if not artifacts.serving_skew:
        return None
    from components.validation.serving_skew import read_report

    return read_report(artifacts.serving_skew)


def _retrain(artifacts: RunArtifacts) -> Optional[dict]:
    if not artifacts.retrain_decision:
        return None
    from components.validation.retrain_decision import read_decision

    return read_decision(artifacts.retrain_decision)


def summarize(artifacts: RunArtifacts, setup: RunSetup, components: Optional[Dict[str, dict]] = None,
              wall_seconds: Optional[float] = None, warnings: Sequence[str] = (),
              error: Optional[str] = None) -> RunSummary:
    """The run summary from the run's artifacts and its setup; `components`: each step's state and seconds (None:
    the orchestrator keeps them); `warnings`: the input checks' (the validators' follow them); `error`: why the run
    stopped."""
    data = _data(artifacts)
    data["warnings"] = [*warnings, *data["warnings"]]
    return RunSummary(
        **{f.name: getattr(setup, f.name) for f in dataclasses.fields(RunSummary) if hasattr(setup, f.name)},
        wall_seconds=None if wall_seconds is None else round(wall_seconds, 1),
        components=dict(components or {}),
        timings_note=None if components is not None else "Each step's timing is in the Kubeflow run's graph.",
        **data, **_evaluation(artifacts), **_release(artifacts, setup), serving=_serving(artifacts),
        retrain=_retrain(artifacts), error=error)


def refused(dataset: str, data_root: Optional[str], problem: dict, error: str) -> RunSummary:
    """The summary of a run the input checks refused before any step ran: the one problem, as an anomaly."""
    return RunSummary(dataset=dataset, data_root=data_root, anomalies=[problem], error=error)

