"""The `static` detector's stages, wired: features -> windows -> candidates and pops -> tracks
(scored on every frame) -> masks, and the marks that never moved.

A video may be looked at in chunks, side by side (`scan` with `owns`), each seeing some frames
more than it answers for: a window belongs to the chunk that answers for its middle frame, so the
chunks' tracks, joined (`join`), hold the sums of the same windows as one pass over the video, and
their masks and the marks that never moved come out as that pass's would. What differs is what a
chunk could not know: a candidate at a place a window of another chunk found first must show the
picture changing around it, and each frame is scored against the chunk's own tracks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from detector.base import FrameMarks
from detector.static.candidates import candidates
from detector.static.config import StaticConfig
from detector.static.features import Holding, features
from detector.static.fixed import add_fixed_marks
from detector.static.pops import RUN, pops
from detector.static.shapes import frame_marks
from detector.static.tracks import Pending, Track, Tracks
from detector.static.windows import Window, Windows
from detector.steady import SteadyEdges
from waterz.core.geometry import Box


class StaticDetector:
    """The `static` detector (see `detector.static`). Needs no weights. Parameters: a
    `StaticConfig`, or any of its fields by name."""

    needs_frames = True

    def __init__(self, config: StaticConfig | None = None, **overrides) -> None:
        if overrides.get("steady", ()) is None:
            del overrides["steady"]
        self.cfg = replace(config or StaticConfig(), **overrides)

    def detect(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> FrameMarks:
        return self.join([self.scan(frames, total, size)], total)

    def scan(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int], first: int = 0,
             owns: tuple[int, int] | None = None) -> StaticPart:  # fmt: skip
        """Look at `total` frames, the video's from `first` on; `owns`: the frames (of the video)
        this chunk answers for, None: all of them (see the module docstring)."""
        cfg = self.cfg
        width, height = size
        scale = min(1.0, cfg.analysis_size / max(width, height))
        mine = (0, total) if owns is None else (owns[0] - first, owns[1] - first)
        windows, holding, steady = Windows(cfg), Holding(cfg.min_strength), SteadyEdges(cfg.steady)
        tracks = Tracks(None if owns is None else mine)
        for index, frame in enumerate(frames):
            feats = features(frame, scale)
            if mine[0] <= index < mine[1]:
                steady.push(feats.gray, feats.gx, feats.gy)
            holding.note(index, feats, windows.before(index))
            for window in windows.push(index, feats):
                _look(window, tracks, cfg)
            _score(windows, tracks, windows.ready(), cfg)
        for window in windows.finish():
            _look(window, tracks, cfg)
        _score(windows, tracks, windows.last_index + 1, cfg)
        answers = [_answer(t, total, first, mine, owns is None) for t in tracks.all]
        lent = [t for t, lent in answers if lent and t.present]
        return StaticPart([t for t, lent in answers if not lent], steady, scale, size, lent, tracks.pending)

    def join(self, parts: list[StaticPart], total: int) -> FrameMarks:
        """The marks of a video of `total` frames from its chunks' parts (or the one of a pass)."""
        tracks, steady = Tracks(), SteadyEdges(self.cfg.steady)
        for part in parts:
            steady.add(part.steady)
            for track in part.tracks:
                tracks.absorb(track)
        tracks.join_pending([p for part in parts for p in part.pending])
        for part in parts:
            for track in part.lent:
                host = tracks.at(track.box)
                if host is None:
                    tracks.absorb(track)
                else:
                    host.present |= track.present
        add_fixed_marks(steady, tracks, self.cfg, total)
        scale, (width, height) = parts[0].scale, parts[0].size
        return frame_marks(tracks.all, self.cfg, scale, total, width, height)


@dataclass
class StaticPart:
    """What `scan` saw: its tracks, each with the sums of the windows the chunk owns and the frames
    it answers for where the mark is (frame indices of the video), and the steady-edge sums of those
    frames. `lent`: the tracks on those frames that no window of the chunk's own saw, with the
    chunk's sums: they join the track of another chunk at their place, or stand as they are;
    `pending`: its own windows' components it could not place (`Tracks.pend`)."""

    tracks: list[Track]
    steady: SteadyEdges
    scale: float
    size: tuple[int, int]
    lent: list[Track] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)

    SUMS = ("sum_x", "sum_y", "votes", "still_sum", "still_n")

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The part as JSON-able facts and named arrays (`from_arrays` reads them back)."""
        every = self.tracks + self.lent
        meta = {"scale": self.scale, "size": list(self.size), "steady_frames": self.steady.n, "own": len(self.tracks),
                "tracks": [{"box": t.box.as_list(), "windows": t.windows, "present": sorted(t.present)}
                           for t in every]}  # fmt: skip
        arrays = {f"track{k}_{name}": getattr(t, name) for k, t in enumerate(every) for name in self.SUMS}
        arrays.update({f"steady{k}": a for k, a in enumerate(self.steady.sums())})
        meta["pending"] = []
        for k, p in enumerate(self.pending):
            region = None
            if p.still is not None:
                (rows, cols), arrays[f"pend{k}_s"] = p.still
                region = [rows.start, rows.stop, cols.start, cols.stop]
            meta["pending"].append({"box": p.box.as_list(), "span": list(p.span), "still": region})
            arrays.update({f"pend{k}_x": p.med_x, f"pend{k}_y": p.med_y, f"pend{k}_p": p.pixels})
        return meta, arrays

    @classmethod
    def from_arrays(cls, meta: dict, arrays) -> StaticPart:
        tracks = [Track(Box(*t["box"]), *(arrays[f"track{k}_{name}"] for name in cls.SUMS),
                        windows=[tuple(w) for w in t["windows"]], present=set(t["present"]))
                  for k, t in enumerate(meta["tracks"])]  # fmt: skip
        sums = tuple(arrays[f"steady{k}"] for k in range(5)) if "steady0" in arrays else ()
        steady = SteadyEdges.from_sums(int(meta["steady_frames"]), sums)
        own, size = int(meta["own"]), (int(meta["size"][0]), int(meta["size"][1]))
        pending = []
        for k, p in enumerate(meta["pending"]):
            r = p["still"]
            still = None if r is None else ((slice(r[0], r[1]), slice(r[2], r[3])), arrays[f"pend{k}_s"])
            pending.append(Pending(Box(*p["box"]), tuple(p["span"]), arrays[f"pend{k}_x"], arrays[f"pend{k}_y"],
                                   arrays[f"pend{k}_p"], still))  # fmt: skip
        return cls(tracks[:own], steady, float(meta["scale"]), size, tracks[own:], pending)


def _answer(track: Track, total: int, first: int, mine: tuple[int, int], whole: bool) -> tuple[Track, bool]:
    """The track as its chunk answers for it, spans and frames as the video counts them: with its
    own windows' sums, or the chunk's, lent (True), where no window of its own saw it."""
    present = track.presence(total)
    frames = {first + int(i) for i in np.flatnonzero(present[mine[0] : mine[1]]) + mine[0]}
    lent = not whole and track.own is None
    own = track if whole or lent else track.own
    return Track(own.box, own.sum_x, own.sum_y, own.votes, own.still_sum, own.still_n,
                 windows=[(a + first, b + first) for a, b in own.windows], present=frames), lent  # fmt: skip


def _look(window: Window, tracks: Tracks, cfg: StaticConfig) -> None:
    """A window's candidates (those at a known track's place need not show the picture changing
    around them) and, over consecutive frames, its pops, into the tracks."""
    for c in candidates(window.feats, cfg):
        if tracks.knows(c.box) or c.picture_changes():
            tracks.add(c.box, window.span, c.med_x, c.med_y, c.pixels, c.gray)
        elif tracks.owned(window.span):  # another chunk may know a track there
            tracks.pend(c.box, window.span, c.med_x, c.med_y, c.pixels, c.gray)
    if window.consecutive:
        for t, pop in pops(window.feats, cfg):
            tracks.add_pop(pop, window.feats, window.span[0], t, RUN)


def _score(windows: Windows, tracks: Tracks, end: int, cfg: StaticConfig) -> None:
    """Each frame once every window that can reveal a mark on it has run."""
    for index, feats in windows.scored(end):
        tracks.score(index, feats, cfg.window, cfg.presence)
