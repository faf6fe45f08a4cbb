"""The detector protocol."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from waterz.core.geometry import FrameMarks

__all__ = ["Detector", "FrameMarks"]


class Detector(Protocol):
    """Finds watermarks in a video, frame by frame."""

    #: False when the detector never looks at pixels (user-given boxes): the caller skips decoding.
    needs_frames: bool

    def detect(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> FrameMarks:
        """`frames`: an iterable of `(H, W, 3) uint8 BGR` frames, consumed once, in order;
        `total`: the number of frames; `size`: `(W, H)`. Returns one list of marks per frame."""
        ...
