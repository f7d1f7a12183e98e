"""Array types and growth of per-item vectors (dense item indices, numpy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]


def fit(array: FloatArray, size: int) -> FloatArray:
    """``array`` if it can hold ``size`` entries, else a zero-padded copy twice as large.

    >>> fit(np.zeros(2), 3).shape
    (4,)
    """
    if size <= array.shape[0]:
        return array
    grown = np.zeros(max(size, array.shape[0] * 2), dtype=np.float64)
    grown[: array.shape[0]] = array
    return grown
