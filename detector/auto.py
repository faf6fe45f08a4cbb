"""`auto`: the known marks first (`detector.preset`), then, where none of them is in the video, the
generic detector: `yolo` when YOLO weights are configured, else the weights-free `static`.

Both look at every frame of one decoding pass: each frame goes to the preset searches on its way
to the generic detector, so a video is decoded once whichever answer is taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from detector.base import FrameMarks
from detector.preset import PresetDetector
from waterz.settings import get_settings

PRESET_NAMES = ("sora", "tiktok")


class AutoDetector:
    needs_frames = True

    def __init__(self, weights: str | None = None, mask_dilation: int = 2, **kwargs):
        self.presets = [PresetDetector(name, mask_dilation=mask_dilation) for name in PRESET_NAMES]
        if weights or get_settings().yolo_weights:
            from detector.yolo import YoloDetector

            self.generic = YoloDetector(weights=weights, mask_dilation=mask_dilation, **kwargs)
        else:
            from detector.static import StaticDetector

            self.generic = StaticDetector(mask_dilation=mask_dilation, **kwargs)
        self.matched: str | None = None  # the preset found, after `detect`; None: the generic answer

    def detect(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> FrameMarks:
        searches = [p.start(size) for p in self.presets]

        def shared() -> Iterator[np.ndarray]:
            for frame in frames:
                for search in searches:
                    search.push(frame)
                yield frame

        generic = self.generic.detect(shared(), total, size)
        known = [(sum(map(bool, marks)), name, marks) for name, marks in
                 zip(PRESET_NAMES, (s.finish(total) for s in searches), strict=True)]  # fmt: skip
        frames_marked, name, marks = max(known, key=lambda k: k[0])
        if frames_marked:
            self.matched = name
            return marks
        return generic
