"""A classical baseline for multi-task data: TF-IDF and logistic regression, one classifier per label column.

What a fine-tuned multi-task model has to beat. For each label column on its own, the rows that have a value in it
(an empty cell is a missing label, left out as the pipeline leaves it out of that task) train a logistic regression
on TF-IDF features of the text. The regularization C, the features (word 1-2-grams, or those plus character 2-5-grams)
and the class weights (none, or balanced against the class frequencies) are chosen on the eval split by macro F1
(the unweighted mean of the per-class F1 over the classes in the split's labels or predictions: most reviews are
positive and most conditions are `other` or birth control, so accuracy would favour the large classes); ties go to
the earlier grid entry. Then the chosen one is scored on eval and test:

    .venv/bin/python benchmarks/multitask_baseline.py   # the built-in drug_reviews: tasks rating and condition
    .venv/bin/python benchmarks/multitask_baseline.py --data-root DIR --label-column a,b --json baseline.json

DIR holds train/, eval/ and test/ folders of CSV files with a header row, as `pipeline/run_local.py --data-root`
takes them.
"""

from __future__ import annotations

import argparse
import collections
import csv
import itertools
import json
import sys
import time
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import FeatureUnion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data import assets, datasets  # noqa: E402

SPLITS = ("train", "eval", "test")
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
FEATURES = ("word", "word+char")
CLASS_WEIGHTS = (None, "balanced")


def read_split(folder: Path, text_column: str, label_columns: list) -> list:
    """Every row of the CSV files in `folder` as a dict of the text and label columns."""
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise SystemExit(f"error: no CSV file in {folder}")
    rows = []
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in [text_column, *label_columns] if c not in (reader.fieldnames or [])]
            if missing:
                raise SystemExit(f"error: {path} has no column {', '.join(missing)} (its header: {reader.fieldnames})")
            rows.extend({c: row[c] for c in [text_column, *label_columns]} for row in reader)
    return rows


def vectorizer(kind: str, min_df: int = 1):
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, strip_accents="unicode")
    if kind == "word":
        return word
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    return FeatureUnion([("word", word), ("char", char)])


def scores(truth: list, predicted: list) -> dict:
    return {"accuracy": round(accuracy_score(truth, predicted), 4),
            "macro_f1": round(f1_score(truth, predicted, average="macro", zero_division=0), 4)}


def run_task(data: dict, text_column: str, label: str, features_grid=FEATURES, c_grid=C_GRID, min_df: int = 1) -> dict:
    """Grid search on eval for one label column, then the chosen model's eval and test scores."""
    labelled = {s: [(r[text_column], r[label]) for r in rows if r[label].strip()] for s, rows in data.items()}
    texts = {s: [t for t, _ in rows] for s, rows in labelled.items()}
    truth = {s: [y for _, y in rows] for s, rows in labelled.items()}
    if len(set(truth["train"])) < 2:
        raise SystemExit(f"error: column {label!r} has fewer than two classes among the labelled training rows")
    best = None
    for kind in features_grid:
        features = vectorizer(kind, min_df).fit(texts["train"])
        x = {s: features.transform(texts[s]) for s in SPLITS}
        for c, weight in itertools.product(c_grid, CLASS_WEIGHTS):
            started = time.monotonic()
            model = LogisticRegression(C=c, class_weight=weight, max_iter=5000).fit(x["train"], truth["train"])
            eval_scores = scores(truth["eval"], list(model.predict(x["eval"])))
            print(f"  {label}: {kind} ({x['train'].shape[1]} features), C={c:g}, weights {weight or 'none'}: eval "
                  f"macro F1 {eval_scores['macro_f1']:.3f} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
            if best is None or eval_scores["macro_f1"] > best[0]["macro_f1"]:
                best = (eval_scores, {"features": kind, "C": c, "class_weight": weight or "none"},
                        scores(truth["test"], list(model.predict(x["test"]))))
    eval_scores, chosen, test_scores = best
    majority = collections.Counter(truth["train"]).most_common(1)[0][0]
    return {"task": label, "classes": len(set(truth["train"])), "rows": {s: len(labelled[s]) for s in SPLITS},
            "missing": {s: len(data[s]) - len(labelled[s]) for s in SPLITS},
            "chosen": chosen, "eval": eval_scores, "test": test_scores,
            "test_majority_accuracy": round(truth["test"].count(majority) / max(len(truth["test"]), 1), 4)}


def table(results: list) -> str:
    lines = ["| task | classes | labelled rows train/eval/test | chosen on eval | eval acc. | eval macro F1 | "
             "test acc. | test macro F1 | test majority acc. |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows = "/".join(str(r["rows"][s]) for s in SPLITS)
        chosen = f"{r['chosen']['features']}, C={r['chosen']['C']:g}, weights {r['chosen']['class_weight']}"
        lines.append(f"| {r['task']} | {r['classes']} | {rows} | {chosen} | {r['eval']['accuracy']:.3f} | "
                     f"{r['eval']['macro_f1']:.3f} | {r['test']['accuracy']:.3f} | {r['test']['macro_f1']:.3f} | "
                     f"{r['test_majority_accuracy']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path,
                        help="a folder with train/, eval/ and test/ CSV folders (default: the built-in drug_reviews)")
    parser.add_argument("--label-column", help="the label columns, comma-separated, one task each (default: the "
                                               f"built-in's {datasets.label_columns_of('drug_reviews')}; with "
                                               "--data-root: "
                                               f"{datasets.LABEL_COLUMN})")
    parser.add_argument("--text-column", default=datasets.TEXT_COLUMN, help="the text column (default: %(default)s)")
    parser.add_argument("--features", choices=FEATURES, action="append",
                        help="the features to try (repeatable; default: both). Character n-grams of long texts (e.g. "
                             "20newsgroups' posts) take long to fit: --features word keeps to word n-grams")
    parser.add_argument("--c", type=float, action="append", dest="c_grid",
                        help="a regularization strength C to try (repeatable; default: "
                             f"{', '.join(f'{c:g}' for c in C_GRID)})")
    parser.add_argument("--min-df", type=int, default=1,
                        help="keep word n-grams found in at least this many training texts (default: %(default)s; "
                             "2 or more shrinks the features of a large corpus several times over)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    features_grid = tuple(args.features or FEATURES)
    c_grid = tuple(args.c_grid or C_GRID)
    if any(c <= 0 for c in c_grid) or args.min_df < 1:
        parser.error("--c must be positive and --min-df at least 1")
    root = args.data_root or assets.ensure_dataset("drug_reviews")
    columns = args.label_column or datasets.label_columns_of("custom" if args.data_root else "drug_reviews")
    labels = [c.strip() for c in columns.split(",") if c.strip()]
    data = {s: read_split(root / s, args.text_column, labels) for s in SPLITS}
    results = [run_task(data, args.text_column, label, features_grid, c_grid, args.min_df) for label in labels]
    print(f"{root}: " + ", ".join(f"{len(data[s])} {s} rows" for s in SPLITS))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"data_root": str(root), "selection": "eval macro F1",
                                         "grid": {"C": c_grid, "features": features_grid, "min_df": args.min_df,
                                                  "class_weight": [w or "none" for w in CLASS_WEIGHTS]},
                                         "tasks": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
