"""Retraining on new spans, shared by tests/e2e/test_bad_inputs.py, test_spans.py and test_own_data.py (and the executed
Kubeflow spec's data): a small, easily learned dataset of review snippets written by the tests, the arguments of its
runs, and `Case`, a copy of the good run's pipeline root and serving folder to which a test adds a span-2. The runs
themselves are the `served` and `accepted` fixtures of tests/conftest.py.

It is a user's own data, as a user would give it: CSV files with columns of their own naming, given only through
--data-root, --text-column and --label-column, with no --schema. Its protection is the schema the first accepted run
froze under the pipeline root (components/validation/frozen_schema.py) with the default text checks; the built-in
datasets' curated schemas work the same way (ImportSchemaGen instead of the frozen file) and are run end to end by
tests/e2e/test_pipeline_e2e.py.
"""

import functools
import hashlib
import html
import json
import random
import shutil
from pathlib import Path

import support
from pipeline.dag import nodes
from support import refusal, run_local

TEXT, LABEL = "review", "verdict"  # the user's column names
GOOD = ["wonderful", "brilliant", "moving", "delightful", "superb", "charming", "gripping", "masterful"]
BAD = ["awful", "boring", "tedious", "clumsy", "dreadful", "lifeless", "bland", "painful"]
FILLER = ["the", "film", "story", "actors", "plot", "director", "scenes", "music", "ending", "cast", "script",
          "camera", "was", "is", "and", "with", "a", "quite", "really", "its"]
# Tiny model, checkpoint vocabulary (English words: no [UNK]), no schema; the first run is blessed whatever its
# accuracy. --max-seq-length is left to choose itself (auto) from the data.
ARGS = ["--text-column", TEXT, "--label-column", LABEL, "--pretrained", "none", "--model-size", "tiny",
        "--vocab", "checkpoint", "--batch-size", "16", "--learning-rate", "2e-3", "--min-accuracy", "0.0",
        "--min-macro-f1", "0.0"]
GOOD_RUN = ["--epochs", "3"]
N = 400
NEW_CLASS = "mixed"  # a class span-1 does not have: reviews that are neither (tests/e2e/test_own_data.py)
MIXED = ["uneven", "patchy", "inconsistent", "partly", "halfway", "flawed", "promising", "middling"]


def review(rng: random.Random, label: str, words=None) -> str:
    cue = {"fresh": GOOD, "rotten": BAD}.get(label, MIXED)
    picked = rng.choices(FILLER, k=words or rng.randint(6, 14)) + rng.sample(cue, 2)
    rng.shuffle(picked)
    return " ".join(picked)


def rows(n=N, seed=0, fresh_share=0.5, length=None, new_share=0.0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = "fresh" if rng.random() < fresh_share else "rotten"
        if rng.random() < new_share:
            label = NEW_CLASS
        out.append([review(rng, label, length), label])
    return out


# The data's CSV files, with its columns unless told otherwise.
write_csv = functools.partial(support.write_csv, header=(TEXT, LABEL))


def assert_actionable(message: str) -> None:
    """A refusal says what to do with something that exists: a flag of pipeline/run_local.py, a file or folder on
    this machine (the user's schema, the data file), or a section of the docs (`docs/x.md, 'Heading'`). Every
    reference made is checked, and there must be at least one, and a verb telling the user what to do."""
    import re

    from pipeline.run_local import build_parser
    from support import REPO

    options = {o for action in build_parser()._actions for o in action.option_strings}  # noqa: SLF001
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", message))
    assert flags <= options, f"flags that do not exist: {sorted(flags - options)} in: {message}"
    files = {m.rstrip(".,;:)") for m in re.findall(r"(?<![\w.])(/[^\s'\"]+)", message)}
    assert all(Path(f).exists() for f in files), f"files that do not exist: {files} in: {message}"
    sections = re.findall(r"(docs/[a-z-]+\.md), '([^']+)'", message)
    for doc, heading in sections:
        text = (REPO / doc).read_text(encoding="utf-8")
        assert re.search(rf"^#+ {re.escape(heading)}\s*$", text, re.M), f"no section {heading!r} in {doc}"
    assert flags or files or sections, f"no flag, file or docs section to act on in: {message}"
    verbs = (r"\b(pass|edit|add|remove|put|point|fill|fix|save|provide|use|wait|run|install|rename|name|close|"
             r"write|shorten|split|quote)\b")
    assert re.search(verbs, message, re.I), f"nothing says what to do in: {message}"


def assert_short(block: str, lines: int = 8, width: int = 300) -> None:
    """A refusal a person reads at a glance: a few lines (the problem first, then what to do), none of them long.
    The user's paths count as one word each: their length is the user's, not the wording's."""
    import re

    rows = [re.sub(r"(?<![\w.])/[^\s'\"]+", "PATH", row) for row in block.splitlines()]
    assert len(rows) <= lines and max(map(len, rows)) <= width, block


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
        self.baselines = {gate: snapshot(self.root / "baselines" / gate) for gate in (nodes.DATA_GATE, nodes.TEXT_GATE)}
        self.span = self.data / "span-2"

    def in_service(self) -> str:
        """The good run's pushed version, as this case's serving folder holds it (a copy)."""
        pushed = Path(self.good["pushed_dir"])
        return str(self.serving / pushed.parent.name / pushed.name)

    def run(self, *extra, data_root=None):
        self.proc = run_local(*ARGS, *extra, "--data-root", data_root or self.data, "--pipeline-root", self.root,
                              "--serving-dir", self.serving, "--summary-json", self.tmp / "summary.json")
        summary_file = self.tmp / "summary.json"
        self.summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
        return self.proc

    def assert_refused(self, kind: str, feature: str, *fragments, trained: bool = False):
        proc = self.proc
        assert proc.returncode == 2, (proc.returncode, proc.stderr[-4000:])
        block = refusal(proc.stderr)
        for fragment in fragments:
            assert fragment in block, block
        assert_short(block)
        assert_actionable(block)
        assert self.summary is not None and self.summary["error"], "no --summary-json written"
        if self.summary["components"]:  # the pipeline started: its report says first why it stopped
            page = (self.root / "report.html").read_text()
            assert f"This run stopped: {html.escape(self.summary['error'])}" in page
            assert "No training history: the run stopped before the Trainer." in page or trained
        report = json.loads((self.root / "anomalies.json").read_text())
        for anomalies in (self.summary["anomalies"], report["anomalies"]):
            assert any(kind in a["kind"].split(",") and a["feature"] == feature for a in anomalies), anomalies
        components = self.summary["components"]
        if not trained:
            assert nodes.TRAINER not in components, components
        assert nodes.PUSHER not in components and not self.summary["pushed"], components
        assert snapshot(self.serving) == self.before  # the model in service, byte for byte
        # Refused data never becomes a baseline (raw data the data gate accepted before the text gate refused it
        # is published by the data gate, as it passed there).
        data_passed = components.get(nodes.DATA_GATE, {}).get("state") == "COMPLETE"
        for gate, before in self.baselines.items():
            if gate == nodes.TEXT_GATE or not data_passed:
                assert snapshot(self.root / "baselines" / gate) == before, gate


def tiny_checkpoint(folder: Path) -> Path:
    """A Hugging Face-format checkpoint of the tiny preset with random weights and a vocabulary of the reviews'
    words (support/retraining.py), lower-cased."""
    from components.model import bert
    from support import checkpoints
    from support.retraining import BAD, FILLER, GOOD, MIXED

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(GOOD + BAD + FILLER + MIXED)), ",", "."]
    folder.parent.mkdir(parents=True, exist_ok=True)
    vocab = folder.parent / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    config = bert.preset_config("tiny", vocab_size=len(words), max_position_embeddings=64)
    return checkpoints.write_checkpoint(folder, config, checkpoints.hf_tensors(config), vocab=vocab)
