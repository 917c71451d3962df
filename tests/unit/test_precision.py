"""components/model/precision.py: which precision the Trainer trains in (no TensorFlow needed but for the policy)."""

import pytest

from components.model import precision

BF16_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n"
AMX_CPU = "flags\t\t: fpu avx512f amx_bf16 amx_tile\n"
PLAIN_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\nbugs\t\t: avx512_bf16_fake\n"


@pytest.mark.parametrize("cpuinfo, expected", [(BF16_CPU, True), (AMX_CPU, True), (PLAIN_CPU, False), ("", False)])
def test_cpu_bf16_flags(cpuinfo, expected):
    assert precision.cpu_has_bf16(cpuinfo) is expected


@pytest.mark.parametrize("setting, gpus, cpuinfo, expected", [
    ("bf16_if_native", 0, BF16_CPU, "mixed_bfloat16"),
    ("bf16_if_native", 0, PLAIN_CPU, "float32"),  # emulated bfloat16 would be slower than float32
    ("bf16_if_native", 1, BF16_CPU, "float32"),  # on a GPU the CPU's instructions say nothing
    ("float32", 0, BF16_CPU, "float32"),
    ("mixed_bfloat16", 0, PLAIN_CPU, "mixed_bfloat16"),
])
def test_choice(setting, gpus, cpuinfo, expected):
    assert precision.choose(setting, gpus, cpuinfo) == expected


def test_unknown_setting():
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        precision.choose("fp8", 0, BF16_CPU)


def test_policy_is_restored():
    import tf_keras as keras

    before = keras.mixed_precision.global_policy().name
    with precision.keras_policy("mixed_bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert keras.layers.Dense(2).compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == before
