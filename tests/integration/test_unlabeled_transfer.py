"""The Distiller's transfer set with --distill-unlabeled (components/module_files/distillation.py): texts from a
request log, tokenized by a real transform graph (a TF Transform run of the project's preprocessing_fn on a few
rows) exactly as Transform tokenized the labelled rows, labelled UNLABELED, answered by a real classifier (the
teacher) and packed as soft targets beside the training split's."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

from components import features
from components.model import bert, heads, student
from components.module_files import distillation, unlabeled
from components.settings.data import DataSettings
from components.settings.distillation import DistillerSettings
from components.settings.transform import TransformSettings
from support.logged_requests import TEXT, classify_record, log_file, predict_record
from support.tft_run import analyze_and_transform

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "wonderful", "film", "the", "plot", "was", "tedious",
         "moving", "story", "bland", "ending"]
LABELLED = [("a wonderful film", "pos"), ("the plot was tedious", "neg"), ("a moving story", "pos"),
            ("bland ending", "neg")]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    base = tmp_path_factory.mktemp("transfer")
    vocab = base / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n")
    data = DataSettings(TEXT, "label", label_names=("neg", "pos"), vocab_file=str(vocab), lower_case=True)
    spec = {TEXT: tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.string)}
    rows, out_dir = analyze_and_transform(base, [{TEXT: t, "label": y} for t, y in LABELLED], spec, data,
                                          TransformSettings(max_seq_length=16))
    # The raw data's metadata, which TFX's Transform writes beside the graph (raw_feature_spec reads it).
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata.from_feature_spec(spec),
                               str(out_dir / tft.TFTransformOutput.RAW_METADATA_DIR))
    return base, data, rows, tft.TFTransformOutput(str(out_dir))


def test_logged_texts_join_the_transfer_set_tokenized_as_the_training_split_and_answered_by_the_teacher(transformed):
    base, data, rows, tft_output = transformed
    prefix = str(base / "logs" / "requests")
    log_file(prefix, 1, predict_record(["the plot was tedious", "a wonderful film"]), classify_record(["bland ending"]))
    count, digest, until = unlabeled.check(prefix, TEXT)
    settings = DistillerSettings(student_layers=1, distill_unlabeled=True, unlabeled_data=prefix,
                                 unlabeled_digest=digest, unlabeled_until=until)
    transfer, found = distillation.transfer_texts(settings, data, tft_output)
    assert found == count == 3
    examples = list(transfer.as_numpy_iterator())
    assert [int(label) for _, label in examples] == [student.UNLABELED] * 3
    # Token for token what Transform made of the same texts as labelled rows, cut to their real tokens.
    by_text = {text: row for (text, _), row in zip(LABELLED, rows)}
    for (feats, _), text in zip(examples, ["the plot was tedious", "a wonderful film", "bland ending"]):
        length = int(sum(by_text[text][features.MASK_KEY]))
        for key in (features.WORD_IDS_KEY, features.MASK_KEY, features.TYPE_IDS_KEY):
            assert feats[key].tolist() == by_text[text][key][:length], (text, key)

    # Beside the training split's examples (as trainer.examples gives them): the teacher answers both, and the packed
    # targets carry its probabilities with the label, or UNLABELED.
    def labelled_rows():
        for row, (_, label) in zip(rows, LABELLED):
            length = int(sum(row[features.MASK_KEY]))
            yield ({k: np.array(row[k][:length], np.int32) for k in transfer.element_spec[0]},
                   np.int32(["neg", "pos"].index(label)))

    train = tf.data.Dataset.from_generator(labelled_rows, output_signature=transfer.element_spec)
    both = train.concatenate(transfer)
    config = bert.preset_config("tiny", vocab_size=len(WORDS), max_position_embeddings=64)
    teacher = heads.build_classifier(bert.build_encoder(config), heads.head_sizes(data.tasks), "mean", 0.0)
    probabilities = distillation.teacher_probabilities(teacher, both)
    assert probabilities.shape == (len(LABELLED) + 3, 2)
    np.testing.assert_allclose(probabilities[len(LABELLED) + 1], probabilities[0], rtol=1e-5)  # the same text
    targets = [t for _, t in distillation.with_soft_targets(both, probabilities).as_numpy_iterator()]
    assert [int(t[0]) for t in targets] == [1, 0, 1, 0] + [student.UNLABELED] * 3
    loss = student.DistillationLoss(2.0, 0.5)(np.stack(targets), probabilities)
    assert float(loss) == pytest.approx(0.5 * np.mean(-np.log(probabilities[np.arange(4), [1, 0, 1, 0]])) * 4 / 7,
                                        rel=1e-4)  # the student as the teacher: no soft loss, the labels' alone
