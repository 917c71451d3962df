"""RetrainDecision: whether this run trains, with --retrain-if (docs/serving_loop.md, "Deciding whether to train").

The conditions a user may ask for (`CONDITIONS`):
- `new-data`: the data this run would train on is not the data the data gate last accepted. BaselineLookup hands the
  run the last accepted statistics with their publication record, which names the StatisticsGen output they were
  accepted from (`produced_by`); unchanged data is answered from TFX's cache with that same output, so the same URI
  means the same data. A new span, changed files or --no-cache make new statistics, hence new data.
- `serving-skew`: ServingSkewCheck found the traffic of the model in service unlike its training data.
A run trains when any asked condition holds, and always when there is no model in service (nothing to keep).
The decision is a `File` artifact whose custom property `train` (1 or 0) the pipeline's condition reads (a TFX Cond
around everything after the checks: pipeline/dag/pipeline.py), and its `decision.json` says which conditions held
and why, in one sentence, for the run summary's `retrain` section.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import json
import os
from typing import Dict, Optional, Sequence

from tfx import v1 as tfx
from tfx.types.experimental.simple_artifacts import File

from components.baselines import lookup
from components.settings.serving_loop import NEW_DATA, SERVING_SKEW

DECISION_FILE = "decision.json"
TRAIN_PROPERTY = "train"  # the custom property the pipeline's condition reads


def new_data(statistics_uri: str, accepted) -> bool:
    """Whether the statistics of this run's data are not the ones the data gate last accepted."""
    if not lookup.found(accepted):
        return True
    published = lookup.lookup_record(accepted).get("published") or {}
    return published.get("produced_by", "").rstrip("/") != statistics_uri.rstrip("/")


def decide(asked: Sequence[str], held: Dict[str, bool], model_in_service: bool) -> dict:
    """The decision record: train or not, which asked conditions held, and why in one sentence."""
    met = [c for c in asked if held.get(c)]
    train = bool(met) or not model_in_service
    names = {NEW_DATA: "new labelled data", SERVING_SKEW: "serving skew"}
    if not model_in_service:
        why = "there is no model in service yet"
    elif met:
        why = " and ".join(names[c] for c in met) + " (--retrain-if " + ",".join(asked) + ")"
    else:
        why = ("no " + " and no ".join(names[c] for c in asked) + " (--retrain-if " + ",".join(asked) +
               "): the model in service stays")
    return {"asked": list(asked), "held": {c: bool(held.get(c)) for c in asked}, "model_in_service": model_in_service,
            "train": train, "why": ("training: " if train else "no training: ") + why}


def read_decision(uri: str) -> Optional[dict]:
    from components.runtime import storage

    text = storage.read_text(os.path.join(uri, DECISION_FILE))
    return json.loads(text) if text else None


@tfx.dsl.components.component
def RetrainDecision(
        statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        data_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
        baseline_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        decision: tfx.dsl.components.OutputArtifact[File],
        conditions: tfx.dsl.components.Parameter[str],
        skew: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None):
    """`statistics`: StatisticsGen's, this run's data. `data_statistics`, `baseline_model`: BaselineLookup's. `skew`:
    ServingSkewCheck's (with serving-skew). `conditions`: --retrain-if, comma-separated."""
    from absl import logging

    from components.runtime import storage

    asked = [c for c in conditions.split(",") if c]
    held = {NEW_DATA: new_data(statistics.uri, data_statistics)}
    if skew is not None:
        from components.validation.serving_skew import read_report

        held[SERVING_SKEW] = bool((read_report(skew.uri) or {}).get("skew_found"))
    record = decide(asked, held, lookup.found(baseline_model))
    storage.write_file(os.path.join(decision.uri, DECISION_FILE), json.dumps(record, indent=1))
    decision.set_int_custom_property(TRAIN_PROPERTY, int(record["train"]))
    logging.info("RetrainDecision: %s", record["why"])
