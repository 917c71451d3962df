"""Several label columns, room by room on small in-memory inputs: the task names (components/tasks.py), the front
door's checks per column (components/ingestion/csv_checks.py, pipeline/cli/labels.py), the heads and their masked loss
(components/model/heads.py), the curated schema of a run without one (frozen_schema.curate) and the figures per task
(model_metrics.headline). The whole run: tests/e2e/test_multi_task.py."""

from pathlib import Path

import pytest

from components import tasks
from components.ingestion import csv_checks, csv_files
from components.ingestion.csv_files import DataFileError
from pipeline.cli import labels
from pipeline.cli.errors import InputError
from pipeline.data import subsets
from support import write_csv

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schema" / "drug_reviews" / "schema.pbtxt"


def write_rows(path: Path, rows, header=("text", "rating", "condition")) -> Path:
    return write_csv(path, rows, header)


# components/tasks.py ----------------------------------------------------------------------------------------------

def test_one_label_column_keeps_the_plain_names_and_several_carry_the_column():
    (one,) = tasks.tasks_of("label", ("fresh", "rotten"))
    assert (one.label_id_key, one.output("probabilities"), one.name) == ("label_id", "probabilities", "")
    rating, condition = tasks.tasks_of("rating, condition", (), (("neg", "pos"), ("acne", "pain", "other")))
    assert rating.label_id_key == "label_id_rating" and condition.output("label") == "condition/label"
    assert condition.weight_key == "label_weight_condition" and condition.classes == ("acne", "pain", "other")
    assert tasks.class_names_record([one]) == ["fresh", "rotten"]
    assert tasks.class_names_record([rating, condition]) == {"rating": ["neg", "pos"],
                                                             "condition": ["acne", "pain", "other"]}
    assert tasks.classes_by_task(["a", "b"]) == {"": ("a", "b")}
    assert tasks.task_of_output("rating/probabilities") == "rating" and tasks.task_of_output("label") is None


@pytest.mark.parametrize("given, message", [
    ("rating,,condition", "empty column name"), ("rating,rating", "names rating more than once"),
    ("a/b,c", "holds '/'")])
def test_bad_label_columns_are_refused_in_one_sentence(given, message):
    with pytest.raises(ValueError, match=message):
        tasks.label_columns(given)


def test_task_weights_are_one_per_column_and_default_to_equal():
    assert tasks.parse_weights("", ["a", "b"]) == (1.0, 1.0)
    assert tasks.parse_weights("2, 0.5", ["a", "b"]) == (2.0, 0.5)
    for text, message in (("1", "gives 1 weight"), ("x,1", "must be numbers"), ("0,0", "one must be above 0"),
                          ("-1,2", "must not be negative")):
        with pytest.raises(ValueError, match=message):
            tasks.parse_weights(text, ["a", "b"])


def test_the_settings_hold_one_domain_per_label_column():
    from components.settings.base import SettingsError
    from components.settings.data import DataSettings
    from components.settings.trainer import TrainerSettings

    settings = DataSettings(vocab_file="v.txt", label_key="rating,condition",
                            task_label_names=(("neg", "pos"), ("acne", "pain")))
    again = DataSettings.from_custom_config(settings.to_custom_config())
    assert again == settings and again.task_label_names == (("neg", "pos"), ("acne", "pain"))
    assert [t.classes for t in again.tasks] == [("neg", "pos"), ("acne", "pain")]
    with pytest.raises(SettingsError, match="has 1 domain\\(s\\) for the 2 label column"):
        DataSettings(vocab_file="v.txt", label_key="rating,condition", task_label_names=(("neg", "pos"),))
    with pytest.raises(SettingsError, match="'label_names' must be empty with several label columns"):
        DataSettings(vocab_file="v.txt", label_key="a,b", label_names=("x",), task_label_names=(("x",), ("y",)))
    with pytest.raises(SettingsError, match="list of lists of strings"):
        DataSettings.from_custom_config({**settings.to_custom_config(), "task_label_names": ["neg", "pos"]})
    with pytest.raises(SettingsError, match="task_weights"):
        TrainerSettings(task_weights="1,2,3").task_weights_of("a,b")


# The front door, per column -----------------------------------------------------------------------------------------

def test_rows_hold_every_label_column_and_the_subset_keeps_them(tmp_path):
    path = write_rows(tmp_path / "d" / "a.csv", [["Acne", "great", "positive"], ["", "awful", "negative"]],
                      header=("condition", "text", "rating"))
    # whatever the file's column order: (text, then the label columns in --label-column's order)
    scan = csv_files.scan_csv(path, "text", "rating,condition")
    assert scan.rows == [("great", "positive", "Acne"), ("awful", "negative", "")] and scan.extra_columns == []
    assert csv_checks.label_values(tmp_path / "d", (), "text", "rating,condition", column=1) == ("Acne",)
    subset = subsets.subset(tmp_path / "d", (), 5, "text", "rating,condition", tmp_path / "cache")
    again = csv_files.scan_csv(subset / "data.csv", "text", "rating,condition")
    assert again.header == ["text", "rating", "condition"] and sorted(again.rows) == sorted(scan.rows)


def test_each_label_column_is_checked_against_its_own_domain(tmp_path):
    write_rows(tmp_path / "d" / "a.csv", [["fine", "positive", "Acne"], ["odd", "positive", "Hiccups"],
                                          ["bad", "negative", ""]])
    plan = labels.plan(str(SCHEMA), "rating,condition")
    assert plan.columns == ("rating", "condition") and plan.missing_allowed == ("condition",)
    with pytest.raises(DataFileError) as raised:
        csv_checks.check_input(tmp_path / "d", (), "text", "rating,condition", plan.check_domains, str(SCHEMA),
                               missing_allowed=plan.missing_allowed)
    message = str(raised.value)
    assert raised.value.kind == "UNKNOWN_LABELS" and raised.value.feature == "condition"
    assert "for column 'condition'" in message and "'Hiccups' in 1 row(s), line 3" in message


def test_an_empty_cell_passes_only_in_a_column_the_schema_lets_go_empty(tmp_path):
    write_rows(tmp_path / "d" / "a.csv", [["fine", "positive", "Acne"], ["bad", "negative", ""]])
    plan = labels.plan(str(SCHEMA), "rating,condition")
    assert csv_checks.check_input(tmp_path / "d", (), "text", "rating,condition", plan.check_domains, str(SCHEMA),
                                  missing_allowed=plan.missing_allowed) == []
    write_rows(tmp_path / "e" / "a.csv", [["fine", "", "Acne"], ["bad", "negative", "Acne"]])
    with pytest.raises(DataFileError) as raised:
        csv_checks.check_input(tmp_path / "e", (), "text", "rating,condition", plan.check_domains, str(SCHEMA),
                               missing_allowed=plan.missing_allowed)
    assert raised.value.kind == "MISSING_LABELS" and raised.value.feature == "rating"
    assert "presence.min_fraction" in str(raised.value)


def test_without_a_schema_each_column_gets_its_training_values_and_may_have_gaps(tmp_path):
    write_rows(tmp_path / "d" / "a.csv", [["a", "pos", "x"], ["b", "neg", ""], ["c", "pos", "y"]])
    plan = labels.plan(None, "rating,condition")
    assert plan.missing_allowed == ("rating", "condition") and plan.check_domains == {"rating": None,
                                                                                       "condition": None}
    assert labels.domains(plan, tmp_path / "d", (), "text", "rating,condition") == (("neg", "pos"), ("x", "y"))
    assert labels.settings_for(plan.columns, (("neg", "pos"), ("x", "y"))) == {
        "label_names": (), "task_label_names": (("neg", "pos"), ("x", "y"))}
    write_rows(tmp_path / "one" / "a.csv", [["a", "pos", "x"], ["b", "pos", "y"]])
    with pytest.raises(InputError, match="1 distinct label value\\(s\\) in column 'rating'"):
        labels.domains(labels.plan(None, "rating,condition"), tmp_path / "one", (), "text", "rating,condition")
    assert labels.plan(None, "label").missing_allowed == ()  # one label column: every row needs its label


def test_a_built_in_dataset_brings_its_label_columns(tmp_path):
    import argparse

    assert labels.label_key_of(argparse.Namespace(label_key=None), "drug_reviews") == "rating,condition"
    assert labels.label_key_of(argparse.Namespace(label_key=None), "rotten_tomatoes") == "label"
    assert labels.label_key_of(argparse.Namespace(label_key="sentiment"), "drug_reviews") == "sentiment"


# The heads and their loss ----------------------------------------------------------------------------------------

def test_a_row_without_a_label_adds_nothing_to_its_tasks_loss_or_gradient():
    import numpy as np
    import tensorflow as tf

    from components.model import heads

    probabilities = tf.Variable([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    labels_ = tf.constant([0, tasks.MISSING, 2])
    with tf.GradientTape() as tape:
        loss = heads.GlobalBatchCrossEntropy()(labels_, probabilities)
    expected = -(np.log(0.7) + np.log(0.4)) / 2  # the mean over the two labelled rows
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    gradient = tape.gradient(loss, probabilities).numpy()
    assert not gradient[1].any() and gradient[0].any() and gradient[2].any()
    accuracy = heads.LabelledAccuracy()
    accuracy.update_state(labels_, probabilities)
    assert float(accuracy.result()) == 1.0  # 2 of 2 labelled rows right; the unlabelled row not counted
    all_missing = heads.GlobalBatchCrossEntropy()(tf.constant([tasks.MISSING] * 3), probabilities)
    assert float(all_missing) == 0.0


def test_several_heads_share_the_encoder_and_train_with_weighted_losses():
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from components.model import bert, heads

    label_tasks = tasks.tasks_of("rating,condition", (), (("a", "b", "c"), ("x", "y")))
    keras.utils.set_random_seed(0)
    model = heads.build_classifier(bert.build_encoder(bert.preset_config("tiny", vocab_size=60)),
                                   heads.head_sizes(label_tasks), "mean", 0.0)
    assert sorted(model.output_names) == ["condition", "rating"]
    assert [layer.name for layer in model.layers].count("rating") == 1
    model.compile(optimizer=keras.optimizers.Adam(1e-3), **heads.compile_args(label_tasks, (1.0, 0.0)))
    n = 16
    rng = np.random.default_rng(0)
    x = {"input_word_ids": rng.integers(5, 60, (n, 6)).astype("int32"), "input_mask": np.ones((n, 6), "int32"),
         "input_type_ids": np.zeros((n, 6), "int32")}
    y = {"rating": rng.integers(0, 3, n), "condition": np.where(np.arange(n) % 2, -1, rng.integers(0, 2, n))}
    before = model.get_layer("condition").get_weights()[0].copy()
    history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=2, verbose=0,
                        callbacks=[heads.TaskMeans(label_tasks)])
    # A task of weight 0 leaves its head as it was; its metrics are still computed (over its labelled rows).
    assert np.allclose(model.get_layer("condition").get_weights()[0], before)
    logs = history.history
    assert logs["accuracy"][-1] == pytest.approx((logs["rating_accuracy"][-1] + logs["condition_accuracy"][-1]) / 2)
    step = {"rating_cross_entropy": 1.0, "condition_cross_entropy": 3.0}  # what the progress line reads each step
    heads.TaskMeans(label_tasks).on_train_batch_end(0, step)
    assert step["cross_entropy"] == 2.0


# The schema a run without one curates, and the figures per task ---------------------------------------------------

def test_a_curated_schema_gives_each_label_column_its_domain_and_keeps_gaps_allowed():
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.validation.frozen_schema import curate

    inferred = schema_pb2.Schema()
    for name in ("text", "rating", "condition"):
        feature = inferred.feature.add(name=name, type=schema_pb2.BYTES)
        # As SchemaGen infers them (test_a_column_with_empty_cells_is_let_go_empty_by_the_real_tfdv below): every
        # column "present" in every row, an empty CSV cell being a feature with no value; a fixed shape only where
        # every row had exactly one value.
        feature.presence.min_fraction = 1.0
        if name != "condition":
            feature.shape.dim.add(size=1)
    curated = curate(inferred, "text", "rating,condition", {"rating": ["neg", "pos"], "condition": ["x", "y"]})
    by_name = {f.name: f for f in curated.feature}
    assert by_name["rating"].domain == "rating" and by_name["condition"].domain == "condition"
    assert by_name["rating"].presence.min_fraction == 1.0 and by_name["rating"].shape.dim[0].size == 1
    assert by_name["condition"].presence.min_fraction == 0.0 and not by_name["condition"].HasField("shape")
    assert by_name["condition"].value_count.max == 1
    assert {d.name: list(d.value) for d in curated.string_domain} == {"rating": ["neg", "pos"],
                                                                      "condition": ["x", "y"]}
    assert list(by_name["condition"].not_in_environment) == ["SERVING"]


def test_a_column_with_empty_cells_is_let_go_empty_by_the_real_tfdv(tmp_path):
    """TFDV's own statistics and schema inference on rows as CsvExampleGen writes them (an empty cell: the feature
    with no value), then the curated schema: the rows without a condition are no anomaly, a row without a rating
    is one. A curation that read SchemaGen's presence instead of its shape failed the first case."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    from components.validation.frozen_schema import curate

    def example(text, rating, condition):
        feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()] if v else []))
                   for k, v in (("text", text), ("rating", rating), ("condition", condition))}
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    def statistics(rows, name):
        path = str(tmp_path / f"{name}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for row in rows:
                writer.write(example(*row))
        return tfdv.generate_statistics_from_tfrecord(path, stats_options=tfdv.StatsOptions(num_top_values=5))

    rows = [(f"text {i}", ["neg", "pos"][i % 2], "" if i % 5 == 0 else ["x", "y"][i % 3 % 2]) for i in range(40)]
    seen = statistics(rows, "accepted")
    curated = curate(tfdv.infer_schema(seen, infer_feature_shape=True), "text", "rating,condition",
                     {"rating": ["neg", "pos"], "condition": ["x", "y"]})
    assert not tfdv.validate_statistics(seen, curated).anomaly_info
    spoiled = statistics([("a text", "", "x"), *rows[1:]], "spoiled")
    assert set(tfdv.validate_statistics(spoiled, curated).anomaly_info) == {"rating"}


def test_the_headline_figures_are_per_task_with_several_label_columns():
    from components.release import model_metrics

    one = model_metrics.headline({"sparse_categorical_accuracy": 0.8, "macro_f1_score": 0.7},
                                 {"accuracy": 0.81, "macro_f1": 0.71, "examples": 10})
    assert one == {"eval accuracy": 0.8, "eval macro F1": 0.7, "test accuracy": 0.81, "test macro F1": 0.71,
                   "test examples": 10}
    several = model_metrics.headline(
        {"rating/sparse_categorical_accuracy": 0.6, "rating/macro_f1_score": 0.5,
         "condition/sparse_categorical_accuracy": 0.4, "condition/macro_f1_score": 0.3},
        {"examples": 10, "tasks": {"rating": {"accuracy": 0.61, "macro_f1": 0.51, "examples": 10},
                                   "condition": {"accuracy": 0.41, "macro_f1": 0.31, "examples": 9}}})
    assert several["condition: test examples"] == 9 and several["rating: eval accuracy"] == 0.6
    assert model_metrics.headline_text(several) == ("rating: test accuracy 0.61, macro F1 0.51; condition: test "
                                                    "accuracy 0.41, macro F1 0.31")


def test_a_class_added_to_one_column_makes_the_models_not_comparable_naming_it():
    """The 'new class' recipe per column: the Evaluator compares each column's classes with the model in service's
    (components/release/evaluator.py), and the run summary names the column and the class."""
    from components.release.evaluator import flat_classes, same_classes
    from components.release.run_summary import not_comparable_text

    served = {"rating": ["negative", "positive"], "condition": ["Acne", "other"]}
    assert same_classes(served, {"rating": ["negative", "positive"], "condition": ["Acne", "other"]})
    grown = {"rating": ["negative", "positive"], "condition": ["Acne", "other", "Pain"]}
    assert not same_classes(served, grown)
    assert not same_classes(served, {"condition": ["Acne", "other"], "rating": ["negative", "positive"]})
    assert not same_classes(served, ["negative", "positive"])
    text = not_comparable_text({"baseline_classes": flat_classes(served), "candidate_classes": flat_classes(grown)})
    assert "new: condition: Pain" in text and "--accept-new-classes" in text


def test_balanced_class_weights_give_every_class_the_same_total_weight():
    import tensorflow as tf

    from components.model import heads

    counts = [6, 3, 1, 0]
    weights = heads.balanced_class_weights(counts)
    totals = [w * c for w, c in zip(weights, counts) if c]
    assert totals == pytest.approx([totals[0]] * 3) and weights[3] == 1.0
    assert sum(w * c for w, c in zip(weights, counts)) == pytest.approx(sum(counts))  # the loss keeps its scale
    probabilities = tf.constant([[0.5, 0.25, 0.25, 0.0], [0.2, 0.2, 0.5, 0.1]])
    plain = float(heads.GlobalBatchCrossEntropy()(tf.constant([0, 2]), probabilities))
    weighted = float(heads.GlobalBatchCrossEntropy(class_weights=weights)(tf.constant([0, 2]), probabilities))
    import math

    assert plain == pytest.approx(-(math.log(0.5) + math.log(0.5)) / 2)
    assert weighted == pytest.approx(-(weights[0] * math.log(0.5) + weights[2] * math.log(0.5)) / 2)


def test_one_label_column_trains_on_exactly_the_loss_and_metrics_it_had():
    """With every row labelled (a one-label run always is), the masked loss and metrics are Keras' own sparse
    cross-entropy mean and accuracy, to the last digit: one-label runs train as before."""
    import numpy as np
    import tf_keras as keras

    from components.model import heads

    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(4), size=13).astype("float32")
    labels_ = rng.integers(0, 4, 13)
    ours = float(heads.GlobalBatchCrossEntropy()(labels_, probabilities))
    theirs = float(keras.losses.SparseCategoricalCrossentropy()(labels_, probabilities))
    assert ours == pytest.approx(theirs, rel=1e-6)
    for mine, keras_metric in ((heads.LabelledAccuracy(), keras.metrics.SparseCategoricalAccuracy()),
                               (heads.LabelledCrossEntropy(), keras.metrics.SparseCategoricalCrossentropy())):
        mine.update_state(labels_, probabilities)
        keras_metric.update_state(labels_, probabilities)
        assert float(mine.result()) == pytest.approx(float(keras_metric.result()), rel=1e-6)
    (task,) = tasks.tasks_of("label", ("a", "b", "c", "d"))
    args = heads.compile_args([task], (1.0,))
    assert isinstance(args["loss"], heads.GlobalBatchCrossEntropy) and "loss_weights" not in args
