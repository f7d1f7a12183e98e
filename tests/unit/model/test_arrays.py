"""The set helpers of ``pipeline.model.arrays``: numpy's answers, by cheaper means."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.model.arrays import isin_sorted, sorted_unique, unique_inverse


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1_000, 9_000])
@pytest.mark.parametrize("high", [3, 1_500, 1_000_000, 2**31 - 1])  # table and sort
def test_unique_helpers_give_numpys_arrays(n: int, high: int) -> None:
    rng = np.random.default_rng(n + high)
    for dtype in (np.int64, np.int32):
        values = rng.integers(0, high, n).astype(dtype)
        before = values.copy()
        assert np.array_equal(sorted_unique(values.copy()), np.unique(values))
        unique, inverse = unique_inverse(values)
        expected, expected_inverse = np.unique(values, return_inverse=True)
        assert np.array_equal(unique, expected) and unique.dtype == np.int64
        assert np.array_equal(inverse, expected_inverse) and inverse.dtype == np.int64
        assert np.array_equal(values, before)  # the input is left alone


def test_unique_inverse_falls_back_for_values_it_cannot_pack() -> None:
    for values in (np.array([5, -2, 5, -9]), np.array([2**61, 3, 2**61, 2**62])):
        unique, inverse = unique_inverse(values)
        expected, expected_inverse = np.unique(values, return_inverse=True)
        assert np.array_equal(unique, expected) and np.array_equal(inverse, expected_inverse)


@pytest.mark.parametrize("members", [0, 1, 5, 2_000])
def test_isin_sorted_is_isin(members: int) -> None:
    rng = np.random.default_rng(members)
    pool = np.sort(rng.integers(0, 5_000, members))
    values = rng.integers(0, 5_000, 1_500)
    assert np.array_equal(isin_sorted(values, pool), np.isin(values, pool))
