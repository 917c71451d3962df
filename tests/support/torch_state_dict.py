"""Reads a PyTorch `state_dict` file (`torch.save`'s zip format, e.g. a Hugging Face `pytorch_model.bin`) into numpy
arrays without PyTorch: the project has no torch dependency, and installing one (hundreds of MB) to read one file in
a test is not worth it. Only what a state dict of plain tensors needs is understood; the unpickler refuses any other
global, so a file cannot make it run code.

Format: a zip archive `<name>/data.pkl` (a pickle of the dict, each tensor a call of
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`, each storage a persistent id
`('storage', torch.FloatStorage, key, location, numel)`) beside the raw little-endian storages `<name>/data/<key>`.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Dict, Union

import numpy as np

_STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
                   "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
                   "BoolStorage": "?"}


class _StorageType:
    def __init__(self, dtype: str):
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_ignored) -> np.ndarray:
    """A copy of the tensor's elements: `size` and `stride` are in elements, from `offset` into its storage."""
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * storage.itemsize for s in stride), writeable=False)
    return np.array(view)


def _rebuild_parameter(data: np.ndarray, *_ignored) -> np.ndarray:
    return data


def read_state_dict(path: Union[str, Path]) -> Dict[str, np.ndarray]:
    """{name: array} of the tensors in a `torch.save` zip file (tensors sharing storage, like a tied decoder, come
    back as equal, separate arrays)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a zip-format torch.save file (the legacy format is not supported).")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path} has {len(pickles)} data.pkl entries; expected one.")
        root = pickles[0][:-len("data.pkl")]
        byteorder = root + "byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ValueError(f"{path} stores big-endian tensors, which this reader does not support.")
        storages: Dict[str, np.ndarray] = {}

        class _Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) == ("collections", "OrderedDict"):
                    return collections.OrderedDict
                if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                    return _rebuild_tensor
                if (module, name) == ("torch._utils", "_rebuild_parameter"):
                    return _rebuild_parameter
                if module == "torch" and name in _STORAGE_DTYPES:
                    return _StorageType(_STORAGE_DTYPES[name])
                raise pickle.UnpicklingError(f"{path}: {module}.{name} is not part of a plain state dict.")

            def persistent_load(self, pid):
                kind, storage_type, key, _location, numel = pid
                if kind != "storage" or not isinstance(storage_type, _StorageType):
                    raise pickle.UnpicklingError(f"{path}: unexpected persistent id {pid!r}.")
                if key not in storages:
                    storages[key] = np.frombuffer(archive.read(f"{root}data/{key}"), dtype=storage_type.dtype,
                                                  count=numel)
                return storages[key]

        with archive.open(pickles[0]) as f:
            state = _Unpickler(f).load()
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError(f"{path} does not hold a dict of tensors.")
    return dict(state)
