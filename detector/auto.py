"""`auto`: the known marks first (`detector.preset`), then, where none of them is in the video, the
generic detector: `yolo` when YOLO weights are configured, else the weights-free `static`.

Both look at every frame of one decoding pass: each frame goes to the preset searches on its way
to the generic detector, so a video is decoded once whichever answer is taken. Where, after the
first `DECIDE_FRAMES`, one preset's mark was seen clearly in at least half of them, that preset is
the answer: the other searches and the generic detector stop there (their answers would be set
aside anyway), and only its search sees the rest of the video. A preset whose mark was not seen
clearly even once in those frames stops there too: a known mark is on from a video's first frame
(on the real Sora downloads it was seen clearly in 42 to 60 of the first 60 frames, on videos
without it in none).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from detector.base import FrameMarks
from detector.preset import PresetDetector
from detector.static import StaticDetector, StaticPart
from waterz.core.parallel import cores

PRESET_NAMES = ("sora", "tiktok")
DECIDE_FRAMES = 60


class AutoDetector:
    needs_frames = True

    def __init__(self, weights: str | None = None, mask_dilation: int = 2, **kwargs):
        self.presets = [PresetDetector(name, mask_dilation=mask_dilation) for name in PRESET_NAMES]
        if weights:
            from detector.yolo import YoloDetector

            self.generic = YoloDetector(weights=weights, mask_dilation=mask_dilation, **kwargs)
        else:
            self.generic = StaticDetector(mask_dilation=mask_dilation, **kwargs)
        self.matched: str | None = None  # the preset found, after `detect`; None: the generic answer

    def detect(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> FrameMarks:
        found = self.scan(frames, total, size)
        return found if isinstance(found, list) else self.generic.join([found], total)

    def scan(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int], first: int = 0,
             owns: tuple[int, int] | None = None) -> FrameMarks | StaticPart:  # fmt: skip
        """`detect` over a chunk of a video (see `StaticDetector.scan`): a known mark's marks, or
        the generic detector's answer, a part to join with the other chunks' where it is `static`."""
        frames = iter(frames)
        searches = [p.start(size) for p in self.presets]
        decided: list = []  # the searches clearly present after DECIDE_FRAMES, in PRESET_NAMES order

        def push(frame: np.ndarray) -> None:
            for search in searches:
                search.push(frame)

        def shared() -> Iterator[np.ndarray]:
            # Where the process may use more than one core, the searches take each frame on a
            # thread of their own while the generic detector takes it on this one, frame by frame.
            pool = ThreadPoolExecutor(1, thread_name_prefix="waterz-presets") if cores() > 1 else None
            pushed: Future | None = None  # the push of the frame before, where it runs on the pool
            try:
                for index, frame in enumerate(frames):
                    _finished(pushed)
                    pushed = pool.submit(push, frame) if pool is not None else push(frame)
                    yield frame
                    if index + 1 == DECIDE_FRAMES:
                        _finished(pushed)
                        decided.extend(s for s in searches if s.clearly_present())
                        if decided:
                            return
                        searches[:] = [s for s in searches if s.seen_clearly()]
                _finished(pushed)
            finally:
                if pool is not None:
                    pool.shutdown(wait=True)

        if isinstance(self.generic, StaticDetector):
            generic = self.generic.scan(shared(), total, size, first, owns)
        else:
            generic = self.generic.detect(shared(), total, size)
        if decided:
            search = decided[0]
            for frame in frames:
                search.push(frame)
            self.matched = search.det.preset.name
            return search.finish(total)
        known = [(sum(map(bool, marks)), s.det.preset.name, marks) for s in searches for marks in [s.finish(total)]]
        frames_marked, name, marks = max(known, key=lambda k: k[0], default=(0, None, None))
        if frames_marked:
            self.matched = name
            return marks
        return generic


def _finished(pushed: Future | None) -> None:
    """Wait for a push on the pool (None: it ran in place); its error, if any, is raised here."""
    if pushed is not None:
        pushed.result()
