"""The TFX Trainer module: `run_fn` fine-tunes (or trains from scratch) a BERT classifier and exports it.

Input: Transform's examples (`input_word_ids`, `input_mask`, `input_type_ids` padded to max_seq_length, `label_id`,
or one `label_id_<column>` per task with several label columns: components/tasks.py). The classifier is the encoder
with one softmax head per task (components/model/heads.py). Batches are built from examples of similar length and
padded only to the longest in the batch (length bucketing); the model itself also trims padding columns, so serving
gets the same speed-up.

Distribution: run_fn trains under the tf.distribute strategy components/model/distribution.py chooses
(MultiWorkerMirrored when TF_CONFIG describes a cluster, Mirrored on several GPUs, else the default); batch_size is
per replica, each step takes batch_size x replicas examples, and the loss is the mean over that global batch however
it is split (GlobalBatchCrossEntropy), so N workers compute the very steps one process would. Only the chief keeps
what it writes.

Export: one SavedModel with four signatures (components/module_files/serving_module.py: `serving_default` on raw texts,
`serving_examples` and `classification` on tf.Examples, `transform_features` for the Evaluator's labels) and TF
Serving warm-up requests with a few eval texts (`assets.extra/`, components/module_files/warmup.py).
"""

from __future__ import annotations

import os

from components.runtime import keras2  # noqa: F401  (first: Keras 2 and its AutoGraph rule, see keras2.py)

# isort: split

import dataclasses
import json
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import absl.logging as logging
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the WordPiece ops the transform graph uses)
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import features, tasks
from components.features import TRAINING_HISTORY_FILE
from components.model import bert, distribution, heads, hf_checkpoint, optimization, precision
from components.model.heads import build_classifier
from components.module_files import serving_signatures, training_loop, warmup
from components.module_files.serving_module import ServingModule
from components.runtime import versioned_folders
from components.runtime.progress import progress
from components.settings.data import DataSettings, component_config, read_config
from components.settings.encoder import SCRATCH_MAX_POSITIONS
from components.settings.trainer import TrainerSettings
from components.tasks import Task

WARMUP_TEXTS = 8  # eval texts in the warm-up requests (one alone, all as a batch, two as tf.Examples)


def to_model_inputs(transformed: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    ids, mask, types = (tf.cast(transformed[k], tf.int32)
                        for k in (features.WORD_IDS_KEY, features.MASK_KEY, features.TYPE_IDS_KEY))
    ids, mask, types = training_loop.trim_to_longest(ids, mask, types)
    return {features.WORD_IDS_KEY: ids, features.MASK_KEY: mask, features.TYPE_IDS_KEY: types}


def examples(file_pattern: List[str], data_accessor, tf_transform_output,
             label_tasks: Sequence[Task] = ()) -> tf.data.Dataset:
    """Transform's examples one by one, in file order: (features trimmed to their real tokens, label id), cached. With
    several `label_tasks`, the target is {column: label id} (tasks.MISSING where the row has no label)."""
    raw = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=256, shuffle=False, num_epochs=1),
        tf_transform_output.transformed_metadata.schema).unbatch()

    def trim(example):
        length = tf.reduce_sum(tf.cast(example[features.MASK_KEY], tf.int32))
        feats = {k: tf.cast(example[k][:length], tf.int32)
                 for k in (features.WORD_IDS_KEY, features.MASK_KEY, features.TYPE_IDS_KEY)}
        if len(label_tasks) > 1 or any(t.multi for t in label_tasks):
            return feats, {t.column: tf.cast(tf.reshape(example[t.label_id_key], []), tf.int32) for t in label_tasks}
        return feats, tf.cast(tf.reshape(example[features.LABEL_ID_KEY], []), tf.int32)

    return raw.map(trim, num_parallel_calls=tf.data.AUTOTUNE).cache()


def batches(examples_ds: tf.data.Dataset, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """(features, target) batches of `batch_size` (the global batch) similar-length examples, each padded only to its
    longest example."""
    ds = training_loop.bucket_batches(examples_ds, batch_size, shuffle, seed)
    # Distributed over several workers, each builds this same sequence of global batches (same files, same seed) and
    # tf.distribute splits every batch between the replicas: sharding by data, since one file cannot be split by file.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _dataset(file_pattern: List[str], data_accessor, tf_transform_output, batch_size: int,
             shuffle: bool, seed: int, label_tasks: Sequence[Task]) -> tf.data.Dataset:
    return batches(examples(file_pattern, data_accessor, tf_transform_output, label_tasks), batch_size, shuffle, seed)


def _make_optimizer(settings: TrainerSettings, total_steps: int):
    return optimization.make_optimizer(settings.learning_rate, settings.warmup_ratio, settings.weight_decay,
                                       total_steps, settings.layer_decay)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    settings, data = read_config(TrainerSettings, fn_args.custom_config)
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs anything in this process.
    kind, strategy = distribution.make_strategy(settings.distribution)
    chief, task = distribution.is_chief(), distribution.task_name()
    replicas = strategy.num_replicas_in_sync
    global_batch = settings.batch_size * replicas  # tf.distribute hands each replica batch_size of them
    if replicas > 1 or task:
        progress(f"Trainer: {distribution.NAMES[kind]}, {replicas} replica(s){f', task {task}' if task else ''}"
                 f"{'' if chief else ' (writes to a temporary folder)'}; global batch {global_batch}")
    keras.utils.set_random_seed(settings.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    vocab_file = tokenizer_vocab_file(data, tf_transform_output)

    label_tasks = data.tasks  # each with the schema's label domain: label id i is classes[i]
    for label_task in label_tasks:
        if len(label_task.classes) < 2:
            raise ValueError(f"the label domain of column {label_task.column!r} has {len(label_task.classes)} "
                             "value(s); a classifier needs at least 2.")
    num_classes = heads.head_sizes(label_tasks)

    train_ds = _dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                        global_batch, shuffle=True, seed=settings.seed, label_tasks=label_tasks)
    eval_ds = _dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                       global_batch, shuffle=False, seed=settings.seed, label_tasks=label_tasks)
    train_ds, plan = training_loop.plan_steps(train_ds, settings.epochs, fn_args.train_steps)
    epochs, steps_per_epoch, total_steps, batches_per_epoch = (plan.epochs, plan.steps_per_epoch, plan.total_steps,
                                                               plan.batches_per_epoch)

    if settings.adapted_encoder:  # start from the Pretrainer's adapted checkpoint (the Trainer's base_model input)
        if not fn_args.base_model:
            raise ValueError("adapted_encoder is set but the Trainer has no base_model input (the Pretrainer's model).")
        start = dataclasses.replace(settings, pretrained_dir=training_loop.local_folder(fn_args.base_model))
        progress(f"Trainer: starting from the encoder the Pretrainer adapted, {fn_args.base_model}")
    else:
        start = settings
    class_weights = (_balanced_class_weights(fn_args, tf_transform_output, label_tasks)
                     if settings.class_weights == "balanced" else None)
    compute = precision.choose(settings.precision, len(tf.config.list_physical_devices("GPU")))
    # The variables (model and optimizer) are mirrored on every replica; layers compute in `compute`'s dtype.
    with strategy.scope(), precision.keras_policy(compute):
        model = _new_classifier(start, vocab_file, num_classes)
        warm_from = (_warm_start(model, fn_args.base_model, vocab_file,
                                 blank=lambda: _new_classifier(start, vocab_file, num_classes, load=False))
                     if settings.warm_start else None)
        model.compile(optimizer=_make_optimizer(settings, total_steps),
                      **heads.compile_args(label_tasks, settings.task_weights_of(data.label_key), class_weights))

    with distribution.write_location(fn_args.model_run_dir, chief) as log_dir:
        speed = training_loop.EpochProgress(steps_per_epoch or batches_per_epoch, epochs, task=task, replicas=replicas)
        callbacks = [heads.TaskMeans(label_tasks), keras.callbacks.TensorBoard(log_dir=log_dir, update_freq=50), speed]
        if epochs > 1:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=settings.early_stopping_patience,
                restore_best_weights=True))
        history = model.fit(train_ds, validation_data=eval_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                            callbacks=callbacks, verbose=0)
    logging.info("training history: %s", json.dumps(history.history))
    # Every worker saves (saving may read variables collectively); only the chief's copy is kept.
    if compute != "float32":  # served in float32 whatever the training precision (components/model/precision.py)
        with precision.keras_policy("float32"):
            trained, model = model, _new_classifier(start, vocab_file, num_classes, load=False)
            model.set_weights(trained.get_weights())
    with distribution.write_location(fn_args.serving_model_dir, chief) as serving_model_dir:
        tf.io.gfile.makedirs(os.path.dirname(serving_model_dir.rstrip("/")))  # the Model artifact folder
        write_history(serving_model_dir, history.history, settings, data, total_steps,
                       steps_per_epoch or batches_per_epoch, restored_best=epochs > 1, replicas=replicas,
                       steps_per_second=speed.steps_per_second(), step_loss=speed.step_loss, compute=compute,
                       started_from=warm_from or (fn_args.base_model if settings.adapted_encoder
                                                  else settings.pretrained_dir),
                       encoder=encoder_config(start, vocab_file))
        export(model, fn_args, tf_transform_output, data.text_key, label_tasks, serving_model_dir)


def _balanced_class_weights(fn_args, tf_transform_output, label_tasks: Sequence[Task]) -> Dict[str, List[float]]:
    """{column: per-class loss weights} from the training split's label counts (heads.balanced_class_weights)."""
    import numpy as np

    labels = examples(fn_args.train_files, fn_args.data_accessor, tf_transform_output, label_tasks).map(
        lambda _, target: target).batch(4096)
    counts = {t.column: np.zeros(len(t.classes), np.int64) for t in label_tasks}
    for batch in labels.as_numpy_iterator():
        by_task = batch if isinstance(batch, dict) else {label_tasks[0].column: batch}
        for column, ids in by_task.items():
            counts[column] += np.bincount(ids[ids >= 0], minlength=len(counts[column]))
    weights = {c: heads.balanced_class_weights(n.tolist()) for c, n in counts.items()}
    progress("Trainer: balanced class weights, " + "; ".join(
        f"{c or 'label'} {min(w):.2f} to {max(w):.2f}" for c, w in weights.items()))
    return weights


def encoder_config(settings: TrainerSettings, vocab_file: str) -> bert.BertConfig:
    """The encoder's architecture: the checkpoint's, or the preset's sized to the vocabulary Transform tokenized
    with (`vocab_file`: tokenizer_vocab_file's)."""
    if settings.pretrained_dir:
        return bert.BertConfig.from_hf_config(settings.pretrained_dir)
    return bert.preset_config(settings.model_size, vocab_size=_vocab_size(vocab_file),
                              max_position_embeddings=SCRATCH_MAX_POSITIONS)


def _new_classifier(settings: TrainerSettings, vocab_file: str, num_classes: Union[int, Dict[str, int]],
                    load: bool = True):
    """The classifier: the checkpoint's encoder (its weights loaded unless `load` is False) or a new preset one, with
    the head; built under the current Keras dtype policy."""
    if settings.pretrained_dir and load:
        encoder = hf_checkpoint.load_pretrained(settings.pretrained_dir)
    else:
        encoder = bert.build_encoder(encoder_config(settings, vocab_file))
    return build_classifier(encoder, num_classes, settings.pooling, settings.dropout)


def export(model: keras.Model, fn_args, tf_transform_output, text_key: str, label_tasks: Sequence[Task],
           serving_model_dir: str) -> None:
    """The serving model with its warm-up requests and class names (a later --warm-start restores the classifier
    from this SavedModel's variables once it is in service).

    What is saved is an uncompiled copy of the classifier with its weights: the trained model tracks its optimizer,
    whose two AdamW moments per weight would make the SavedModel three times the size of the weights, and neither
    serving nor a warm start reads them."""
    weights_only = keras.models.clone_model(model)
    weights_only.set_weights(model.get_weights())
    module = ServingModule(weights_only, tf_transform_output, text_key, label_tasks, to_model_inputs)
    tf.saved_model.save(module, serving_model_dir, signatures=module.signatures())
    serving_signatures.set_method_names(serving_model_dir, {
        serving_signatures.CLASSIFY_SIGNATURE: serving_signatures.CLASSIFY_METHOD})
    warmup.write_requests(serving_model_dir, warmup.text_requests(
        _eval_texts(fn_args, tf_transform_output, WARMUP_TEXTS), text_key))
    class_names = tasks.class_names_record(label_tasks)  # a list; {column: classes} with several tasks
    # The class names also travel with the pushed model (TF Serving ignores assets.extra/; the demo page reads them).
    with tf.io.gfile.GFile(os.path.join(serving_model_dir, warmup.ASSETS_EXTRA, features.CLASS_NAMES_FILE),
                           "w") as f:
        json.dump(class_names, f)
    # The classes, beside the serving model: the Evaluator compares them with the model in service's first.
    with tf.io.gfile.GFile(os.path.join(os.path.dirname(serving_model_dir.rstrip("/")),
                                        features.CLASS_NAMES_FILE), "w") as f:
        json.dump(class_names, f)


def write_history(serving_model_dir: str, history: Dict[str, List[float]], settings: TrainerSettings,
                  data: DataSettings, total_steps: int, steps_per_epoch: int, restored_best: bool, replicas: int = 1,
                  steps_per_second: float = 0.0, step_loss: Optional[List[float]] = None,
                  compute: str = "float32", started_from: Optional[str] = None,
                  encoder: Optional[bert.BertConfig] = None, peak_learning_rate: Optional[float] = None,
                  extra: Optional[dict] = None) -> None:
    """The Trainer's settings (its custom_config: its own and the data's), loss and accuracy per epoch (train and
    eval), the learning-rate schedule and the epoch
    whose weights were kept (early stopping restores the best eval accuracy), beside Format-Serving (the run report
    and the model card read it); also the replicas and global batch, the training loss after every step and the
    steps per second (benchmarks/distributed.py reads them), and the encoder's architecture (the Distiller builds
    its teacher from it). The Distiller writes the same record for its student, with its own learning rate and
    `extra` keys."""
    schedule = optimization.WarmupLinearDecay(peak_learning_rate or settings.learning_rate,
                                              int(total_steps * settings.warmup_ratio), total_steps)
    steps = sorted({int(round(total_steps * i / 100)) for i in range(101)})
    history = {k: v for k, v in history.items() if not k.endswith("loss")}  # exact cross-entropy instead
    history = {k.replace(training_loop.CROSS_ENTROPY, "loss"): v for k, v in history.items()}
    val = history.get("val_accuracy") or []
    kept = (int(max(range(len(val)), key=lambda i: val[i])) + 1) if (restored_best and val) else len(
        history.get("loss", []))
    record = {"settings": component_config(settings, data),
              "history": {k: [float(x) for x in v] for k, v in history.items()}, "kept_epoch": kept,
              "early_stopping": restored_best, "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
              "replicas": replicas, "global_batch_size": settings.batch_size * replicas,
              "train_steps_per_second": steps_per_second, "step_loss": list(step_loss or []), "precision": compute,
              "started_from": started_from,
              "encoder": dataclasses.asdict(encoder) if encoder else None,
              "learning_rate": [[step, float(schedule(step))] for step in steps], **(extra or {})}
    model_folder = os.path.dirname(serving_model_dir.rstrip("/"))
    with tf.io.gfile.GFile(os.path.join(model_folder, TRAINING_HISTORY_FILE), "w") as f:
        json.dump(record, f)


def _eval_texts(fn_args, tf_transform_output, count: int) -> List[Union[str, Tuple[str, str]]]:
    """The first `count` non-empty texts of the eval split (Transform passes them through, features.RAW_TEXT_KEY),
    or a pair's texts (and features.RAW_SECOND_TEXT_KEY) as tuples."""
    raw = fn_args.data_accessor.tf_dataset_factory(
        fn_args.eval_files, tfxio.TensorFlowDatasetOptions(batch_size=256, shuffle=False, num_epochs=1),
        tf_transform_output.transformed_metadata.schema)
    texts: List[Union[str, Tuple[str, str]]] = []
    for batch in raw:
        first = [t.decode("utf-8") for t in tf.reshape(batch[features.RAW_TEXT_KEY], [-1]).numpy()]
        if features.RAW_SECOND_TEXT_KEY in batch:
            second = [t.decode("utf-8") for t in tf.reshape(batch[features.RAW_SECOND_TEXT_KEY], [-1]).numpy()]
            texts += [(a, b) for a, b in zip(first, second) if a.strip() and b.strip()]
        else:
            texts += [t for t in first if t.strip()]
        if len(texts) >= count:
            break
    if not texts:
        raise ValueError("the eval split has no non-empty text to write the serving warm-up requests with.")
    return texts[:count]


def _warm_start(model: keras.Model, base_model: Optional[str], vocab_file: Optional[str] = None,
                blank: Optional[Callable[[], keras.Model]] = None) -> Optional[str]:
    """Loads the weights of the model in service into `model`: `base_model` is BaselineLookup's copy of the served
    version folder (components/baselines/lookup.py), whose SavedModel holds the classifier as its `model` attribute
    (ServingModule), so its variables restore straight into this run's classifier. Every variable of `model` must
    get a value from it (a model of another architecture or vocabulary is refused, not half loaded), and its
    vocabulary (the one asset of its transform graph) must be `vocab_file`'s, token for token: the same number of
    different tokens would load without complaint and mean other words. Returns the served folder it started from
    (None: nothing in service yet).

    The variables are read into a throwaway copy of the classifier (`blank()`, or a clone) and then copied into
    `model`: the SavedModel also holds the served model's optimizer (its step count, its moments), which a restore
    into `model` itself would hand to this run's optimizer once it is created, starting its learning-rate schedule
    where the old run's ended."""
    if not base_model or not tf.io.gfile.exists(os.path.join(base_model, "saved_model.pb")):
        logging.warning("warm start: no model in service yet, so training starts from the usual initial weights.")
        progress("Trainer: warm start requested, but no model is in service yet: starting from the usual weights.")
        return None
    served = _served_folder(base_model)
    if vocab_file and not _same_vocabulary(base_model, vocab_file):
        raise ValueError(f"cannot warm-start from the model in service ({served}): its vocabulary differs from this "
                         "run's (one learned from the data, --vocab learn, changes with the data), so its embeddings "
                         "would stand for other tokens; train without --warm-start, or with a fixed vocabulary "
                         "(--vocab checkpoint).")
    copy = blank() if blank else keras.models.clone_model(model)
    try:
        read_classifier(copy, base_model)
    except ValueError as e:
        raise ValueError(f"cannot warm-start from the model in service ({served}): its architecture or vocabulary "
                         f"differs from this run's ({e}).") from None
    model.set_weights(copy.get_weights())
    progress(f"Trainer: warm start from the model in service, {served}")
    return served


def read_classifier(model: keras.Model, saved_model_dir: str) -> None:
    """Restores into `model` the classifier of an exported SavedModel (ServingModule's `model` attribute), every
    variable of `model` or ValueError with the first mismatch; the rest of the SavedModel (the transform graph, the
    class names, the optimizer's state) is not read."""
    try:
        status = tf.train.Checkpoint(model=model).read(os.path.join(saved_model_dir, "variables", "variables"))
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise ValueError(str(e).splitlines()[0][:300]) from None
    status.expect_partial()


def _same_vocabulary(saved_model: str, vocab_file: str) -> bool:
    """Whether the SavedModel's vocabulary asset holds exactly `vocab_file`'s tokens (True when it has no asset to
    compare: a model exported without its transform graph)."""
    assets = tf.io.gfile.glob(os.path.join(saved_model, "assets", "*"))
    if len(assets) != 1:
        return True
    with tf.io.gfile.GFile(assets[0], "rb") as theirs, tf.io.gfile.GFile(vocab_file, "rb") as ours:
        return theirs.read().split() == ours.read().split()


def _served_folder(base_model: str) -> str:
    """The served version folder that BaselineLookup copied into `base_model`'s artifact (else `base_model`)."""
    return versioned_folders.read_record(os.path.dirname(base_model.rstrip("/"))).get("source") or base_model


def tokenizer_vocab_file(data: DataSettings, tf_transform_output) -> str:
    """The WordPiece vocabulary Transform tokenized with: the one it learned from the training split, when it
    learned one (an asset of the transform graph), else the data's `vocab_file`."""
    learned = tf_transform_output.vocabulary_file_by_name(features.LEARNED_VOCAB_NAME)
    if learned:
        return learned
    if not data.vocab_file:
        raise ValueError("no vocabulary to size the embedding with: Transform learned none and the Trainer's "
                         "custom_config has no vocab_file.")
    return data.vocab_file


def _vocab_size(vocab_file: str) -> int:
    """Number of tokens in the WordPiece vocabulary Transform tokenizes with (token ids are below it)."""
    with tf.io.gfile.GFile(vocab_file) as f:
        return sum(1 for _ in f)
