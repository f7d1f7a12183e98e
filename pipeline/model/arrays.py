"""Array types and growth of per-item vectors (dense item indices, numpy)."""

from __future__ import annotations

from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]


A = TypeVar("A", bound=npt.NDArray[Any])

DENSE_SPAN = 2
"""``unique_inverse`` numbers values through a table when their span is at most this many
times their count (measured: the table wins below ~2-4x, the sort above)."""


def fit(array: A, size: int) -> A:
    """``array`` if it can hold ``size`` entries, else a zero-padded copy twice as large.

    The copy keeps the dtype: float64 masses and counts, int32 window sizes.

    >>> fit(np.zeros(2), 3).shape
    (4,)
    >>> fit(np.ones(2, dtype=np.int32), 3).tolist()
    [1, 1, 0, 0]
    """
    if size <= array.shape[0]:
        return array
    grown = np.zeros(max(size, array.shape[0] * 2), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return cast("A", grown)


def sorted_unique(values: IntArray) -> IntArray:
    """The distinct ``values`` in ascending order: ``np.unique`` by sorting.

    numpy 2.3+ answers a plain ``np.unique`` of integers from a hash table, ~10x slower
    than a sort at the thousand-odd entries a list's candidate pools hold (~80 vs ~8 us for
    1,000 indices below 1M). Same result.

    >>> sorted_unique(np.array([3, 1, 3, 2])).tolist()
    [1, 2, 3]
    """
    out = np.sort(values)
    if out.shape[0] < 2:
        return out
    keep = np.empty(out.shape[0], dtype=np.bool_)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


def isin_sorted(values: IntArray, members: IntArray) -> BoolArray:
    """Whether each of ``values`` is in ``members``, which must be sorted ascending.

    A binary search per value: for a few thousand members ~4x cheaper than ``np.isin``
    (which sorts both sides together).

    >>> isin_sorted(np.array([5, 3, 9]), np.array([1, 3, 5])).tolist()
    [True, True, False]
    """
    if members.shape[0] == 0:
        return np.zeros(values.shape[0], dtype=np.bool_)
    at = np.minimum(np.searchsorted(members, values), members.shape[0] - 1)
    found: BoolArray = members[at] == values
    return found


def unique_inverse(values: IntArray | Int32Array) -> tuple[IntArray, IntArray]:
    """``np.unique(values, return_inverse=True)`` for non-negative integers, by one sort.

    Each value is packed with its position into one int64 key, so a plain (SIMD) sort of
    the keys gives the sorted values and the permutation together; ``np.unique`` runs an
    ``argsort`` instead, ~1.6x slower at the few thousand entries of a list's neighbour
    rows (~115 vs ~185 us for 8,000). Same arrays (an inverse does not depend on how ties
    were sorted). Values too large to pack, or negative, take ``np.unique``.

    Values that span at most ``DENSE_SPAN`` times their count (a small catalogue's
    neighbour rows, a few thousand users' votes) need no sort: a table over the span marks
    the values present and numbers them, ~1.5-3x cheaper than the sort there; the same
    arrays. Wider spans (a million items) keep the sort, whose cost does not grow with the
    catalogue.

    >>> [a.tolist() for a in unique_inverse(np.array([7, 3, 7, 5]))]
    [[3, 5, 7], [2, 0, 2, 1]]
    >>> [a.tolist() for a in unique_inverse(np.array([70, 3, 70, 5]))]  # the sort
    [[3, 5, 70], [2, 0, 2, 1]]
    """
    n = values.shape[0]
    bits = max(1, (n - 1).bit_length())
    low, high = (int(values.min()), int(values.max())) if n else (0, 0)
    if n == 0 or low < 0 or high >= 1 << (62 - bits):
        unique, inverse = np.unique(values, return_inverse=True)
        return unique.astype(np.int64), inverse.astype(np.int64)
    if high < DENSE_SPAN * n:
        table = np.zeros(high + 1, dtype=np.int64)
        table[values] = 1
        present = np.flatnonzero(table)
        table[present] = np.arange(present.shape[0])
        return present, table[values]
    keys = (values.astype(np.int64) << bits) | np.arange(n, dtype=np.int64)
    keys.sort()
    sorted_values = keys >> bits
    first = np.empty(n, dtype=np.bool_)
    first[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=first[1:])
    inverse = np.empty(n, dtype=np.int64)
    inverse[keys & ((1 << bits) - 1)] = np.cumsum(first) - 1
    return sorted_values[first], inverse
