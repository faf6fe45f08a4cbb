"""A job split into tasks that run side by side: chunks of frames to detect in and to encode,
and what each encode chunk waits for. Pure.

Detection chunks see a few frames more on each side than they answer for (`seen`), so that
what the detector needs around a frame (its windows) is there at a chunk's edges too; each
frame's marks come from the chunk that owns it (`merge_marks`), and the static detector's
chunks are joined into one pass's tracks before any mask is made (`join_found`). Encode chunks
each composite and encode their own frames once every segment that cleans one of them is done
(`waits_for`); a chunk no segment touches can be encoded at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from detector.static import StaticPart
from waterz.core.geometry import Box, FrameMarks, Mark
from waterz.pipeline.plan import Segment


@dataclass(frozen=True)
class Chunk:
    """Frames `start <= f < stop`."""

    index: int
    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start

    def seen(self, total: int, overlap: int, align: int = 1) -> tuple[int, int]:
        """The frames `lo <= f < hi` a detector looks at to answer for this chunk: `overlap` more
        on each side, `lo` rounded down to a multiple of `align` (so that a detector's windows fall
        where they fall in a pass over the whole video)."""
        return max(0, (self.start - overlap) // align * align), min(total, self.stop + overlap)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Chunk:
        return cls(int(data["index"]), int(data["start"]), int(data["stop"]))


def split(total: int, count: int, min_frames: int = 1) -> list[Chunk]:
    """`total` frames in `count` chunks of near-equal length, fewer where chunks would be shorter
    than `min_frames` (one chunk at least, for a video of at least one frame)."""
    count = max(1, min(count, total // max(1, min_frames)))
    bounds = [round(k * total / count) for k in range(count + 1)]
    return [Chunk(k, a, b) for k, (a, b) in enumerate(zip(bounds, bounds[1:])) if b > a]


def chunk_count(total: int, workers: int, max_frames: int) -> int:
    """As many chunks as workers, and more where a chunk would be longer than `max_frames`."""
    return max(1, workers, -(-total // max(1, max_frames)))


def merge_marks(parts: list[tuple[Chunk, int, FrameMarks]], total: int, out: FrameMarks | None = None) -> FrameMarks:
    """The video's marks from its detection chunks: `(chunk, lo, marks)` where `marks[i]` are the
    marks of frame `lo + i`; each frame's from the chunk that owns it (into `out`, where given)."""
    out = [[] for _ in range(total)] if out is None else out
    for chunk, lo, marks in parts:
        for f in range(chunk.start, chunk.stop):
            out[f] = list(marks[f - lo])
    return out


def waits_for(chunk: Chunk, segments: list[Segment]) -> list[int]:
    """The segments that clean some frame of `chunk` (its pixels are needed to encode it)."""
    return [s.index for s in segments if s.start_frame < chunk.stop and s.end_frame >= chunk.start]


def save_found(path: str | Path, found: FrameMarks | StaticPart, first: int = 0) -> None:
    """Write what a detection chunk found (its frames from `first` on): marks (`save_marks`), or
    the static detector's part, to join with the other chunks' (`StaticDetector.join`)."""
    if not isinstance(found, StaticPart):
        save_marks(path, found, first)
        return
    meta, arrays = found.to_arrays()
    with open(path, "wb") as f:  # dense float sums: compressing them took seconds and saved little
        np.savez(f, meta=_json({"first": first, "static": meta}), **arrays)


def load_found(path: str | Path) -> tuple[int, FrameMarks | StaticPart]:
    """What `save_found` wrote: `(first, marks or part)`."""
    with np.load(path) as data:
        meta = json.loads(data["meta"].tobytes().decode())
        if "static" not in meta:
            return int(meta["first"]), _marks(meta, data)
        return int(meta["first"]), StaticPart.from_arrays(meta["static"], data)


def join_found(parts: list[tuple[Chunk, int, FrameMarks | StaticPart]], total: int,
               join: Callable[[list[StaticPart]], FrameMarks]) -> FrameMarks:  # fmt: skip
    """The video's marks from its detection chunks' findings: `join` makes marks of the static
    detector's parts (all frames), then each chunk that found marks (a known mark's, another
    detector's) gives those of the frames it owns."""
    statics = [found for _, _, found in parts if isinstance(found, StaticPart)]
    out = join(statics) if statics else [[] for _ in range(total)]
    return merge_marks([p for p in parts if not isinstance(p[2], StaticPart)], total, out)


def save_marks(path: str | Path, marks: FrameMarks, first: int = 0) -> None:
    """Write `marks` (frames `first`...) to `path` (npz): each distinct mark once, and per frame
    which marks it holds."""
    ids: dict[int, int] = {}
    unique: list[Mark] = []
    frames = []
    for frame in marks:
        row = []
        for mark in frame:
            if id(mark) not in ids:
                ids[id(mark)] = len(unique)
                unique.append(mark)
            row.append(ids[id(mark)])
        frames.append(row)
    meta = {"first": first, "frames": frames, "boxes": [m.box.as_list() for m in unique]}
    arrays = {f"mask{k}": m.mask for k, m in enumerate(unique)}
    with open(path, "wb") as f:
        np.savez_compressed(f, meta=_json(meta), **arrays)


def _json(meta: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


def load_marks(path: str | Path) -> tuple[int, FrameMarks]:
    """What `save_marks` wrote: `(first, marks)`; frames that shared a mark share it again."""
    first, found = load_found(path)
    if isinstance(found, StaticPart):
        raise ValueError(f"{path} holds a detection chunk's tracks, not marks")
    return first, found


def _marks(meta: dict, data) -> FrameMarks:
    unique = [Mark(Box(*box), data[f"mask{k}"].astype(bool)) for k, box in enumerate(meta["boxes"])]
    return [[unique[k] for k in row] for row in meta["frames"]]
