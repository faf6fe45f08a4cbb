"""Stage 1: each frame's features at the analysis scale: grey levels and gradient, and since when
each pixel's gradient has held (`Holding`), which dates a mark that vanishes over a still shot."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Features:
    gray: np.ndarray  # (h, w) float32, analysis scale
    gx: np.ndarray
    gy: np.ndarray
    since: np.ndarray | None = None  # (h, w) int32: since which frame each pixel's gradient has held
    step: np.ndarray | None = None  # (h, w) float32: how much the gradient changed from the frame before


def features(frame: np.ndarray, scale: float) -> Features:
    if scale < 1.0:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    # Sobel / 4: a sharp step of d grey levels gives a gradient of about d.
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) * 0.25
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) * 0.25
    return Features(gray, gx, gy)


class Holding:
    """Each pixel's gradient as it has held lately, and since which frame: it holds while it stays
    within a third of its strength, or half of `min_strength`. Where a mark vanishes over a
    locked-off shot, this says since when it had been there, long before the windows that see it go."""

    def __init__(self, min_strength: float) -> None:
        self.min_strength = min_strength
        self.held: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def note(self, index: int, feats: Features, before: Features | None) -> None:
        """Sets `feats.since`, and `feats.step` from the frame `before` it (if still at hand)."""
        if self.held is None:
            self.held = (feats.gx.copy(), feats.gy.copy(), np.zeros(feats.gx.shape, np.int32))
        else:
            hx, hy, since = self.held
            dx, dy = feats.gx - hx, feats.gy - hy
            # |drift| < max(min_strength / 2, |held| / 3), in squares
            holds = dx * dx + dy * dy < np.maximum(0.25 * self.min_strength**2, (hx * hx + hy * hy) / 9)
            hx += np.where(holds, 0.2 * dx, dx)
            hy += np.where(holds, 0.2 * dy, dy)
            since[~holds] = index
        feats.since = self.held[2].copy()
        if before is not None:
            feats.step = np.hypot(feats.gx - before.gx, feats.gy - before.gy)
