"""The distillation stage's room, on small in-memory models: which teacher layers a student starts from, the
teacher-to-student copy checked tensor by tensor, the loss, the teacher's probabilities kept in example order, and
the front door's checks of --student-layers. The stage in a pipeline run: tests/e2e/test_distilled_runs.py; in the
compiled Kubeflow spec: tests/integration/test_kubeflow.py."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import local_run
from pipeline.cli.errors import InputError
from pipeline.run_local import build_parser as local_parser

TEACHER = dict(vocab_size=40, hidden_size=16, num_layers=4, num_heads=2, intermediate_size=32,
               max_position_embeddings=32)


def _classifier(layers=4, seed=0, **overrides):
    import tf_keras as keras

    from components.model import bert
    from components.model.heads import build_classifier

    keras.utils.set_random_seed(seed)
    config = bert.BertConfig(**{**TEACHER, "num_layers": layers, **overrides})
    return build_classifier(bert.build_encoder(config), 3, "mean", 0.1)


def _inputs(rows):
    import tensorflow as tf

    from components import features

    width = max(len(r) for r in rows)
    ids = np.array([r + [0] * (width - len(r)) for r in rows], dtype=np.int32)
    return {features.WORD_IDS_KEY: tf.constant(ids), features.MASK_KEY: tf.constant((ids != 0).astype(np.int32)),
            features.TYPE_IDS_KEY: tf.zeros_like(ids)}


@pytest.mark.parametrize("teacher, student, expected", [
    (6, 2, (2, 5)), (6, 3, (1, 3, 5)), (6, 4, (0, 2, 3, 5)), (6, 5, (0, 1, 2, 3, 5)), (4, 2, (1, 3)), (2, 1, (1,))])
def test_a_student_starts_from_layers_spread_over_the_teacher_with_its_top_one(teacher, student, expected):
    from components.model.student import teacher_layers

    assert teacher_layers(teacher, student) == expected


@pytest.mark.parametrize("student", [0, 4, 5])
def test_a_student_has_fewer_layers_than_its_teacher(student):
    from components.model.student import StudentError, teacher_layers

    with pytest.raises(StudentError, match="between 1 and 3 layers"):
        teacher_layers(4, student)


def test_every_student_tensor_is_its_teacher_tensor():
    """Checked independently of the copy's own bookkeeping: by the variables' names, layer i of the student against
    layer sources[i] of the teacher, everything else against the tensor of the same name."""
    from components.model.student import copy_from_teacher

    teacher, student = _classifier(4, seed=1), _classifier(2, seed=2)
    rng = np.random.default_rng(0)
    for weight in teacher.weights:  # every tensor distinct (LayerNorms start as ones and zeros)
        weight.assign(rng.normal(size=weight.shape).astype(np.float32))
    sources = (1, 3)
    before = {w.name: w.numpy() for w in student.weights}
    copied = copy_from_teacher(teacher, student, sources)
    by_name = {w.name: w.numpy() for w in teacher.weights}
    assert len(copied) == len(student.weights) == len(before)
    layer_tensors = 0
    for weight in student.weights:
        source = re.sub(r"^layer_(\d+)/", lambda m: f"layer_{sources[int(m.group(1))]}/", weight.name)
        layer_tensors += source != weight.name
        assert np.array_equal(weight.numpy(), by_name[source]), (weight.name, source)
        assert not np.array_equal(weight.numpy(), before[weight.name]), weight.name  # it did change
    assert layer_tensors == 2 * 16  # per layer: q, k, v, output (kernel, bias), 2 LayerNorms (2), 2 Dense (2)
    assert copied["bert_encoder/layer_1/attention/query/kernel"] == "bert_encoder/layer_3/attention/query/kernel"
    assert copied["classifier/kernel"] == "classifier/kernel"


def test_a_student_of_all_the_teachers_layers_computes_what_the_teacher_does():
    from components.model.student import copy_from_teacher

    teacher, copy = _classifier(4, seed=1), _classifier(4, seed=2)
    copy_from_teacher(teacher, copy, range(4))
    x = _inputs([[2, 5, 7, 3], [2, 9, 3]])
    np.testing.assert_array_equal(teacher(x, training=False).numpy(), copy(x, training=False).numpy())


def test_a_student_that_does_not_fit_is_refused_naming_every_tensor_and_left_untouched():
    from components.model.student import StudentError, copy_from_teacher

    teacher, student = _classifier(4, seed=1), _classifier(2, seed=2, intermediate_size=24)
    before = [w.numpy() for w in student.weights]
    with pytest.raises(StudentError) as error:
        copy_from_teacher(teacher, student, (1, 3))
    message = str(error.value)
    assert "(6 tensor(s))" in message
    for layer, source in ((0, 1), (1, 3)):
        assert (f"bert_encoder/layer_{layer}/intermediate/kernel [16, 24] does not match "
                f"bert_encoder/layer_{source}/intermediate/kernel [16, 32]") in message
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, student.weights))


def test_the_loss_is_the_label_cross_entropy_plus_the_softened_kl():
    import tensorflow as tf

    from components.model.student import DistillationLoss, pack_targets

    labels = np.array([0, 2])
    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32)
    pupil = np.array([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]], dtype=np.float32)
    y = pack_targets(tf.constant(labels), tf.constant(teacher))
    hard = -np.log(pupil[[0, 1], labels])

    def soften(p, t):
        q = p ** (1 / t)
        return q / q.sum(axis=-1, keepdims=True)

    t, w = 2.0, 0.25
    kl = (soften(teacher, t) * np.log(soften(teacher, t) / soften(pupil, t))).sum(axis=-1)
    expected = np.mean((1 - w) * hard + w * t * t * kl)
    assert DistillationLoss(t, w)(y, tf.constant(pupil)).numpy() == pytest.approx(expected, rel=1e-5)
    assert DistillationLoss(t, 0.0)(y, tf.constant(pupil)).numpy() == pytest.approx(hard.mean(), rel=1e-5)
    # A student that matches the teacher has no soft loss left.
    assert DistillationLoss(t, 1.0)(y, tf.constant(teacher)).numpy() == pytest.approx(0.0, abs=1e-6)


def test_the_soft_targets_teach_what_the_labels_do_not():
    """Labels drawn at random, and a teacher whose probabilities follow the first word: trained on the teacher's soft
    targets alone, the student learns the teacher's rule; on the labels alone, it cannot."""
    import tensorflow as tf
    import tf_keras as keras

    from components.model.student import DistillationLoss, pack_targets

    rng = np.random.default_rng(0)
    first = rng.integers(4, 40, size=256)
    rows = [[2, int(w)] + list(rng.integers(4, 40, size=5)) + [3] for w in first]
    rule = np.stack([np.where(first % 3 == k, 0.8, 0.1) for k in range(3)], axis=-1).astype(np.float32)
    labels = rng.integers(0, 3, size=256)
    x = {k: v.numpy() for k, v in _inputs(rows).items()}
    y = pack_targets(tf.constant(labels), tf.constant(rule)).numpy()

    def distance_from_teacher(soft_weight):
        student = _classifier(2, seed=4)
        student.compile(optimizer=keras.optimizers.Adam(3e-3), loss=DistillationLoss(2.0, soft_weight))
        student.fit(x, y, batch_size=32, epochs=15, verbose=0)
        p = student.predict(x, verbose=0)
        return float(np.mean(np.sum(rule * (np.log(rule) - np.log(np.maximum(p, 1e-7))), axis=-1)))

    taught, alone = distance_from_teacher(1.0), distance_from_teacher(0.0)
    assert taught < 0.5 * alone and taught < 0.1, (taught, alone)


def test_the_teachers_probabilities_come_back_in_example_order():
    """The one pass batches examples by length, so its order is not the data's: each must get its own row."""
    import tensorflow as tf

    from components import features
    from components.module_files.distillation import teacher_probabilities
    from components.module_files.trainer import to_model_inputs

    teacher = _classifier(2, seed=3)
    rng = np.random.default_rng(0)
    rows = [[2] + list(rng.integers(4, 40, size=int(n))) + [3] for n in rng.integers(1, 28, size=150)]

    def gen():
        for i, r in enumerate(rows):
            ids = np.array(r, dtype=np.int32)
            yield {features.WORD_IDS_KEY: ids, features.MASK_KEY: np.ones_like(ids),
                   features.TYPE_IDS_KEY: np.zeros_like(ids)}, i % 3

    spec = {k: tf.TensorSpec([None], tf.int32) for k in (features.WORD_IDS_KEY, features.MASK_KEY,
                                                          features.TYPE_IDS_KEY)}
    examples = tf.data.Dataset.from_generator(gen, output_signature=(spec, tf.TensorSpec([], tf.int32)))
    got = teacher_probabilities(teacher, examples)
    assert got.shape == (150, 3)
    for i in (0, 1, 77, 149):
        alone = teacher(to_model_inputs(_inputs([rows[i]])), training=False).numpy()[0]
        np.testing.assert_allclose(got[i], alone, atol=1e-5)


def test_a_row_without_a_label_adds_nothing_to_the_loss_or_the_metrics():
    """Several label columns: a row with no value in a task's column (label id MISSING) is left out of that task's
    distillation loss, soft term included, and of its accuracy; the loss is the mean over the labelled rows."""
    import tensorflow as tf

    from components.model.student import DistillationLoss, LabelAccuracy, pack_targets
    from components.tasks import MISSING

    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]], dtype=np.float32)
    pupil = tf.Variable(np.array([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]], dtype=np.float32))
    loss = DistillationLoss(2.0, 0.5)
    with_missing = pack_targets(tf.constant([0, MISSING, 1]), tf.constant(teacher))
    labelled = pack_targets(tf.constant([0, 1]), tf.constant(teacher[[0, 2]]))
    with tf.GradientTape() as tape:
        value = loss(with_missing, pupil)
    assert value.numpy() == pytest.approx(loss(labelled, tf.constant(pupil.numpy()[[0, 2]])).numpy(), rel=1e-6)
    assert not np.any(tape.gradient(value, pupil).numpy()[1])  # the unlabelled row teaches nothing
    accuracy = LabelAccuracy()
    accuracy.update_state(with_missing, pupil)
    assert accuracy.result().numpy() == pytest.approx(0.5)  # row 0 right, row 2 wrong; row 1 not counted


def test_a_transfer_text_without_a_label_adds_the_soft_term_alone():
    """--distill-unlabeled's texts (label id UNLABELED): each adds T² x KL(teacher_T || student_T) at full weight
    whatever --distill-soft-weight, counts in the loss's mean, and adds nothing to the label metrics."""
    import tensorflow as tf

    from components.model.student import UNLABELED, DistillationLoss, LabelAccuracy, pack_targets

    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]], dtype=np.float32)
    pupil = np.array([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]], dtype=np.float32)

    def soften(p, t):
        q = p ** (1 / t)
        return q / q.sum(axis=-1, keepdims=True)

    t, w = 2.0, 0.25
    kl = (soften(teacher, t) * np.log(soften(teacher, t) / soften(pupil, t))).sum(axis=-1)
    hard = -np.log(pupil[[0, 2], [0, 1]])
    mixed = pack_targets(tf.constant([0, UNLABELED, 1]), tf.constant(teacher))
    expected = ((1 - w) * hard[0] + w * t * t * kl[0] + t * t * kl[1] + (1 - w) * hard[1] + w * t * t * kl[2]) / 3
    assert DistillationLoss(t, w)(mixed, tf.constant(pupil)).numpy() == pytest.approx(expected, rel=1e-5)
    only = pack_targets(tf.constant([UNLABELED, UNLABELED]), tf.constant(teacher[:2]))
    for weight in (0.0, 0.5, 1.0):  # the soft term alone, whatever the labelled rows' mix
        assert DistillationLoss(t, weight)(only, tf.constant(pupil[:2])).numpy() == pytest.approx(
            t * t * kl[:2].mean(), rel=1e-5)
    accuracy = LabelAccuracy()
    accuracy.update_state(mixed, tf.constant(pupil))
    assert accuracy.result().numpy() == pytest.approx(0.5)  # row 0 right, row 2 wrong; the transfer text not counted


def _two_task_examples(rows, labels):
    import tensorflow as tf

    from components import features

    def gen():
        for r, (a, b) in zip(rows, labels):
            ids = np.array(r, dtype=np.int32)
            yield {features.WORD_IDS_KEY: ids, features.MASK_KEY: np.ones_like(ids),
                   features.TYPE_IDS_KEY: np.zeros_like(ids)}, {"aspect": a, "tone": b}

    spec = {k: tf.TensorSpec([None], tf.int32) for k in (features.WORD_IDS_KEY, features.MASK_KEY,
                                                          features.TYPE_IDS_KEY)}
    return tf.data.Dataset.from_generator(
        gen, output_signature=(spec, {"aspect": tf.TensorSpec([], tf.int32), "tone": tf.TensorSpec([], tf.int32)}))


def test_a_student_of_a_two_task_teacher_learns_every_head_from_its_own_soft_targets():
    """Two label columns, one of them without a value in a third of the rows: the teacher answers per task in example
    order, each task's targets are its own label and probabilities, the student (one head per task, copied from the
    teacher's) trains on the summed per-task losses, and its figures are per task and their mean; each accuracy over
    that task's labelled rows only."""
    import tf_keras as keras

    from components import tasks
    from components.model import bert
    from components.model.heads import build_classifier
    from components.model.student import copy_from_teacher
    from components.module_files import distillation, trainer

    label_tasks = (tasks.Task("aspect", ("a", "b", "c"), multi=True), tasks.Task("tone", ("neg", "pos"), multi=True))

    def classifier(layers, seed):
        keras.utils.set_random_seed(seed)
        return build_classifier(bert.build_encoder(bert.BertConfig(**{**TEACHER, "num_layers": layers})),
                                {"aspect": 3, "tone": 2}, "mean", 0.1)

    rng = np.random.default_rng(0)
    rows = [[2] + list(rng.integers(4, 40, size=int(n))) + [3] for n in rng.integers(1, 20, size=96)]
    labels = [(int(r[1] % 3), int(r[1] % 2) if i % 3 else tasks.MISSING) for i, r in enumerate(rows)]
    examples = _two_task_examples(rows, labels)
    teacher = classifier(4, seed=1)
    soft = distillation.teacher_probabilities(teacher, examples)
    assert set(soft) == {"aspect", "tone"} and soft["aspect"].shape == (96, 3) and soft["tone"].shape == (96, 2)
    alone = teacher(trainer.to_model_inputs(_inputs([rows[5]])), training=False)
    for column in soft:
        np.testing.assert_allclose(soft[column][5], alone[column].numpy()[0], atol=1e-5)
    targets = [t for _, t in distillation.with_soft_targets(examples, soft).as_numpy_iterator()]
    assert targets[0]["tone"][0] == tasks.MISSING and targets[1]["tone"][0] == labels[1][1]
    np.testing.assert_allclose(targets[2]["aspect"][1:], soft["aspect"][2], atol=1e-6)

    student = classifier(2, seed=2)
    copy_from_teacher(teacher, student, (1, 3))
    student.compile(optimizer=keras.optimizers.Adam(3e-3),
                    **distillation.compile_args(label_tasks, "2,1", temperature=2.0, soft_weight=0.5))
    assert student.compiled_loss._loss_weights == {"aspect": 2.0, "tone": 1.0}
    batches = trainer.batches(distillation.with_soft_targets(examples, soft), 32, True, 0)
    history = student.fit(batches, epochs=2, verbose=0).history
    assert {"aspect_accuracy", "tone_accuracy", "loss"} <= set(history) and np.isfinite(history["loss"]).all()

    truth = distillation.labels_of(examples)
    figures = distillation.eval_figures(student, examples, soft, truth)
    mine = distillation.teacher_probabilities(student, examples)
    labelled = truth["tone"] != tasks.MISSING
    assert labelled.sum() == 64
    tone = float(np.mean(np.argmax(mine["tone"][labelled], axis=-1) == truth["tone"][labelled]))
    assert figures["tasks"]["tone"]["student_eval_accuracy"] == pytest.approx(tone)
    aspect = figures["tasks"]["aspect"]["student_eval_accuracy"]
    assert figures["student_eval_accuracy"] == pytest.approx((aspect + tone) / 2)
    assert set(figures["tasks"]["aspect"]) == {"student_eval_accuracy", "eval_agreement_with_teacher",
                                               "eval_kl_from_teacher"}


# ------------------------------------------------------------------------------------------------------------
# The front door


def _local(tmp_path: Path, *argv):
    folder = tmp_path / "reviews"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text("text,label\n" + "good film,pos\nbad film,neg\n" * 3)
    args = local_parser().parse_args(["--data-root", str(folder), "--pipeline-root", str(tmp_path / "root"),
                                      "--max-seq-length", "32", *map(str, argv)])
    plan = local_run.plan(args)
    return plan.config, plan.warnings, plan.notes


def test_the_settings_travel_to_the_distiller(tmp_path):
    from components.settings.distillation import DistillerSettings

    config, _, _ = _local(tmp_path, "--student-layers", "3", "--distill-temperature", "4",
                          "--distill-soft-weight", "0.8", "--distill-epochs", "2")
    assert config.distiller == DistillerSettings(student_layers=3, temperature=4.0, soft_weight=0.8, distill_epochs=2)
    assert DistillerSettings.from_custom_config(config.distiller.to_custom_config("v1")) == config.distiller
    assert not _local(tmp_path / "off")[0].distiller.enabled


@pytest.mark.parametrize("argv, fragment", [
    (["--student-layers", "6"], "--student-layers 6: a student has fewer layers than the model it learns from, which "
                                "has 6; pass --student-layers 5 or less."),
    (["--pretrained", "none", "--model-size", "tiny", "--student-layers", "2"],
     "which has 2; pass --student-layers 1 or less (or a deeper --model-size)."),
    (["--student-layers", "2", "--warm-start"], "--warm-start and --student-layers exclude each other"),
    (["--student-layers", "-1"], "'student_layers' must be 0 (off) or positive"),
])
def test_the_front_door_refuses_a_student_that_cannot_be(tmp_path, argv, fragment):
    with pytest.raises(InputError) as error:
        _local(tmp_path, *argv)
    assert fragment in str(error.value)


@pytest.mark.parametrize("flag, value, fragment", [
    ("--distill-soft-weight", "1.5", "must be between 0 and 1"), ("--distill-temperature", "0", "not a positive"),
    ("--distill-epochs", "two", "not an integer")])
def test_a_bad_distillation_value_is_refused_by_the_parser_naming_the_flag(capsys, flag, value, fragment):
    with pytest.raises(SystemExit):
        local_parser().parse_args([flag, value])
    err = capsys.readouterr().err
    assert flag in err and fragment in err, err


def test_the_distillers_settings_are_read_strictly():
    from components.settings.base import SettingsError
    from components.settings.distillation import DistillerSettings

    config = dataclasses.asdict(DistillerSettings(student_layers=2))
    del config["temperature"]
    with pytest.raises(SettingsError, match="Distiller custom_config has missing key"):
        DistillerSettings.from_custom_config(config)
