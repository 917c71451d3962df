"""Classical baselines for two texts and for scores: TF-IDF with logistic regression (classes) or ridge regression (a
number), on the pair's texts concatenated and on pair features.

What a fine-tuned BERT on two texts, or with a regression head, has to beat. Each feature set below is one row; for
each, the regularization (C for logistic regression, alpha for ridge) and, for classes, the class weights (none, or
balanced) are chosen on the eval split, and the chosen model is scored on eval and test. Ties go to the earlier grid
entry. The feature sets, all word 1-2-gram TF-IDF (sublinear term frequencies, rows scaled to unit length):

    text         one text column: its TF-IDF vector
    concat       the two texts joined with a space: one vector for the pair
    cosine       the cosine of the two texts' vectors (one vectorizer fitted on both columns' training texts) alone
    pair         the element-wise product of the two vectors and their cosine
    pair+diff    those and the element-wise |a - b|
    concat+pair  concat and pair side by side

Classes are chosen by eval macro F1 (the pipeline's Evaluator's metric) and reported with accuracy, and for 0/1
labels the F1 of class 1 (as GLUE reports MRPC and QQP). Scores are chosen by eval mean squared error and reported
with Pearson's and Spearman's correlation, as GLUE reports STS-B. The reference rows are the training split's
majority class, or its mean score:

    .venv/bin/python benchmarks/pair_baselines.py --data-root DIR --text-column text_a,text_b --label-column label
    .venv/bin/python benchmarks/pair_baselines.py --data-root DIR --text-column text_a,text_b --label-column score \\
        --task regression --json baselines.json

DIR holds train/, eval/ and test/ folders of CSV files with a header row, as `pipeline/run_local.py --data-root`
takes them (benchmarks/pairs_aclsum.py, scores_lee.py and scores_vader.py write such folders).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse, stats
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multitask_baseline import C_GRID, CLASS_WEIGHTS, SPLITS, read_split  # noqa: E402

ALPHA_GRID = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
PAIR_FEATURES = ("concat", "cosine", "pair", "pair+diff", "concat+pair")
SINGLE_FEATURES = ("text",)


def tfidf(min_df: int) -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, strip_accents="unicode")


def feature_blocks(texts: dict, min_df: int) -> dict:
    """{split: {block: matrix}} for `texts` = {split: [tuple of one or two texts]}; the vectorizers learn on train."""
    if len(texts["train"][0]) == 1:
        vec = tfidf(min_df).fit([t for t, in texts["train"]])
        return {s: {"text": vec.transform([t for t, in rows])} for s, rows in texts.items()}
    joined = tfidf(min_df).fit([f"{a} {b}" for a, b in texts["train"]])
    shared = tfidf(min_df).fit([t for pair in texts["train"] for t in pair])
    blocks = {}
    for s, rows in texts.items():
        a = shared.transform([a for a, _ in rows])
        b = shared.transform([b for _, b in rows])
        product = a.multiply(b).tocsr()
        cosine = sparse.csr_matrix(np.asarray(product.sum(axis=1)))  # rows are unit length: the sum is the cosine
        blocks[s] = {"concat": joined.transform([f"{a} {b}" for a, b in rows]), "cosine": cosine,
                     "product": product, "diff": abs(a - b).tocsr()}
    return blocks


BLOCKS = {"text": ("text",), "concat": ("concat",), "cosine": ("cosine",), "pair": ("product", "cosine"),
          "pair+diff": ("product", "cosine", "diff"), "concat+pair": ("concat", "product", "cosine")}


def features(blocks: dict, kind: str):
    return sparse.hstack([blocks[b] for b in BLOCKS[kind]], format="csr")


def class_scores(truth: list, predicted: list) -> dict:
    result = {"accuracy": round(accuracy_score(truth, predicted), 4),
              "macro_f1": round(f1_score(truth, predicted, average="macro", zero_division=0), 4)}
    if set(truth) <= {"0", "1"}:
        result["f1_1"] = round(f1_score(truth, predicted, pos_label="1", zero_division=0), 4)
    return result


def regression_scores(truth, predicted) -> dict:
    varies = np.ptp(predicted) > 0  # a constant prediction has no correlation (the reference row's mean)
    return {"mse": round(float(mean_squared_error(truth, predicted)), 4),
            "pearson": round(float(stats.pearsonr(truth, predicted)[0]), 4) if varies else None,
            "spearman": round(float(stats.spearmanr(truth, predicted)[0]), 4) if varies else None}


def fitted(task: str, value: float, weight, x, y):
    if task == "classification":
        return LogisticRegression(C=value, class_weight=weight, max_iter=5000).fit(x, y)
    return Ridge(alpha=value).fit(x, y)


def evaluated(task: str, model, x, y) -> dict:
    if task == "classification":
        return class_scores(y, list(model.predict(x)))
    return regression_scores(y, model.predict(x))


def choose(kind: str, x: dict, y: dict, task: str) -> dict:
    """The grid entry with the best eval score for one feature set (macro F1 for classes, the mean squared error for
    scores), and its eval and test scores."""
    best = None
    grid = itertools.product(C_GRID, CLASS_WEIGHTS) if task == "classification" else ((a, None) for a in ALPHA_GRID)
    for value, weight in grid:
        started = time.monotonic()
        model = fitted(task, value, weight, x["train"], y["train"])
        chosen = {"C": value, "class_weight": weight or "none"} if task == "classification" else {"alpha": value}
        eval_scores = evaluated(task, model, x["eval"], y["eval"])
        print(f"  {kind} ({x['train'].shape[1]} features), {chosen}: eval {eval_scores} "
              f"({time.monotonic() - started:.1f} s)", file=sys.stderr)
        if best is None or (eval_scores["macro_f1"] > best["eval"]["macro_f1"] if task == "classification"
                            else eval_scores["mse"] < best["eval"]["mse"]):
            best = {"features": kind, "n_features": x["train"].shape[1], "chosen": chosen, "eval": eval_scores,
                    "test": evaluated(task, model, x["test"], y["test"])}
    return best


def reference(y: dict, task: str) -> dict:
    """The training split's majority class, or its mean score, predicted for every row."""
    if task == "classification":
        majority = collections.Counter(y["train"]).most_common(1)[0][0]
        return {"features": f"majority class ({majority})", "n_features": 0, "chosen": {},
                **{s: class_scores(y[s], [majority] * len(y[s])) for s in ("eval", "test")}}
    mean = float(np.mean(y["train"]))
    return {"features": f"training mean ({mean:.3f})", "n_features": 0, "chosen": {},
            **{s: regression_scores(y[s], np.full(len(y[s]), mean)) for s in ("eval", "test")}}


def run(data: dict, text_columns: list, label: str, task: str, kinds, min_df: int = 1) -> list:
    texts = {s: [tuple(r[c] for c in text_columns) for r in rows] for s, rows in data.items()}
    if task == "classification":
        y = {s: [r[label] for r in rows] for s, rows in data.items()}
        if len(set(y["train"])) < 2:
            raise SystemExit(f"error: column {label!r} has fewer than two classes in the training split")
    else:
        try:
            y = {s: np.array([float(r[label]) for r in rows]) for s, rows in data.items()}
        except ValueError as e:
            raise SystemExit(f"error: column {label!r} holds a value that is not a number ({e}); --task regression "
                             "needs a number in every row") from None
    blocks = feature_blocks(texts, min_df)
    results = [reference(y, task)]
    for kind in kinds:
        results.append(choose(kind, {s: features(blocks[s], kind) for s in SPLITS}, y, task))
    return results


def table(results: list, task: str) -> str:
    names = ("accuracy", "macro_f1", "f1_1") if task == "classification" else ("mse", "pearson", "spearman")
    names = [n for n in names if n in results[0]["eval"]]
    header = " | ".join(f"{s} {n.replace('_', ' ')}" for s in ("eval", "test") for n in names)
    lines = [f"| features | chosen on eval | {header} |", "|---|---|" + "---|" * (2 * len(names))]
    for r in results:
        chosen = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in r["chosen"].items())
        cells = " | ".join("–" if r[s][n] is None else f"{r[s][n]:.4f}" if n == "mse" else f"{r[s][n]:.3f}"
                           for s in ("eval", "test") for n in names)
        lines.append(f"| {r['features']} | {chosen or '–'} | {cells} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="a folder with train/, eval/ and test/ folders")
    parser.add_argument("--text-column", default="text_a,text_b",
                        help="one text column, or two separated by a comma (default: %(default)s)")
    parser.add_argument("--label-column", default="label", help="the class or score column (default: %(default)s)")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification")
    parser.add_argument("--features", action="append", choices=PAIR_FEATURES + SINGLE_FEATURES,
                        help="a feature set to try (repeatable; default: every one that fits the text columns)")
    parser.add_argument("--min-df", type=int, default=1, help="keep n-grams found in at least this many training "
                                                              "texts (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    text_columns = [c.strip() for c in args.text_column.split(",") if c.strip()]
    if len(text_columns) not in (1, 2):
        parser.error(f"--text-column takes one or two column names, not {len(text_columns)}")
    allowed = SINGLE_FEATURES if len(text_columns) == 1 else PAIR_FEATURES
    kinds = tuple(args.features or allowed)
    if set(kinds) - set(allowed):
        parser.error(f"--features {', '.join(sorted(set(kinds) - set(allowed)))} needs "
                     f"{'two text columns' if len(text_columns) == 1 else 'one text column'}")
    if args.min_df < 1:
        parser.error("--min-df must be at least 1")
    data = {s: read_split(args.data_root / s, text_columns[0], text_columns[1:] + [args.label_column])
            for s in SPLITS}
    started = time.monotonic()
    results = run(data, text_columns, args.label_column, args.task, kinds, args.min_df)
    print(f"{args.data_root}: " + ", ".join(f"{len(data[s])} {s} rows" for s in SPLITS)
          + f"; {time.monotonic() - started:.0f} s")
    print(table(results, args.task))
    if args.json:
        args.json.write_text(json.dumps({
            "data_root": str(args.data_root), "text_columns": text_columns, "label_column": args.label_column,
            "task": args.task, "rows": {s: len(data[s]) for s in SPLITS},
            "selection": "eval macro F1" if args.task == "classification" else "eval mean squared error",
            "grid": {"C": C_GRID, "class_weight": [w or "none" for w in CLASS_WEIGHTS]} if args.task ==
            "classification" else {"alpha": ALPHA_GRID}, "min_df": args.min_df, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
