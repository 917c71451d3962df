"""The Pretrainer: masked-language-model training that adapts the encoder to the run's own text before fine-tuning.

A second TFX Trainer (pipeline/dag/pipeline.py, node `Pretrainer`) runs this `run_fn` on Transform's output: the
training split's texts, plus --unlabeled-data's (tokenized by the same transform graph), never the eval or test split,
which only measure it. Each batch is masked anew in the input pipeline (components/model/masking.py: 15% of the real
tokens, 80% [MASK] / 10% random / 10% unchanged, optionally whole words), so every epoch sees different masks. The model
is the encoder with BERT's masked-LM head (components/model/mlm.py, decoder tied to the word embeddings), loaded
strictly from the checkpoint when it ships `cls.predictions.*` and initialised (said on the console) when it does not.

Output: the Model artifact's Format-Serving/ holds the adapted encoder and head as a Hugging Face checkpoint
(config.json, model.safetensors, vocab.txt), which the fine-tuning Trainer loads as its checkpoint (its base_model
input), and pretraining_history.json beside it (masked-LM loss and accuracy per epoch, on the training texts and on
the eval split's).
"""

from __future__ import annotations

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

import json
import os
import tempfile
import time
from typing import List

import tensorflow as tf
import tensorflow_text  # noqa: F401  (the transform graph's WordPiece ops)
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx.utils import io_utils
from tfx_bsl.public import tfxio

from components import features
from components.features import PRETRAINING_HISTORY_FILE
from components.model import bert, masking, mlm, optimization, precision
from components.module_files import training_loop, unlabeled
from components.runtime.progress import progress
from components.settings.data import component_config, read_config
from components.settings.encoder import SCRATCH_MAX_POSITIONS
from components.settings.pretraining import PretrainerSettings


class MaskedLMLoss(keras.losses.Loss):
    """Cross-entropy over the masked positions only; labels are the original ids, -1 where a row has no prediction."""

    def __init__(self, name: str = "masked_lm_loss"):
        super().__init__(reduction=keras.losses.Reduction.SUM, name=name)

    def call(self, y_true, y_pred):
        labels = tf.cast(y_true, tf.int32)
        return mlm.masked_lm_loss(tf.maximum(labels, 0), tf.cast(y_pred, tf.float32), labels >= 0)


class MaskedLMAccuracy(keras.metrics.Metric):
    """Share of masked positions whose most likely token is the original one (summed over batches)."""

    def __init__(self, name: str = "mlm_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_weight(name="hits", initializer="zeros")
        self.count = self.add_weight(name="count", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.cast(y_true, tf.int64)
        real = tf.cast(labels >= 0, tf.float32)
        hit = tf.cast(tf.equal(tf.argmax(y_pred, axis=-1, output_type=tf.int64), labels), tf.float32) * real
        self.hits.assign_add(tf.reduce_sum(hit))
        self.count.assign_add(tf.reduce_sum(real))

    def result(self):
        return tf.math.divide_no_nan(self.hits, self.count)


def _transformed_texts(file_pattern: List[str], data_accessor, tf_transform_output) -> tf.data.Dataset:
    """Transform's examples -> {input_word_ids, input_mask, input_type_ids}, each trimmed to its real tokens."""
    raw = data_accessor.tf_dataset_factory(
        file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=256, shuffle=False, num_epochs=1),
        tf_transform_output.transformed_metadata.schema).unbatch()
    return raw.map(training_loop.trim, num_parallel_calls=tf.data.AUTOTUNE)


def _unlabeled_texts(settings: PretrainerSettings, text_key: str, tf_transform_output) -> tf.data.Dataset:
    """--unlabeled-data's texts through the transform graph (the same tokenizer and length as the labelled data): the
    files the front door digested (components/module_files/unlabeled.py)."""
    texts = unlabeled.texts(settings.unlabeled_data, text_key, settings.unlabeled_digest, settings.unlabeled_until)
    progress(f"Pretrainer: {len(texts)} unlabeled texts from {settings.unlabeled_data}")
    return training_loop.tokenized_texts(texts, text_key, tf_transform_output)


def _masked_batches(texts: tf.data.Dataset, masker: masking.MlmMasker, batch_size: int, shuffle: bool,
                    seed: int) -> tf.data.Dataset:
    """Length-bucketed batches, masked anew every time they are read: ({ids..., positions}, labels with -1 where a
    row has fewer predictions than slots)."""
    pairs = texts.cache().map(lambda f: (f, tf.constant(0, tf.int32)))
    batches = training_loop.bucket_batches(pairs, batch_size, shuffle, seed)

    def mask(feats, _):
        masked = masker(feats)
        labels = tf.where(masked[masking.MASKED_WEIGHTS_KEY] > 0, tf.cast(masked[masking.MASKED_IDS_KEY], tf.int32),
                          -1)
        x = {k: masked[k] for k in (features.WORD_IDS_KEY, features.MASK_KEY)}
        x[features.TYPE_IDS_KEY] = feats[features.TYPE_IDS_KEY]
        x[masking.MASKED_POSITIONS_KEY] = masked[masking.MASKED_POSITIONS_KEY]
        return x, labels

    return batches.map(mask, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _encoder_and_head(settings: PretrainerSettings, vocab_size: int):
    """(config, encoder, head, note): the checkpoint's, or a new preset encoder when training from scratch."""
    if settings.pretrained_dir:
        loaded = mlm.load_pretrained_mlm(training_loop.local_folder(settings.pretrained_dir))
        return loaded.config, loaded.encoder, loaded.head, loaded.note
    config = bert.preset_config(settings.model_size, vocab_size=vocab_size,
                                max_position_embeddings=SCRATCH_MAX_POSITIONS)
    encoder = bert.build_encoder(config)
    return config, encoder, mlm.build_head(encoder, config), "a new encoder and masked-LM head (no checkpoint)"


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    settings, data = read_config(PretrainerSettings, fn_args.custom_config)
    compute = precision.choose(settings.precision, len(tf.config.list_physical_devices("GPU")))
    keras.utils.set_random_seed(settings.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    vocab_file = data.vocab_file or tf_transform_output.vocabulary_file_by_name(features.LEARNED_VOCAB_NAME)
    with tf.io.gfile.GFile(vocab_file) as f:
        vocab = [line.rstrip("\n").rstrip("\r") for line in f]
    # Transform's sequence length, as its graph pads every text to it: it sizes the masked positions per text.
    max_seq_length = int(tf_transform_output.transformed_feature_spec()[features.WORD_IDS_KEY].shape[0])
    masker = masking.MlmMasker.from_vocab(
        vocab, selection_rate=settings.masking_rate, whole_word=settings.whole_word_masking,
        max_predictions=masking.max_predictions_for(max_seq_length, settings.masking_rate))

    texts = _transformed_texts(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
    if settings.unlabeled_data:
        texts = texts.concatenate(_unlabeled_texts(settings, data.text_key, tf_transform_output))
    train_ds = _masked_batches(texts, masker, settings.batch_size, shuffle=True, seed=settings.seed)
    eval_ds = _masked_batches(_transformed_texts(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
                              masker, settings.batch_size, shuffle=False, seed=settings.seed)
    train_ds, plan = training_loop.plan_steps(train_ds, settings.pretrain_epochs, fn_args.train_steps)
    epochs, steps_per_epoch, total_steps, batches_per_epoch = (plan.epochs, plan.steps_per_epoch, plan.total_steps,
                                                               plan.batches_per_epoch)

    with precision.keras_policy(compute):
        config, encoder, head, note = _encoder_and_head(settings, len(vocab))
        progress(f"Pretrainer: {note} Training: {compute}, {total_steps} steps.")
        model = mlm.build_pretraining_model(encoder, head)
        model.compile(optimizer=optimization.make_optimizer(settings.pretrain_learning_rate, settings.warmup_ratio,
                                                            settings.weight_decay, total_steps),
                      loss=MaskedLMLoss(), metrics=[MaskedLMAccuracy()])
    start = time.time()
    before = model.evaluate(eval_ds, verbose=0, return_dict=True)
    progress(f"Pretrainer: before training, eval masked-LM loss {before['loss']:.3f}, accuracy "
             f"{before['mlm_accuracy']:.3f}")
    history = model.fit(train_ds, validation_data=eval_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=[training_loop.EpochProgress(steps_per_epoch or batches_per_epoch, epochs,
                                                               name="Pretrainer", loss_key="loss")],
                        verbose=0).history
    progress(f"Pretrainer: eval masked-LM loss {history['val_loss'][-1]:.3f}, accuracy "
             f"{history['val_mlm_accuracy'][-1]:.3f} ({time.time() - start:.0f} s)")

    # The adapted encoder and head as a Hugging Face checkpoint (float32 tensors whatever the training precision).
    with tempfile.TemporaryDirectory(prefix="adapted-") as tmp:
        mlm.export_hf_checkpoint(tmp, encoder, config, vocab_file, data.lower_case, head=head)
        io_utils.copy_dir(tmp, fn_args.serving_model_dir)
    record = {"settings": component_config(settings, data), "head": note, "precision": compute,
              "steps": total_steps, "before": {k: float(v) for k, v in before.items()},
              "history": {k: [float(x) for x in v] for k, v in history.items()}}
    model_folder = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
    with tf.io.gfile.GFile(os.path.join(model_folder, PRETRAINING_HISTORY_FILE), "w") as f:
        json.dump(record, f)
