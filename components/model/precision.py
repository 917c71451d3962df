"""The Trainer's numeric precision: float32, or Keras' mixed_bfloat16 (bfloat16 compute, float32 variables).

`--precision float32` is the default. `--precision bf16_if_native` trains in mixed_bfloat16 when the CPU has native bfloat16
instructions (AVX-512 BF16 or AMX-BF16, read from /proc/cpuinfo) and no GPU is used, float32 otherwise: without those
instructions bfloat16 is emulated and slower than float32. Measured on the development CPU (which has both), the
default Rotten Tomatoes run in mixed_bfloat16 took longer than in float32 (its Trainer 835 s against 684 s: the first
epoch, which builds the kernels of every new batch shape, was much slower, the others no faster) at the same accuracy
(test 0.836 against 0.839), so it is not the default (README, results table). On 20newsgroups at 128 tokens,
longer batches, it trained 1.55x as fast as float32 at the same accuracy (eval 0.903 against 0.905): worth
choosing for long texts.

Whatever the training precision, the exported serving model computes in float32: run_fn rebuilds the classifier
under the float32 policy with the trained weights (float32 variables in both), so a serving CPU without bfloat16
instructions is never slowed down, and the signatures' inputs and outputs are the same as ever.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

# (Not "auto": the settings contract reserves that flag value for settings the front door chooses from the data.)
PRECISIONS = ("float32", "mixed_bfloat16", "bf16_if_native")
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: Optional[str] = None) -> bool:
    """Whether the CPU lists a native bfloat16 instruction set (Linux /proc/cpuinfo; False where unreadable)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(flag in flags for flag in _BF16_FLAGS)


def choose(setting: str, gpus: int, cpuinfo: Optional[str] = None) -> str:
    """'float32' or 'mixed_bfloat16' for a setting in PRECISIONS."""
    if setting not in PRECISIONS:
        raise ValueError(f"unknown precision {setting!r}; use one of {', '.join(PRECISIONS)}.")
    if setting != "bf16_if_native":
        return setting
    return "mixed_bfloat16" if gpus == 0 and cpu_has_bf16(cpuinfo) else "float32"


@contextlib.contextmanager
def keras_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` for the block (layers built inside take it), then restored."""
    import tf_keras as keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
