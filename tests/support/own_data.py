"""A user's own data, as the tests write it: five-class news-topic documents (a headline and two paragraphs, about
120 words: most are longer than 128 WordPiece tokens) in CSV files with the user's own column names, in span
folders. Shared by tests/e2e/test_own_data.py's runs; nothing here knows the pipeline's defaults.
"""

import functools
import random

import support

TEXT, LABEL = "body", "topic"  # the user's column names, given only through --text-column/--label-column
TOPICS = {
    "business": ["market", "shares", "profit", "investors", "revenue", "bank", "merger", "earnings", "trade", "prices"],
    "sports": ["match", "goal", "season", "coach", "players", "league", "championship", "score", "team", "fans"],
    "science": ["researchers", "study", "cells", "telescope", "experiment", "species", "climate", "data", "lab",
                "genes"],
    "politics": ["minister", "parliament", "election", "vote", "policy", "government", "senate", "campaign", "law",
                 "party"],
    "culture": ["film", "album", "museum", "festival", "novel", "artist", "theatre", "concert", "exhibition",
                "director"],
}
NEW_TOPIC = "weather"  # a class the first spans do not have
NEW_CUES = ["storm", "rain", "forecast", "temperatures", "winds", "snow", "flooding", "heatwave", "clouds", "drought"]
FILLER = ("the a of and to in on for with at by from this that it was is were will has have after before during "
          "while new first last year week today officials said reported according some many more most other "
          "people city country world local national early later also however because").split()


def document(rng: random.Random, topic: str, words: int = 120) -> str:
    cues = TOPICS.get(topic) or NEW_CUES

    def sentence(n):
        picked = rng.choices(FILLER, k=n - 3) + rng.sample(cues, 3)
        rng.shuffle(picked)
        return " ".join(picked).capitalize() + "."

    headline = " ".join(rng.sample(cues, 2) + rng.choices(FILLER, k=4)).title()
    body = [sentence(rng.randint(10, 16)) for _ in range(max(1, words // 13))]
    half = len(body) // 2
    return f"{headline}\n\n{' '.join(body[:half])}\n\n{' '.join(body[half:])}"


def rows(n: int, seed: int, shares=None, words: int = 120, new_topic: bool = False):
    """[text, label] rows; `shares` maps topic -> probability (default uniform); `new_topic` adds NEW_TOPIC."""
    rng = random.Random(seed)
    topics = list(TOPICS) + ([NEW_TOPIC] if new_topic else [])
    weights = [shares.get(t, 0.0) for t in topics] if shares else None
    out = []
    for _ in range(n):
        topic = rng.choices(topics, weights=weights)[0]
        out.append([document(rng, topic, words), topic])
    return out


# The data's CSV files, with its columns unless told otherwise.
write_csv = functools.partial(support.write_csv, header=(TEXT, LABEL))
