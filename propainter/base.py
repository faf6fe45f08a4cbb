"""The inpainter contract, and the base every engine builds on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import cv2
import numpy as np

from waterz.core.matte import Learned, MatteBook


def work_threads() -> int:
    """Frames (or other independent pieces) an engine works on at once: as many as OpenCV may use
    cores (`CPU_THREADS` in a worker, where one worker stands for one device)."""
    return max(1, cv2.getNumThreads())


@dataclass
class Cleaned:
    """Frames first..last cleaned, `(n, h, w, 3) uint8`, and what the engine learned of the mark."""

    frames: np.ndarray
    learned: Learned = field(default_factory=Learned)


class Inpainter(ABC):
    """Fills the masked pixels of a crop sequence. An engine supplies `fill`; this base keeps every
    pixel outside the mask the input's, bit for bit."""

    def clean(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int,
              mattes: MatteBook | None = None) -> Cleaned:  # fmt: skip
        """`frames`: `(N, h, w, 3) uint8 BGR`; `masks`: `(N, h, w) bool`, True where the mark is.
        Returns frames `first..last` (inclusive), every pixel outside the mask equal to the input;
        frames outside that range are context only. `mattes`: the mark's mattes other segments
        estimated; an engine that fits the mark's blend may use them, and says what it fitted in
        `Cleaned.learned`. Others ignore them."""
        filled = self.fill(frames, masks, first, last, mattes)
        inside = masks[first : last + 1, :, :, None]
        return Cleaned(np.where(inside, filled.frames, frames[first : last + 1]), filled.learned)

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int,
                mattes: MatteBook | None = None) -> np.ndarray:  # fmt: skip
        """`clean`'s frames alone."""
        return self.clean(frames, masks, first, last, mattes).frames

    @abstractmethod
    def fill(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, mattes: MatteBook | None) -> Cleaned:
        """Frames first..last with their masked pixels filled (what lies outside the mask is the
        base's), and what was learned of the mark."""
