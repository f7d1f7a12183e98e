"""A float vector that grows with the catalogue, for per-item statistics."""

from __future__ import annotations

import numpy as np

from pipeline.model.catalog import FloatArray


def fit(array: FloatArray, size: int) -> FloatArray:
    """``array`` if it can hold ``size`` entries, else a zero-padded copy twice as large."""
    if size <= array.shape[0]:
        return array
    grown = np.zeros(max(size, array.shape[0] * 2), dtype=np.float64)
    grown[: array.shape[0]] = array
    return grown
