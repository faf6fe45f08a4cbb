"""Per-frame OpenCV (Telea) inpainting: the baseline."""

from __future__ import annotations

import cv2
import numpy as np

from waterz.core.stop import checkpoint


class TeleaInpainter:
    """Fills each frame on its own from the mask's border (no temporal information)."""

    def __init__(self, radius: int = 5) -> None:
        self.radius = radius

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, mattes=None) -> np.ndarray:
        out = frames[first : last + 1].copy()
        for k, (frame, mask) in enumerate(zip(frames[first : last + 1], masks[first : last + 1])):
            checkpoint(k, last - first + 1)
            if mask.any():
                out[k] = cv2.inpaint(frame, mask.astype(np.uint8), self.radius, cv2.INPAINT_TELEA)
        return out
