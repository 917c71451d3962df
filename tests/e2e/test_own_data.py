"""A user's own data, without --schema, gets the built-in datasets' protection (issue: own-data protection).

The matrix of bad spans runs in test_bad_inputs.py on support/retraining.py's data, given as a user's own CSV files;
here: what the first run froze, a legitimately new class after the user edits the frozen schema as the README says,
and a first run on news-length documents with the default data flags.
"""

import json
import re
from pathlib import Path

from pipeline.dag import nodes
from support import OWN_DATA_UPSTREAM, own_data, run_local
from support.retraining import LABEL, NEW_CLASS, Case, N, rows, snapshot, write_csv


def test_the_first_accepted_run_froze_a_curated_schema(served):
    base, summary = served
    frozen = base / "root" / "schema" / "schema.pbtxt"
    assert summary["frozen_schema"] == str(frozen) and summary["schema_source"] == "none"
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(str(frozen))
    label = next(f for f in schema.feature if f.name == LABEL)
    assert list(next(d for d in schema.string_domain if d.name == label.domain).value) == ["fresh", "rotten"]
    assert label.presence.min_fraction == 1.0 and list(label.not_in_environment) == ["SERVING"]
    assert label.drift_comparator.infinity_norm.threshold == 0.2
    assert set(schema.default_environment) == {"TRAINING", "SERVING"}
    text = next(f for f in schema.feature if f.name == "review")
    assert text.presence.min_fraction == 1.0
    checks = (frozen.parent / "text_checks.toml").read_text()
    assert "max_truncated_share = 0.5" in checks and "max_unk_share = 0.05" in checks
    # The model's label ids follow the frozen domain.
    assert json.loads((Path(summary["model_uri"]) / "class_names.json").read_text()) == ["fresh", "rotten"]


def test_a_new_class_is_accepted_after_editing_the_frozen_schema(served, tmp_path):
    case = Case(served, tmp_path)
    write_csv(case.span / "reviews.csv", rows(N, seed=21, new_share=0.15))
    frozen = case.root / "schema" / "schema.pbtxt"
    # What the README says: add the class at the end of the label's string_domain.
    text = frozen.read_text()
    frozen.write_text(text.replace('  value: "rotten"\n', f'  value: "rotten"\n  value: "{NEW_CLASS}"\n'))

    # Without --accept-new-classes, the 3-class model is trained but not comparable with the 2-class model in
    # service: not blessed, and the summary says why (TFMA would have failed comparing them).
    proc = case.run()
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = case.summary
    assert summary["anomalies"] == [] and summary["blessed"] is False and summary["pushed"] is False
    reason = summary["not_blessed_because"][0]
    assert "not comparable with the model in service" in reason and f"new: {NEW_CLASS}" in reason
    assert "--accept-new-classes" in reason
    assert summary["components"][nodes.SCHEMA_CURATOR]["state"] == "COMPLETE"  # the edit reached the pipeline
    assert snapshot(case.serving) == case.before

    # With it, the same run (everything up to the Evaluator from the cache) is judged on the absolute gates alone.
    proc = case.run("--accept-new-classes")
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = case.summary
    for node in OWN_DATA_UPSTREAM + (nodes.TRAINER,):
        assert summary["components"][node]["state"] == "CACHED", (node, summary["components"])
    assert summary["blessed"] is True and summary["pushed"] is True, summary.get("not_blessed_because")
    assert summary["not_comparable"]["accepted"] is True
    assert "judged on the absolute gates alone" in proc.stdout
    classes = json.loads((Path(summary["model_uri"]) / "class_names.json").read_text())
    assert classes == ["fresh", "rotten", NEW_CLASS]  # the old classes keep their ids


def test_a_first_run_on_news_length_documents_with_the_default_data_flags(tmp_path):
    """Headline and two paragraphs, about 120 words: most are longer than 128 tokens. Nothing about the data is
    given but the columns: the sequence length is chosen from it, and nothing is refused."""
    data = tmp_path / "news"
    own_data.write_csv(data / "span-1" / "news.csv", own_data.rows(500, seed=1))
    proc = run_local("--data-root", data, "--text-column", own_data.TEXT, "--label-column", own_data.LABEL,
                     "--pretrained", "none", "--model-size", "tiny", "--vocab", "checkpoint", "--epochs", "2",
                     "--batch-size", "16", "--learning-rate", "2e-3", "--pipeline-root", tmp_path / "root",
                     "--serving-dir", tmp_path / "serving", "--summary-json", tmp_path / "summary.json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    # Every row counted, and said so: without train/ eval/ test/ folders the training split is drawn during the run.
    chosen = re.search(r"--max-seq-length auto: (\d+) tokens, which holds (\d+) of the 500 texts whole .*the texts "
                       r"are the rows of every split, as the training split is drawn from them", proc.stdout)
    assert chosen, proc.stdout[:2000]
    length = int(chosen.group(1))
    assert length > 128 and length % 32 == 0 and summary["max_seq_length"] == length
    assert int(chosen.group(2)) >= 0.98 * 500
    assert summary["anomalies"] == [] and summary["pushed"], summary
    assert summary["eval_metrics"]["macro_f1_score"] >= 0.5
    assert (tmp_path / "root" / "schema" / "schema.pbtxt").is_file()
