"""The inpainter protocol."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Inpainter(Protocol):
    """Fills the masked pixels of a crop sequence."""

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int) -> np.ndarray:
        """`frames`: `(N, h, w, 3) uint8 BGR`; `masks`: `(N, h, w) bool`, True where the mark is.
        Returns frames `first..last` (inclusive) as `(last - first + 1, h, w, 3) uint8`, with every
        pixel outside the mask equal to the input. Frames outside that range are context only."""
        ...
