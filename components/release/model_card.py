"""ModelCardWriter: the model the Pusher pushes, with its model card in `assets.extra/` (ignored by TF Serving).

The card (`model_card.json`, and the same as `model_card.html`) says what the model is and where it comes from: the
examples and span it was trained on, the checkpoint, the Trainer's settings and training history (a distilled
student's teacher and distillation settings too), the eval metrics (TFMA) and the test split's (the exported model on
the raw test texts; each task's, with several label columns), the model in service it was compared with, the blessing,
and the date. Google's model-card-toolkit (and TFX's ModelCardGenerator on top of it) would write a similar card, but
its releases pin absl-py < 1.1 and tensorflow-model-analysis < 0.42, which conflict with the TFX 1.16 stack this
project pins, so the fields are written here.

Its output is a new Model artifact: the candidate's serving model with the card added (the candidate's own artifact is
never modified). Only a blessed model is copied; an unblessed one gets the card alone (the Pusher pushes nothing).
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import datetime
import html
import json
import os

from tfx import v1 as tfx
from tfx.utils import io_utils

CARD_JSON = "model_card.json"
CARD_HTML = "model_card.html"
SERVING = "Format-Serving"


def build_card(model_uri: str, evaluation_uri: str, blessed: bool, baseline: str, examples_uri: str,
               examples_span: int, text_key: str, label_key: str, facts: dict) -> dict:
    """The card's fields, from the Trainer's model artifact, the Evaluator's outputs and ExampleGen's examples."""
    import tensorflow as tf

    from components import features
    from components.features import TRAINING_HISTORY_FILE
    from components.release import model_metrics
    from components.tasks import label_columns

    def read(path):
        return json.loads(tf.io.gfile.GFile(path).read()) if tf.io.gfile.exists(path) else None

    training = read(os.path.join(model_uri, TRAINING_HISTORY_FILE)) or {}
    settings = training.get("settings", {})
    history = training.get("history", {})
    kept = training.get("kept_epoch")
    distilled = training.get("distillation") or {}
    eval_metrics = model_metrics.evaluator_metrics(evaluation_uri)
    texts, labels = model_metrics.read_split(examples_uri, "test", text_key, label_key)
    columns = label_columns(label_key)
    test = (model_metrics.test_metrics(os.path.join(model_uri, SERVING), texts, labels, columns=columns,
                                       text_key=text_key) if texts
            else {"examples": 0})
    return {
        "name": facts.get("model_name", "bert_classifier"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pipeline": facts.get("pipeline_name"),
        "data": {"dataset": facts.get("dataset"), "data_root": facts.get("data_root"), "examples": examples_uri,
                 "span": examples_span, "text_column": text_key, "label_column": label_key},
        "classes": read(os.path.join(model_uri, features.CLASS_NAMES_FILE)),
        "checkpoint": (settings.get("pretrained_dir") or f"none (trained from scratch, {settings.get('model_size')})")
        + (", adapted to the data by the masked-LM stage" if settings.get("adapted_encoder") else "")
        + (f"; distilled into a student of {distilled['student_layers']} of its {distilled['teacher_layers']} "
           f"encoder layers" if distilled else ""),
        "settings": settings,
        "training": {"epochs_run": len(history.get("loss", [])), "kept_epoch": kept,
                     "eval_accuracy_per_epoch": history.get("val_accuracy"),
                     **({"distillation": {k: distilled[k] for k in (
                         "teacher", "teacher_layers", "student_layers", "copied_from_teacher_layers",
                         "teacher_eval_accuracy", "student_eval_accuracy", "settings")}} if distilled else {})},
        "metrics": model_metrics.headline(eval_metrics, test),  # per task with several label columns
        "eval_metrics": eval_metrics,
        "test_metrics": test,
        "baseline_model": baseline or None,
        "blessed": blessed,
    }


def card_html(card: dict) -> str:
    """The card as a small self-contained page."""
    def rows(mapping):
        return "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v) if isinstance(v, (dict, list)) else str(v))}</td></tr>"  # noqa: E501
                       for k, v in mapping.items())
    sections = [("Model", {k: card[k] for k in ("name", "date", "pipeline", "classes", "checkpoint", "blessed",
                                                  "baseline_model")}),
                ("Metrics", card["metrics"]), ("Data", card["data"]), ("Training", card["training"]),
                ("Settings", card["settings"])]
    body = "".join(f"<h2>{title}</h2><table>{rows(values)}</table>" for title, values in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Model card: '
            f'{html.escape(card["name"])}</title><style>body{{font-family:system-ui,sans-serif;max-width:50rem;'
            f'margin:auto;padding:1rem}}th,td{{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #ddd;'
            f'vertical-align:top}}</style></head><body><h1>Model card: {html.escape(card["name"])}</h1>{body}'
            f'</body></html>')


def blessing_facts(blessing):
    """(blessed, the model in service's URI or "") of the Evaluator's ModelBlessing artifact."""
    blessed = blessing.has_custom_property("blessed") and blessing.get_int_custom_property("blessed") == 1
    baseline = (blessing.get_string_custom_property("baseline_model")
                if blessing.has_custom_property("baseline_model") else "")
    return blessed, baseline


def _span(artifact) -> int:
    try:
        return int(artifact.span)
    except (AttributeError, TypeError, ValueError):
        return 0


@tfx.dsl.components.component
def ModelCardWriter(
        model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
        blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        card_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
        text_key: tfx.dsl.components.Parameter[str],
        label_key: tfx.dsl.components.Parameter[str],
        facts: tfx.dsl.components.Parameter[str] = "{}"):
    """Writes the model card; copies the blessed serving model beside it, with the card in its assets.extra/.
    `facts`: JSON of what the card names that no artifact holds (dataset, data root, pipeline and model names)."""
    import tensorflow as tf

    from components.module_files.warmup import ASSETS_EXTRA

    blessed, baseline = blessing_facts(blessing)
    card = build_card(model.uri, evaluation.uri, blessed, baseline, examples.uri, _span(examples), text_key,
                      label_key, json.loads(facts))
    page = card_html(card)
    targets = [card_model.uri]
    if card["blessed"]:
        target = os.path.join(card_model.uri, SERVING)
        io_utils.copy_dir(os.path.join(model.uri, SERVING), target)
        targets.append(os.path.join(target, ASSETS_EXTRA))
    for folder in targets:
        tf.io.gfile.makedirs(folder)
        with tf.io.gfile.GFile(os.path.join(folder, CARD_JSON), "w") as f:
            f.write(json.dumps(card, indent=1))
        with tf.io.gfile.GFile(os.path.join(folder, CARD_HTML), "w") as f:
            f.write(page)
