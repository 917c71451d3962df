"""Retraining on new spans, shared by test_bad_inputs.py and test_spans.py: a small, easily learned dataset of
review snippets written by the tests, the arguments of its runs, and `Case`, a copy of the good run's pipeline root
and serving folder to which a test adds a span-2. The runs themselves are the `served` and `accepted` fixtures of
conftest.py.
"""

import csv
import hashlib
import json
import random
import shutil
from pathlib import Path

from conftest import run_local

SCHEMA = "schema/rotten_tomatoes/schema.pbtxt"  # labels fresh/rotten, label drift comparator, text_checks.toml
GOOD = ["wonderful", "brilliant", "moving", "delightful", "superb", "charming", "gripping", "masterful"]
BAD = ["awful", "boring", "tedious", "clumsy", "dreadful", "lifeless", "bland", "painful"]
FILLER = ["the", "film", "story", "actors", "plot", "director", "scenes", "music", "ending", "cast", "script",
          "camera", "was", "is", "and", "with", "a", "quite", "really", "its"]
# Tiny model, checkpoint vocabulary (English words: no [UNK]); the first run is blessed whatever its accuracy.
ARGS = ["--schema", SCHEMA, "--pretrained", "none", "--model-size", "tiny", "--vocab", "checkpoint",
        "--max-seq-length", "64", "--batch-size", "16", "--learning-rate", "2e-3", "--min-accuracy", "0.0"]
GOOD_RUN = ["--epochs", "3"]
N = 400


def review(rng: random.Random, label: str, words=None) -> str:
    cue = GOOD if label == "fresh" else BAD
    picked = rng.choices(FILLER, k=words or rng.randint(6, 14)) + rng.sample(cue, 2)
    rng.shuffle(picked)
    return " ".join(picked)


def rows(n=N, seed=0, fresh_share=0.5, length=None):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "fresh" if rng.random() < fresh_share else "rotten"
        out.append([review(rng, label, length), label])
    return out


def write_csv(path: Path, data, header=("text", "label")):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(data)
    return path


def snapshot(folder: Path) -> dict:
    """Relative path -> sha256 of every file under folder: the model in service, byte for byte."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Case:
    """A copy of the good run's pipeline root and serving folder, and a data root with its span-1."""

    def __init__(self, served, tmp_path: Path):
        base, self.good = served
        self.tmp, self.served_data = tmp_path, base / "data"
        self.root, self.serving, self.data = tmp_path / "root", tmp_path / "serving", tmp_path / "data"
        shutil.copytree(base / "root", self.root)
        shutil.copytree(base / "serving", self.serving)
        shutil.copytree(base / "data" / "span-1", self.data / "span-1")
        self.before = snapshot(self.serving)
        self.span = self.data / "span-2"

    def run(self, *extra, data_root=None):
        self.proc = run_local(*ARGS, *extra, "--data-root", data_root or self.data, "--pipeline-root", self.root,
                              "--serving-dir", self.serving, "--summary-json", self.tmp / "summary.json")
        summary_file = self.tmp / "summary.json"
        self.summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
        return self.proc

    def assert_refused(self, kind: str, feature: str, *fragments, trained: bool = False):
        proc = self.proc
        assert proc.returncode == 2, (proc.returncode, proc.stderr[-4000:])
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, proc.stderr[-4000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
        for fragment in fragments:
            assert fragment in errors[0], errors[0]
        assert self.summary is not None and self.summary["error"], "no --summary-json written"
        report = json.loads((self.root / "anomalies.json").read_text())
        for anomalies in (self.summary["anomalies"], report["anomalies"]):
            assert any(kind in a["kind"].split(",") and a["feature"] == feature for a in anomalies), anomalies
        components = self.summary["components"]
        if not trained:
            assert "Trainer" not in components, components
        assert "Pusher" not in components and not self.summary["pushed"], components
        assert snapshot(self.serving) == self.before  # the model in service, byte for byte
