"""The median at every pixel of a few planes (a window's frames, their gradient fields), by a
selection network: a fixed sequence of compare-exchanges, each an elementwise minimum and maximum
of two whole planes, after which the middle planes hold the middle values at every pixel.

Why: `np.median(stack, axis=0)` partitions each pixel's values apart, reading the stack across
its planes, one pixel at a time; the network reads each plane whole, in order, as many times as it
has comparators that reach the middle. The network is Batcher's odd-even merge sort for the next
power of two, with the comparators no middle output depends on dropped: the values it gives are
`np.median`'s, exactly (a comparator network puts the k-th smallest of every input at place k
once it does so for every input of 0s and 1s, which the tests check)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np


def median_of_planes(planes: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """`np.median(np.stack(planes), axis=0)`, for planes of one shape without NaN, of a floating
    type (others are taken as float64, as numpy does)."""
    n = len(planes)
    if n == 0:
        raise ValueError("the median of no planes")
    dtype = planes[0].dtype if np.issubdtype(planes[0].dtype, np.floating) else np.float64
    v = [np.array(p, dtype=dtype) for p in planes]  # copies, sorted in place
    for a, b in network(n):
        low = np.minimum(v[a], v[b])
        np.maximum(v[a], v[b], out=v[b])
        v[a] = low
    lo, hi = (n - 1) // 2, n // 2
    return v[lo] if lo == hi else (v[lo] + v[hi]) / 2


@functools.cache
def network(n: int) -> tuple[tuple[int, int], ...]:
    """The comparators `(a, b)`, a < b, that leave the middle values of `n` inputs (the `(n-1)//2`-th
    and `n//2`-th smallest) at those places: after one, `a` holds the smaller of the two values."""
    size = 1 << max(0, n - 1).bit_length()
    # inputs from n on stand for +inf: they stay where they are, so their comparators change nothing
    full = [(a, b) for a, b in _batcher(size) if b < n]
    needed, kept = {(n - 1) // 2, n // 2}, []
    for a, b in reversed(full):
        if a in needed or b in needed:
            kept.append((a, b))
            needed |= {a, b}
    return tuple(reversed(kept))


def _batcher(size: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort of `size` (a power of two) inputs, as comparators in order."""
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs
