"""The training progress lines (components/module_files/training_loop.py's EpochProgress): the steps announced before
training, an estimate from the first timed steps, the time left on every line after it. Driven by a clock of the
test's own, so the figures are exact; and once through a real Keras fit, so the hooks are the ones Keras calls. Also
the step plan the lines count (plan_steps)."""

import logging

import numpy as np
import pytest
import tf_keras as keras

from components.module_files import training_loop
from components.runtime.progress import PROGRESS_LOGGER


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def lines():
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield seen
    logger.removeHandler(handler)


def test_duration_is_said_for_people():
    assert [training_loop.duration(s) for s in (0.2, 40, 89, 90, 420, 3000, 3599, 7500)] == [
        "0 s", "40 s", "89 s", "2 min", "7 min", "50 min", "1 h 00 min", "2 h 05 min"]


def test_the_steps_then_an_estimate_then_the_time_left(lines):
    clock = Clock()
    progress = training_loop.EpochProgress(100, 3, every=50, probe_steps=5, clock=clock)
    progress.on_train_begin()
    assert lines == ["Trainer: 3 epoch(s) of 100 steps, 300 steps in all; a time estimate follows the first 6 steps"]
    for epoch in range(3):
        progress.on_epoch_begin(epoch)
        for step in range(100):
            clock.now += 10.0 if (epoch, step) == (0, 0) else 1.0  # the first step traces the function
            progress.on_train_batch_end(step, {training_loop.CROSS_ENTROPY: 0.5})
        clock.now += 11.0  # the epoch's evaluation
        progress.on_epoch_end(epoch, {"accuracy": 0.75})
    # after 5 timed steps at 1 s: 300 steps, about 5 minutes, evaluation not included
    assert lines[1] == ("Trainer: 1.00 s a step on this machine after 5 timed steps: about 5 min of training for 3 "
                        "epoch(s), plus each epoch's evaluation")
    # step 50 of epoch 1: 50 steps left at 1 s, then two epochs estimated from the steps' speed (100 s each)
    assert lines[2] == "Trainer: epoch 1/3 step 50/100 loss 0.5000 (59 s, about 50 s left in the epoch, 4 min in all)"
    # an epoch from now on: 100 steps at 1 s and the 11 s of the last evaluation
    assert lines[4] == "Trainer: epoch 1/3 done: accuracy 0.7500 (120 s; about 4 min left for 2 more epoch(s))"
    assert lines[5].endswith("(170 s, about 50 s left in the epoch, 3 min in all)"), lines[5]
    # the second epoch, its steps timed alike
    assert lines[7] == "Trainer: epoch 2/3 done: accuracy 0.7500 (231 s; about 2 min left for 1 more epoch(s))"
    assert lines[8] == "Trainer: epoch 3/3 step 50/100 loss 0.5000 (281 s, about 50 s left)"
    assert lines[9] == "Trainer: epoch 3/3 step 100/100 loss 0.5000 (331 s)"  # only the evaluation is left
    assert lines[10] == "Trainer: epoch 3/3 done: accuracy 0.7500 (342 s)"
    assert len(lines) == 2 + 3 * 3


def test_no_time_left_before_a_step_is_timed(lines):
    progress = training_loop.EpochProgress(4, 1, every=1, probe_steps=5, clock=Clock())
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    progress.on_train_batch_end(0, {training_loop.CROSS_ENTROPY: 0.5})
    assert lines[-1] == "Trainer: epoch 1/1 step 1/4 loss 0.5000 (0 s)"  # the traced step alone says nothing yet


def test_the_lines_of_a_real_keras_fit(lines):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.random.rand(64, 3).astype("float32"), np.random.randint(0, 2, 64)
    progress = training_loop.EpochProgress(8, 2, every=4, probe_steps=2, loss_key="loss")
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[progress], verbose=0)
    assert lines[0].startswith("Trainer: 2 epoch(s) of 8 steps, 16 steps in all")
    assert lines[1].startswith("Trainer: ") and " s a step on this machine after 2 timed steps: about " in lines[1]
    assert "left in the epoch" in lines[2] and lines[-1].startswith("Trainer: epoch 2/2 done: loss ")
    assert len(lines) == 2 + 2 * 3


def test_an_early_stop_is_said(lines):
    clock = Clock()
    progress = training_loop.EpochProgress(2, 3, every=10, probe_steps=1, clock=clock)
    progress.on_train_begin()
    for epoch in range(2):  # early stopping ends the fit after the second of three epochs
        progress.on_epoch_begin(epoch)
        for step in range(2):
            clock.now += 1.0
            progress.on_train_batch_end(step, {training_loop.CROSS_ENTROPY: 0.5})
        progress.on_epoch_end(epoch, {"accuracy": 0.5})
    progress.on_train_end()
    assert lines[-1] == "Trainer: stopped after epoch 2 of 3 (early stopping: the eval metric stopped improving) (4 s)"


def test_a_full_run_says_no_early_stop(lines):
    progress = training_loop.EpochProgress(1, 1, every=10, probe_steps=1, clock=Clock())
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    progress.on_train_batch_end(0, {})
    progress.on_epoch_end(0, {})
    progress.on_train_end()
    assert not any("stopped after" in line for line in lines)


def test_a_step_cap_repeats_the_batches_and_shortens_the_epochs():
    """What every Trainer of the pipeline (fine-tuning, masked-LM, distillation) trains: full passes, or at most
    --train-steps steps."""
    import tensorflow as tf

    from components.module_files.training_loop import StepPlan, plan_steps

    batches = tf.data.Dataset.range(10).batch(2)  # 5 batches a pass
    same, plan = plan_steps(batches, 3, None)
    assert same is batches and plan == StepPlan(epochs=3, steps_per_epoch=None, total_steps=15, batches_per_epoch=5)
    assert plan_steps(batches, 3, 20)[1] == plan  # a cap above the passes changes nothing
    repeated, capped = plan_steps(batches, 3, 7)
    assert capped == StepPlan(epochs=2, steps_per_epoch=5, total_steps=7, batches_per_epoch=5)
    assert sum(1 for _ in repeated.take(12)) == 12  # it repeats: the last epoch draws past one pass
    assert plan_steps(batches, 3, 3)[1] == StepPlan(epochs=1, steps_per_epoch=3, total_steps=3, batches_per_epoch=5)
