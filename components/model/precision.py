"""The Trainer's numeric precision: float32, or Keras' mixed_bfloat16 (bfloat16 compute, float32 variables).

`--precision float32` is the default. `--precision bf16_if_native` trains in mixed_bfloat16 when the CPU has native
bfloat16 instructions (AVX-512 BF16 or AMX-BF16, read from /proc/cpuinfo) and no GPU is used, float32 otherwise: without
those instructions bfloat16 is emulated and slower than float32. Even with them it is not the default: on short texts
the first epoch, which builds the kernels of every new batch shape, is much slower and the others no faster, while on
long texts (longer batches) it pays at the same accuracy. The measurements are in benchmarks/results.md.

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
