"""The `static` detector's stages, wired: features -> windows -> candidates and pops -> tracks
(scored on every frame) -> masks, and the marks that never moved."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from detector.base import FrameMarks
from detector.static.candidates import candidates
from detector.static.config import StaticConfig
from detector.static.features import Holding, features
from detector.static.fixed import add_fixed_marks
from detector.static.pops import RUN, pops
from detector.static.shapes import frame_marks
from detector.static.tracks import Tracks
from detector.static.windows import Window, Windows
from detector.steady import SteadyEdges


class StaticDetector:
    """The `static` detector (see `detector.static`). Needs no weights. Parameters: a
    `StaticConfig`, or any of its fields by name."""

    needs_frames = True

    def __init__(self, config: StaticConfig | None = None, **overrides) -> None:
        if overrides.get("steady", ()) is None:
            del overrides["steady"]
        self.cfg = replace(config or StaticConfig(), **overrides)

    def detect(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> FrameMarks:
        cfg = self.cfg
        width, height = size
        scale = min(1.0, cfg.analysis_size / max(width, height))
        windows, holding, tracks, steady = Windows(cfg), Holding(cfg.min_strength), Tracks(), SteadyEdges(cfg.steady)
        for index, frame in enumerate(frames):
            feats = features(frame, scale)
            steady.push(feats.gray, feats.gx, feats.gy)
            holding.note(index, feats, windows.before(index))
            for window in windows.push(index, feats):
                _look(window, tracks, cfg)
            _score(windows, tracks, windows.ready(), cfg)
        for window in windows.finish():
            _look(window, tracks, cfg)
        _score(windows, tracks, windows.last_index + 1, cfg)
        add_fixed_marks(steady, tracks, cfg)
        return frame_marks(tracks.all, cfg, scale, total, width, height)


def _look(window: Window, tracks: Tracks, cfg: StaticConfig) -> None:
    """A window's candidates (those at a known track's place need not show the picture changing
    around them) and, over consecutive frames, its pops, into the tracks."""
    for c in candidates(window.feats, cfg):
        if tracks.knows(c.box) or c.picture_changes():
            tracks.add(c.box, window.span, c.med_x, c.med_y, c.pixels, c.gray)
    if window.consecutive:
        for t, pop in pops(window.feats, cfg):
            tracks.add_pop(pop, window.feats, window.span[0], t, RUN)


def _score(windows: Windows, tracks: Tracks, end: int, cfg: StaticConfig) -> None:
    """Each frame once every window that can reveal a mark on it has run."""
    for index, feats in windows.scored(end):
        tracks.score(index, feats, cfg.window, cfg.presence)
