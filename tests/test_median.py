"""The median of planes by a selection network (`waterz.core.median`) gives numpy's median."""

from __future__ import annotations

import numpy as np
import pytest

from waterz.core.median import median_of_planes, network


@pytest.mark.parametrize("n", range(1, 17))
def test_the_network_leaves_the_middle_values_of_every_input_of_zeros_and_ones(n: int) -> None:
    # The 0-1 principle: a comparator network that places every input of 0s and 1s right places
    # every input right. All 2**n such inputs at once, one per column.
    inputs = (np.arange(1 << n)[None, :] >> np.arange(n)[:, None]) & 1
    values = [row.copy() for row in inputs]
    for a, b in network(n):
        values[a], values[b] = np.minimum(values[a], values[b]), np.maximum(values[a], values[b])
    ordered = np.sort(inputs, axis=0)
    for k in {(n - 1) // 2, n // 2}:
        assert np.array_equal(values[k], ordered[k]), f"the {k}-th smallest of {n}"


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 15, 16, 17, 23])
def test_median_of_planes_is_numpys_median_to_the_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    planes = rng.normal(0, 40, (n, 37, 53)).astype(np.float32)
    planes[:, :5] = np.round(planes[:, :5] / 20)  # ties
    got = median_of_planes(planes)
    assert got.dtype == np.float32
    assert np.array_equal(got, np.median(planes, axis=0))
    assert np.array_equal(median_of_planes(list(planes)), got)


def test_integer_planes_give_a_float_median_and_the_planes_are_left_as_they_were() -> None:
    planes = np.random.default_rng(0).integers(0, 256, (6, 9, 11), dtype=np.uint8)
    kept = planes.copy()
    got = median_of_planes(planes)
    assert got.dtype == np.float64
    assert np.array_equal(got, np.median(planes, axis=0))
    assert np.array_equal(planes, kept)


def test_no_planes_is_an_error() -> None:
    with pytest.raises(ValueError, match="no planes"):
        median_of_planes([])
