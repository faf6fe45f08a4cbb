"""The self-check after cleaning: how much of the mark is left in a segment's own output.

A mark shows as edges that the picture around it does not have: its outline, its letters. Frame by
frame, the mean edge strength on the mark's pixels (its mask) above that of a ring of picture
around them is the mark's extra edge energy. In the cleaned output the same figure, as a share of
the input's, is what is left of the mark: 0 when the mask holds nothing the surroundings do not
(a smooth or faithful fill), near 1 when it was left as it was. Rings around the mask and ghost
strokes count, since they are edges too. Frames where the input shows no such extra (the mark lost
in a busy picture, or a frame without it) are not counted.
"""

from __future__ import annotations

import cv2
import numpy as np

LIMIT = 0.1
"""The share of the mark left above which a segment is cleaned again (the service's target)."""

BETTER = 0.5
"""The share of the first cleaning's figure, by each measure, that a second may leave at most to
be kept (see `clearly_better`): it gives up the fitted matte, so it must clearly do better."""

MIN_EXTRA = 2.0
"""Grey levels of extra edge strength a frame's input must show on the mask for the frame to count."""


def edges(frame: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the grey picture, in grey levels per pixel."""
    return np.hypot(*_gradient(frame))


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


def ghost(before: np.ndarray, after: np.ndarray, masks: np.ndarray) -> float | None:
    """How much of the mark's own edges `after` still holds, as a share of `before`'s (0 to 1),
    or None where `before` shows none. The mark's edges are those that stay put over the
    segment: the mean gradient field of `before` on the grown masks. Each frame's gradient is
    projected onto it; a ghost of the mark (a blend inverted with a matte that does not hold, too
    much or too little) projects as the mark does, of either sign, while the picture's own texture,
    which moves, and a smooth fill project to about 0. So unlike `mark_left` it does not prefer a
    blurred fill to a faithful one. Arrays as in `mark_left`."""
    region = grown(masks)
    if not region.any():
        return None
    fields = [_gradient(f) for f in before]
    tx = np.mean([f[0] for f in fields], axis=0)
    ty = np.mean([f[1] for f in fields], axis=0)
    held = shown = 0.0
    for (bx, by), a, m in zip(fields, after, region, strict=True):
        ax, ay = _gradient(a)
        shown += float((bx * tx + by * ty)[m].sum())
        held += abs(float((ax * tx + ay * ty)[m].sum()))
    return min(1.0, held / shown) if shown > 0 else None


def clearly_better(before: np.ndarray, first: np.ndarray, second: np.ndarray, masks: np.ndarray) -> bool:
    """Whether a second cleaning (`second`, which gave up the fitted matte) is to be kept over the
    first: where both measures say it clearly removed what the first left, each to at most
    `BETTER` of the first's figure (and the first held more than `LIMIT` of the mark's edges).
    Each alone can be fooled: `mark_left` by a blurred fill (its floor is the picture's own
    texture, which a blur lowers too), `ghost` by texture that moves little (a slow zoom's, or a
    box mask's wide surroundings), which then persists like the mark's edges."""
    a, b = ghost(before, first, masks), ghost(before, second, masks)
    if a is None or b is None or a <= LIMIT or b > BETTER * a:
        return False
    left_a, left_b = mark_left(before, first, masks), mark_left(before, second, masks)
    return left_a is not None and left_b is not None and left_b <= BETTER * left_a


def _gradient(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 4, cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 4


def grown(masks: np.ndarray) -> np.ndarray:
    """Each frame's mask grown by an eighth of its height (at least 2 px): for a second cleaning
    where the mark reached past the first mask (a wiggle, a fade's halo)."""
    out = masks.copy()
    for k, m in enumerate(masks):
        if m.any():
            r = max(2, _height(m) // 8)
            out[k] = cv2.dilate(m.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0
    return out
