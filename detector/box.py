"""User-given boxes, optionally per frame range: detection skipped."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from detector.base import FrameMarks
from waterz.core.errors import InvalidBox
from waterz.core.geometry import Box, Mark

_BOX_RE = re.compile(r"^\s*(\d+),(\d+),(\d+),(\d+)\s*(?:@\s*(\d*)\s*-\s*(\d*))?\s*$")


@dataclass(frozen=True)
class BoxSpec:
    """A box shown on frames `start_frame` to `end_frame` inclusive (None: to the start / end)."""

    box: Box
    start_frame: int | None = None
    end_frame: int | None = None

    @classmethod
    def parse(cls, text: str) -> BoxSpec:
        """Parse `x,y,w,h` or `x,y,w,h@start-end` (either end may be left empty)."""
        m = _BOX_RE.match(text)
        if not m:
            raise InvalidBox(f"Box '{text}' is not of the form x,y,w,h or x,y,w,h@start-end.")
        x, y, w, h = (int(v) for v in m.groups()[:4])
        start = int(m.group(5)) if m.group(5) else None
        end = int(m.group(6)) if m.group(6) else None
        return cls(Box(x, y, w, h), start, end)

    @classmethod
    def from_dict(cls, data: dict) -> BoxSpec:
        try:
            box = Box(int(data["x"]), int(data["y"]), int(data["w"]), int(data["h"]))
            start, end = data.get("start_frame"), data.get("end_frame")
            return cls(box, None if start is None else int(start), None if end is None else int(end))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidBox(f"Box {data!r} needs integer x, y, w, h (and optional start_frame, end_frame).") from exc


class BoxDetector:
    """Returns the user's boxes (as rectangular marks) on the frames they cover."""

    needs_frames = False

    def __init__(self, boxes: Iterable[BoxSpec | str | dict] = ()) -> None:
        self.specs = [_as_spec(b) for b in boxes]
        if not self.specs:
            raise InvalidBox("The 'box' detector needs at least one box (x,y,w,h).")

    def detect(self, frames: Iterable[np.ndarray] | None, total: int, size: tuple[int, int]) -> FrameMarks:
        width, height = size
        out: FrameMarks = [[] for _ in range(total)]
        for spec in self.specs:
            box = spec.box
            if box.w <= 0 or box.h <= 0 or box.x < 0 or box.y < 0 or box.x1 > width or box.y1 > height:
                raise InvalidBox(f"Box {box.as_list()} does not lie inside the {width}x{height} frame.")
            start = 0 if spec.start_frame is None else spec.start_frame
            end = total - 1 if spec.end_frame is None else min(spec.end_frame, total - 1)
            if start > end or start >= total:
                raise InvalidBox(f"Box frame range {start}-{end} is outside the video's {total} frames.")
            mark = Mark.rectangle(box)
            for i in range(start, end + 1):
                out[i].append(mark)
        return out


def _as_spec(value: BoxSpec | str | dict) -> BoxSpec:
    if isinstance(value, BoxSpec):
        return value
    if isinstance(value, str):
        return BoxSpec.parse(value)
    return BoxSpec.from_dict(value)
