"""The inpainter protocol."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from waterz.core.matte import MatteBook


class Inpainter(Protocol):
    """Fills the masked pixels of a crop sequence."""

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int,
                mattes: MatteBook | None = None) -> np.ndarray:  # fmt: skip
        """`frames`: `(N, h, w, 3) uint8 BGR`; `masks`: `(N, h, w) bool`, True where the mark is.
        Returns frames `first..last` (inclusive) as `(last - first + 1, h, w, 3) uint8`, with every
        pixel outside the mask equal to the input. Frames outside that range are context only.
        `mattes`: the mark's mattes other segments of the video estimated; an engine that fits
        the mark's blend may use them and add its own. Others ignore it."""
        ...
