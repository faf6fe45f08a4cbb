"""Per-frame OpenCV (Telea) inpainting: the baseline."""

from __future__ import annotations

import cv2
import numpy as np

from propainter.base import Cleaned, Inpainter
from waterz.core.stop import checkpoint


class TeleaInpainter(Inpainter):
    """Fills each frame on its own from the mask's border (no temporal information)."""

    def __init__(self, radius: int = 5) -> None:
        self.radius = radius

    def fill(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, mattes=None, sources=None) -> Cleaned:
        out = frames[first : last + 1].copy()
        for k, (frame, mask) in enumerate(zip(frames[first : last + 1], masks[first : last + 1])):
            checkpoint(k, last - first + 1)
            if mask.any():
                out[k] = cv2.inpaint(frame, mask.astype(np.uint8), self.radius, cv2.INPAINT_TELEA)
        return Cleaned(out)
