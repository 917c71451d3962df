"""The real pipeline, end to end, through `pipeline/run_local.py` on a small subset of the default dataset.

A second run into the same pipeline root (the cache, the baseline model) is checked by test_bad_inputs.py's
degraded-model test, and a second span by test_spans.py: each full run costs about a minute of the suite.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.dag import nodes
from support import QUICK_CHECKPOINT, UPSTREAM, VALIDATION


def test_first_run_is_blessed_pushed_and_summarised(first_run):
    paths, summary, proc = first_run
    assert summary["dataset"] == "rotten_tomatoes"
    assert summary["model_size"] == QUICK_CHECKPOINT.name
    counts = summary["examples_per_split"]
    assert set(counts) == {"train", "eval", "test"}
    assert sum(counts.values()) == 2000 and counts["train"] > counts["eval"] > 0 and counts["test"] > 0
    for node in UPSTREAM + VALIDATION + (nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert summary["components"][node]["state"] == "COMPLETE", node
        assert summary["components"][node]["seconds"] >= 0
    assert nodes.PRETRAINER not in summary["components"]  # off unless asked (tests/e2e/test_pretraining.py)
    metrics = summary["eval_metrics"]
    for key in ("sparse_categorical_accuracy", "example_count", "macro_auc", "macro_f1_score",
                "precision[class_0]", "recall[class_1]"):
        assert key in metrics, (key, sorted(metrics))
    assert metrics["example_count"] == counts["eval"]
    assert summary["blessed"] is True and summary["pushed"] is True
    assert summary["baseline_model"] is None
    pushed = Path(summary["pushed_dir"])
    # TF Serving layout: SERVING_DIR/MODEL_NAME/VERSION/saved_model.pb
    assert pushed.parent == paths["serving_dir"] / "bert_classifier"
    assert pushed.name.isdigit() and (pushed / "saved_model.pb").is_file()
    test = summary["test_metrics"]
    assert test["examples"] == counts["test"]
    assert 0.0 <= test["accuracy"] <= 1.0 and 0.0 <= test["macro_f1"] <= 1.0
    assert "blessed: True" in proc.stdout


def test_a_run_leaves_no_copy_of_tfx_and_no_generated_source_in_the_temp_folder(first_run):
    # TFX's Beam executors would copy TFX's 52 MB package into a temp folder per Beam step and never delete it
    # (pipeline/dag/beam_dependencies.py); autograph's generated sources are deleted by an exit handler that os._exit
    # would skip (components/runtime/quiet_exit.py). What the run leaves in its TMPDIR is at most small files.
    paths, _, _ = first_run
    copies = sorted(str(p.parent.parent) for p in paths["temp"].glob("*/build/tfx/setup.py"))
    assert copies == []
    generated = sorted(p.name for p in paths["temp"].rglob("__autograph_generated_file*"))
    assert generated == [], f"{len(generated)} autograph sources left behind"
    left = sum(p.stat().st_size for p in paths["temp"].rglob("*") if p.is_file())
    assert left < 5 * 2**20, f"{left} bytes left in the run's temp folder"


def test_pushed_model_classifies_raw_strings_in_a_fresh_process(first_run):
    _, summary, _ = first_run
    code = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "out = m.signatures['serving_default'](text=tf.constant(['a moving, beautifully acted film', '', "
        "'dull and lifeless'] ))\n"
        "print(json.dumps({'labels': [l.decode() for l in out['label'].numpy()],"
        " 'sums': [float(s) for s in tf.reduce_sum(out['probabilities'], -1).numpy()],"
        " 'mods': sorted(k for k in sys.modules if k.split('.')[0] in ('components', 'pipeline', 'tfx',"
        " 'tensorflow_transform'))}))\n")
    proc = subprocess.run([sys.executable, "-c", code, summary["pushed_dir"]], capture_output=True, text=True,
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1"}, cwd="/", timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["labels"][0] == "fresh" and result["labels"][2] == "rotten"  # the model learned: clear reviews
    assert result["labels"][1] in ("fresh", "rotten")  # an empty text gets an answer too
    assert all(abs(s - 1.0) < 1e-4 for s in result["sums"])
    assert result["mods"] == []  # nothing of the project or of TFX was needed


def test_default_console_is_one_line_per_step_and_the_summary(first_run):
    """No library noise on screen: TensorFlow/absl/Beam logs go to the log file whose path is printed."""
    paths, summary, proc = first_run
    lines = (proc.stdout + proc.stderr).splitlines()
    noise = [line for line in lines if line.startswith(("WARNING", "E0000", "I0000", "Instructions for updating"))]
    assert noise == [], noise
    assert proc.stderr.strip() == "", proc.stderr[-3000:]
    log = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("log file:"))
    assert Path(log).parent == paths["pipeline_root"] / "logs" and Path(log).stat().st_size > 0
    # One line when each step starts and one when it ends, numbered, with the key figures.
    steps = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    started = [line for line in steps if line.endswith(" ...")]
    ended = [line for line in steps if " done in " in line]
    total = int(steps[0].split("/")[1].split("]")[0])
    assert len(started) == len(ended) == total == len(steps) // 2
    by_node = {line.split("] ", 1)[1].split(" ")[0]: line for line in ended}
    assert set(by_node) >= {nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR,
                            nodes.PUSHER}
    counts = summary["examples_per_split"]
    assert f"examples eval {counts['eval']}, test {counts['test']}, train {counts['train']}" in \
        by_node[nodes.STATISTICS_GEN]
    assert by_node[nodes.EXAMPLE_VALIDATOR].endswith(": 0 anomalies")
    assert "blessed" in by_node[nodes.EVALUATOR] and "pushed to " in by_node[nodes.PUSHER]
    assert any(line.startswith("Trainer: epoch 2/2 done") for line in lines)  # the Trainer's progress,
    # announced in steps, estimated from the first timed steps, then the time left
    assert any(line.startswith("Trainer: 2 epoch(s) of ") and " steps in all" in line for line in lines)
    assert any(line.startswith("Trainer: ") and " s a step on this machine after 5 timed steps: about " in line
               for line in lines)
    assert any(line.startswith("Trainer: epoch 1/2 done") and "left for 1 more epoch(s))" in line for line in lines)
    assert lines[-3].startswith("pushed: ") and lines[-2].startswith("model card: ")  # the summary closes the output,
    assert lines[-1] == f"report: {paths['pipeline_root'] / 'report.html'}"  # with the report's path
    # the warm-up file holds a predict request per text signature and a classify request; the step counts them all
    from components.module_files import warmup

    requests = warmup.read_requests(summary["pushed_dir"])
    assert len(requests) >= 4 and "classification" in {name for name, _ in requests}, requests
    assert "ServingCheck done in" in by_node[nodes.SERVING_CHECK] and \
        f"{len(requests)} warm-up requests answered" in by_node[nodes.SERVING_CHECK]


def test_the_evaluator_knows_a_models_classes(first_run, tmp_path):
    """What the Evaluator compares before it compares models: the classes, from class_names.json, or, for a model
    trained before the Trainer wrote that file, their number (the serving model's output width)."""
    import shutil

    from components.release.evaluator import UNKNOWN_NAME, class_names_of, same_classes

    _, summary, _ = first_run
    assert class_names_of(summary["model_uri"]) == ["fresh", "rotten"]
    older = tmp_path / "model"
    shutil.copytree(Path(summary["model_uri"]) / "Format-Serving", older / "Format-Serving")
    assert class_names_of(str(older)) == [UNKNOWN_NAME, UNKNOWN_NAME]
    assert same_classes(class_names_of(str(older)), ["fresh", "rotten"])
    assert not same_classes(class_names_of(str(older)), ["fresh", "rotten", "mixed"])
    assert not same_classes(["fresh", "rotten"], ["rotten", "fresh"])
    assert class_names_of(str(tmp_path / "nothing")) is None
