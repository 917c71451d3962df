"""A small Korean corpus of short film reviews, shared by tests/integration/test_learned_vocab.py (a real TF Transform
run) and tests/e2e/test_korean_run.py (a whole pipeline run): common words, two labels, and what lower-casing
normalization makes of Hangul."""

import random
import unicodedata

from components import features

NEUTRAL = ["영화", "배우", "연기", "이야기", "음악", "장면", "감독", "주인공", "오늘", "정말", "너무", "그리고",
           "이번", "처음", "친구", "가족", "극장", "시간", "결말", "대사"]
POSITIVE = ["재미있어요", "최고", "감동", "훌륭한", "좋아요", "추천", "멋진", "아름다운", "행복", "웃음"]
NEGATIVE = ["지루해요", "별로", "실망", "최악", "싫어요", "아쉬운", "지겨운", "엉망", "졸려요", "후회"]
COMMON_WORDS = NEUTRAL + POSITIVE + NEGATIVE
LABELS = ("긍정", "부정")  # positive, negative
UNK_ID = features.SPECIAL_TOKENS.index(features.UNK)


def korean_corpus(n: int, seed: int) -> list[dict]:
    """`n` short reviews: neutral words and sentiment words of the label, in random order, with punctuation."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % 2]
        words = rng.sample(NEUTRAL, 3) + rng.sample(POSITIVE if label == LABELS[0] else NEGATIVE, 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words) + rng.choice([".", "!", "?", "..."]), "label": label})
    return rows


def nfd(text: str) -> str:
    """What lower-casing normalization makes of Hangul: syllables decomposed into conjoining jamo."""
    return unicodedata.normalize("NFD", text)
