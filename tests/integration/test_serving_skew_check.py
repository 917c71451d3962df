"""ServingSkewCheck's whole check (components/validation/serving_skew.py `check`) on real parts: a real TF Transform
run of the project's preprocessing_fn on English reviews (support/tft_run.py) exported by the Trainer's own
ServingModule with its `transform_features` signature, the training statistics made by TFDV from that run's counts,
and traffic written by the server's writer and read back by ServingLogsGen's code. In-domain traffic crosses
nothing; Korean traffic, which the English vocabulary cannot represent, is found skewed and sampled. The whole
pipeline with a trained model served on 127.0.0.1 is tests/e2e/test_serving_loop.py's."""

import csv
import json
import random

import numpy as np
import pandas as pd
import pytest

from components import features, tasks
from components.ingestion import serving_logs
from components.tf_serving import request_log
from components.validation import serving_skew
from components.validation.text_checks import DEFAULT_CHECKS
from components.validation.text_stats import SUMMARY_FILE, clipped, summarize
from support import korean, logged_traffic

pytestmark = pytest.mark.slow  # a TF Transform run, ~20 s

CLASSES = ["neg", "pos"]
MAX_LEN = 32
WORDS = ["the", "film", "was", "a", "good", "bad", "story", "actors", "great", "boring", "plot", "music", "and",
         "really", "not", "funny", "long", "ending", "loved", "it"]


def english(n: int, seed: int) -> list:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))) for _ in range(n)]


def _artifact(kind, uri, splits=()):
    artifact = kind()
    artifact.uri = str(uri)
    if splits:
        artifact.split_names = json.dumps(list(splits))
    return artifact


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(model artifact, data statistics, text statistics) as BaselineLookup would hand them."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    import tensorflow_transform as tft
    import tf_keras as keras
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

    from components.module_files.serving_module import ServingModule
    from components.settings.data import DataSettings
    from components.settings.transform import TransformSettings
    from pipeline.data.assets import ensure_checkpoint
    from support.tft_run import analyze_and_transform

    tmp = tmp_path_factory.mktemp("served")
    texts = english(300, 0)
    rows = [{"text": t, "label": CLASSES[i % 2]} for i, t in enumerate(texts)]
    spec = {"text": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.string)}
    data = DataSettings("text", "label", label_names=tuple(CLASSES),
                        vocab_file=str(ensure_checkpoint() / "vocab.txt"), lower_case=True)
    out, out_dir = analyze_and_transform(tmp, rows, spec, data, TransformSettings(max_seq_length=MAX_LEN))
    # The raw data's metadata, which TFX's Transform writes beside the transform graph (the module reads its spec).
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata.from_feature_spec(spec), str(out_dir / "metadata"))

    inputs = keras.Input([1], dtype=tf.float32)
    module = ServingModule(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs)),
                           tft.TFTransformOutput(str(out_dir)), "text", tasks.tasks_of("label", CLASSES),
                           lambda t: tf.cast(tf.reshape(t[features.NUM_WORDS_KEY], [-1, 1]), tf.float32))
    model_dir = tmp / "model"
    tf.saved_model.save(module, str(model_dir / "Format-Serving"),
                        signatures={"transform_features": module.transform_features.get_concrete_function()})

    counts = {k: np.asarray([r[k] for r in out], np.int64) for k in features.TEXT_STAT_KEYS}
    data_stats, text_stats = tmp / "data_statistics", tmp / "text_statistics"
    for folder, frame in ((data_stats, pd.DataFrame(rows)), (text_stats, pd.DataFrame(clipped(counts, MAX_LEN)))):
        (folder / "Split-train").mkdir(parents=True)
        stats = tfdv.generate_statistics_from_dataframe(frame)
        (folder / "Split-train" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    (text_stats / SUMMARY_FILE).write_text(json.dumps({"train": summarize(counts, MAX_LEN)}))
    from tfx.types import standard_artifacts

    return (_artifact(standard_artifacts.Model, model_dir),
            _artifact(standard_artifacts.ExampleStatistics, data_stats, ["train"]),
            _artifact(standard_artifacts.ExampleStatistics, text_stats, ["train"]))


def traffic(tmp_path, texts):
    """The texts sent to the model as REST predicts, logged by the server's writer, read as ServingLogsGen does."""
    from tfx.types import standard_artifacts

    prefix = str(tmp_path / "logs" / "bert")
    logged_traffic.predict_batches(prefix, [texts[i:i + 4] for i in range(0, len(texts), 4)])
    examples = _artifact(standard_artifacts.Examples, tmp_path / "examples", ["serving"])
    serving_logs.write_split(examples.uri, prefix, request_log.log_files(prefix), "text", "label", CLASSES)
    return examples


def test_in_domain_traffic_is_not_skewed(served, tmp_path):
    model, data_stats, text_stats = served
    examples = traffic(tmp_path, english(120, 1))
    report = serving_skew.check(examples, model, data_stats, text_stats, str(tmp_path / "out"), "text", "label",
                                CLASSES, DEFAULT_CHECKS)
    assert report["compared"] is True and report["examples"] == 120
    assert [c["check"] for c in report["crossed"]] == [], report["crossed"]
    assert report["skew_found"] is False and "sample" not in report
    assert report["serving_text"]["unk_share"] == 0.0
    assert report == serving_skew.read_report(str(tmp_path / "out"))


def test_korean_traffic_is_skewed_names_what_crossed_and_writes_the_sample(served, tmp_path):
    model, data_stats, text_stats = served
    texts = [r["text"] for r in korean.korean_corpus(80, 3)]
    examples = traffic(tmp_path, texts)
    report = serving_skew.check(examples, model, data_stats, text_stats, str(tmp_path / "out"), "text", "label",
                                CLASSES, DEFAULT_CHECKS)
    crossed = {c["check"] for c in report["crossed"]}
    assert report["skew_found"] is True and {"LOW_WORD_COVERAGE", "TOKEN_COUNT_DRIFT"} <= crossed, report["crossed"]
    with open(report["sample"], newline="") as f:
        sample = list(csv.DictReader(f))
    assert len(sample) == 80 and {r["text"] for r in sample} == set(texts)
    assert int(sample[0]["unk_tokens"]) >= int(sample[-1]["unk_tokens"])
    assert "differ from its training data" in report["verdict"] and report["sample"] in report["verdict"]


def test_without_a_model_in_service_the_traffic_is_counted_not_compared(served, tmp_path):
    _, data_stats, text_stats = served
    examples = traffic(tmp_path, english(8, 2))
    report = serving_skew.check(examples, None, data_stats, text_stats, str(tmp_path / "out"), "text", "label",
                                CLASSES, DEFAULT_CHECKS)
    assert report["compared"] is False and report["skew_found"] is False and report["examples"] == 8
    assert "no model in service" in report["verdict"]
