"""The self-check after cleaning: how much of the mark is left in a segment's own output.

A mark shows as edges that the picture around it does not have: its outline, its letters. Frame by
frame, the mean edge strength on the mark's pixels (its mask) above that of a ring of picture
around them is the mark's extra edge energy. In the cleaned output the same figure, as a share of
the input's, is what is left of the mark: 0 when the mask holds nothing the surroundings do not
(a smooth or faithful fill), near 1 when it was left as it was. Rings around the mask and ghost
strokes count, since they are edges too. Frames where the input shows no such extra (the mark lost
in a busy picture, or a frame without it) are not counted.

The figure's floor is the picture's own texture, which a blurred fill lowers as well: it reports,
and decides nothing.
"""

from __future__ import annotations

import cv2
import numpy as np

from waterz.core.matte import gradient

LIMIT = 0.1
"""The share of the mark left that the service aims to stay under (its target, as reported)."""

MIN_EXTRA = 2.0
"""Grey levels of extra edge strength a frame's input must show on the mask for the frame to count."""


def edges(frame: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the grey picture, in grey levels per pixel."""
    return gradient(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)) / 4


def _height(mask: np.ndarray) -> int:
    """Rows from the mask's first to its last."""
    ys = np.flatnonzero(mask.any(axis=1))
    return int(ys[-1] - ys[0] + 1)


def _ring(mask: np.ndarray) -> np.ndarray:
    """The picture around a mask: as wide as a quarter of its height (at least 4 px), one pixel off it."""
    width = max(4, _height(mask) // 4)
    outer = cv2.dilate(mask.astype(np.uint8), np.ones((2 * width + 3, 2 * width + 3), np.uint8))
    near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    return (outer > 0) & (near == 0)


def extra(strength: np.ndarray, mask: np.ndarray, ring: np.ndarray) -> float:
    """Mean edge strength on `mask` minus that on `ring` (0 when lower)."""
    if not ring.any():
        return 0.0
    return max(0.0, float(strength[mask].mean() - strength[ring].mean()))


def mark_left(before: np.ndarray, after: np.ndarray, masks: np.ndarray) -> float | None:
    """The mean share of the mark left in `after` over the frames where `before` shows it, or
    None where none does. `before`, `after`: `(n, h, w, 3) uint8`; `masks`: `(n, h, w) bool`, the
    mark's masks, measured grown (`grown`) so that a halo just past a mask counts as left too."""
    shares = []
    for b, a, m in zip(before, after, grown(masks), strict=True):
        if not m.any():
            continue
        ring = _ring(m)
        base = extra(edges(b), m, ring)
        if base >= MIN_EXTRA:
            shares.append(min(1.0, extra(edges(a), m, ring) / base))  # more edges than the mark's own: all of it left
    return float(np.mean(shares)) if shares else None


def grown(masks: np.ndarray) -> np.ndarray:
    """Each frame's mask grown by an eighth of its height (at least 2 px): where the mark may
    reach past its mask (a wiggle, a fade's halo)."""
    out = masks.copy()
    for k, m in enumerate(masks):
        if m.any():
            r = max(2, _height(m) // 8)
            out[k] = cv2.dilate(m.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0
    return out
