"""Segment planning: per-frame boxes -> segments where the mark stays put, each with a crop. Pure.

A segment is a frame range processed as one unit (one Celery task in the service). Frames where no
mark is found are in no segment and pass through untouched. Long runs are split, with a few frames
of overlap between neighbouring chunks so the join can be cross-faded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from waterz.core.geometry import Box, union_box


@dataclass(frozen=True)
class PlanConfig:
    """Knobs of the planner; the defaults mirror `Settings`."""

    min_segments: int = 2
    min_chunk_frames: int = 20
    max_chunk_frames: int = 300
    overlap_frames: int = 4
    context_frames: int = 12
    crop_padding: int = 24
    min_crop: int = 128
    align: int = 8
    bridge_frames: int = 2
    move_tolerance: float = 0.5  # IoU below which a box is a new position


@dataclass(frozen=True)
class Segment:
    """Frames `start_frame`..`end_frame` (inclusive) cleaned inside `crop`.

    The inpainter sees `context_start`..`context_end` (a few frames more each side, for temporal
    sources). The first `fade_in` frames overlap the previous chunk and are cross-faded with it.
    """

    index: int
    start_frame: int
    end_frame: int
    crop: Box
    context_start: int
    context_end: int
    fade_in: int = 0
    fade_out: int = 0

    @property
    def length(self) -> int:
        return self.end_frame - self.start_frame + 1

    def as_dict(self) -> dict:
        data = asdict(self)
        data["crop"] = self.crop.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Segment:
        fields = {k: int(data[k]) for k in ("index", "start_frame", "end_frame", "context_start", "context_end")}
        crop = data["crop"]
        return cls(**fields, crop=Box(int(crop["x"]), int(crop["y"]), int(crop["w"]), int(crop["h"])),
                   fade_in=int(data.get("fade_in", 0)), fade_out=int(data.get("fade_out", 0)))  # fmt: skip


@dataclass
class _Run:
    start: int
    end: int  # inclusive
    box: Box
    join_next: bool = False

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def frame_keys(frame_boxes: list[list[Box]]) -> list[Box | None]:
    """One box per frame: the union of that frame's marks, None where there is none."""
    return [union_box(list(boxes)) for boxes in frame_boxes]


def bridge_gaps(keys: list[Box | None], max_gap: int, tolerance: float) -> list[Box | None]:
    """Fill gaps of up to `max_gap` frames (missing or different boxes) between two frames whose
    boxes agree: one- or two-frame detector misses do not break a segment."""
    keys = list(keys)
    n = len(keys)
    i = 0
    while i < n:
        if keys[i] is None:
            i += 1
            continue
        for j in range(i + 2, min(n, i + max_gap + 2)):
            if keys[j] is not None and _same(keys[i], keys[j], tolerance):
                if any(k is None or not _same(keys[i], k, tolerance) for k in keys[i + 1 : j]):
                    for k in range(i + 1, j):
                        keys[k] = keys[i]
                break
        i += 1
    return keys


def find_runs(keys: list[Box | None], tolerance: float) -> list[_Run]:
    """Maximal runs of consecutive frames whose boxes stay at one position."""
    runs: list[_Run] = []
    for i, key in enumerate(keys):
        if key is None:
            continue
        last = runs[-1] if runs else None
        if last is not None and last.end == i - 1 and _same(last.box, key, tolerance):
            last.end = i
            last.box = last.box.union(key)
        else:
            runs.append(_Run(i, i, key))
    return runs


def split_runs(runs: list[_Run], min_segments: int, min_chunk: int, max_chunk: int) -> list[_Run]:
    """Split runs longer than `max_chunk`, then the longest until there are `min_segments`,
    never making a chunk shorter than `min_chunk`. Split neighbours are marked `join_next`."""
    out: list[_Run] = []
    for run in runs:
        parts = max(1, -(-run.length // max_chunk))
        out.extend(_split_even(run, parts, min_chunk))
    while len(out) < min_segments and out:
        longest = max(range(len(out)), key=lambda k: out[k].length)
        if out[longest].length < 2 * min_chunk:
            break
        out[longest : longest + 1] = _split_even(out[longest], 2, min_chunk)
    return out


def _split_even(run: _Run, parts: int, min_chunk: int) -> list[_Run]:
    parts = max(1, min(parts, run.length // max(1, min_chunk)))
    if parts == 1:
        return [run]
    bounds = [run.start + (run.length * k) // parts for k in range(parts + 1)]
    pieces = [_Run(bounds[k], bounds[k + 1] - 1, run.box, join_next=True) for k in range(parts)]
    pieces[-1].join_next = run.join_next
    return pieces


def crop_for(box: Box, width: int, height: int, padding: int, min_size: int, align: int) -> Box:
    """The crop around `box`: padded, at least `min_size` a side (the frame allowing), edges on
    multiples of `align` where the frame allows, and always inside the frame."""

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        lo, hi = lo - padding, hi + padding
        if hi - lo < min_size:
            grow = min_size - (hi - lo)
            lo, hi = lo - grow // 2, hi + grow - grow // 2
        lo = (lo // align) * align
        hi = -(-hi // align) * align
        if hi - lo > limit:
            return 0, limit
        if lo < 0:
            lo, hi = 0, hi - lo
        if hi > limit:
            lo, hi = max(0, lo - (hi - limit)), limit
        return lo, hi

    x0, x1 = span(box.x, box.x1, width)
    y0, y1 = span(box.y, box.y1, height)
    return Box(x0, y0, x1 - x0, y1 - y0)


def plan_segments(
    frame_boxes: list[list[Box]], width: int, height: int, cfg: PlanConfig | None = None
) -> list[Segment]:
    """Plan the segments of a video from the boxes of the marks found in each frame."""
    cfg = cfg or PlanConfig()
    total = len(frame_boxes)
    keys = bridge_gaps(frame_keys(frame_boxes), cfg.bridge_frames, cfg.move_tolerance)
    runs = split_runs(find_runs(keys, cfg.move_tolerance), cfg.min_segments, cfg.min_chunk_frames, cfg.max_chunk_frames)
    segments: list[Segment] = []
    fade_in = 0
    for index, run in enumerate(runs):
        end, fade_out = run.end, 0
        if run.join_next and index + 1 < len(runs):
            nxt = runs[index + 1]
            fade_out = min(cfg.overlap_frames, nxt.length - 1)
            end = run.end + fade_out
        segments.append(
            Segment(
                index=index,
                start_frame=run.start,
                end_frame=end,
                crop=crop_for(run.box, width, height, cfg.crop_padding, cfg.min_crop, cfg.align),
                context_start=max(0, run.start - cfg.context_frames),
                context_end=min(total - 1, end + cfg.context_frames),
                fade_in=fade_in,
                fade_out=fade_out,
            )
        )
        fade_in = fade_out
    return segments


def _same(a: Box, b: Box, tolerance: float) -> bool:
    return a.iou(b) >= tolerance
