"""Stage 1: each frame's features at the analysis scale: grey levels and gradient, and since when
each pixel's gradient has held (`Holding`), which dates a mark that vanishes over a still shot."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

QUARTER = np.float32(0.25)


@dataclass
class Features:
    """One frame at the analysis scale, kept compact (the windows hold dozens of frames): grey
    levels as they were decoded (`uint8`) and the gradient as Sobel's integer sums (`int16`, four
    times the gradient); read as float32 through `gray`, `gx` and `gy`, the same values exactly."""

    gray8: np.ndarray  # (h, w) uint8, analysis scale
    gx4: np.ndarray  # (h, w) int16: 4 x the horizontal gradient
    gy4: np.ndarray
    since: np.ndarray | None = None  # (h, w) int32: since which frame each pixel's gradient has held
    step: np.ndarray | None = None  # (h, w) float32: how much the gradient changed from the frame before

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray8.shape

    def at(self, region: tuple[slice, slice]) -> Features:
        """The features of a region of the frame (views: nothing is copied or converted)."""
        return Features(self.gray8[region], self.gx4[region], self.gy4[region])

    @property
    def gray(self) -> np.ndarray:
        return self.gray8.astype(np.float32)

    @property
    def gx(self) -> np.ndarray:
        # Sobel / 4: a sharp step of d grey levels gives a gradient of about d.
        return self.gx4 * QUARTER

    @property
    def gy(self) -> np.ndarray:
        return self.gy4 * QUARTER


def features(frame: np.ndarray, scale: float) -> Features:
    if scale < 1.0:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return Features(gray, cv2.Sobel(gray, cv2.CV_16S, 1, 0, ksize=3), cv2.Sobel(gray, cv2.CV_16S, 0, 1, ksize=3))


class Holding:
    """Each pixel's gradient as it has held lately, and since which frame: it holds while it stays
    within a third of its strength, or half of `min_strength`. Where a mark vanishes over a
    locked-off shot, this says since when it had been there, long before the windows that see it go."""

    def __init__(self, min_strength: float) -> None:
        self.min_strength = min_strength
        self.held: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def note(self, index: int, feats: Features, before: Features | None) -> None:
        """Sets `feats.since`, and `feats.step` from the frame `before` it (if still at hand)."""
        gx, gy = feats.gx, feats.gy
        if self.held is None:
            self.held = (gx, gy, np.zeros(gx.shape, np.int32))  # (fresh arrays: `gx` is made on reading)
        else:
            hx, hy, since = self.held
            dx, dy = gx - hx, gy - hy
            # |drift| < max(min_strength / 2, |held| / 3), in squares
            holds = dx * dx + dy * dy < np.maximum(0.25 * self.min_strength**2, (hx * hx + hy * hy) / 9)
            hx += np.where(holds, 0.2 * dx, dx)
            hy += np.where(holds, 0.2 * dy, dy)
            since[~holds] = index
        feats.since = self.held[2].copy()
        if before is not None:
            feats.step = np.hypot(gx - before.gx, gy - before.gy)
