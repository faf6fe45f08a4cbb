"""Boxes and the marks placed in them. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned pixel box: left `x`, top `y`, width `w`, height `h`."""

    x: int
    y: int
    w: int
    h: int

    @property
    def x1(self) -> int:
        return self.x + self.w

    @property
    def y1(self) -> int:
        return self.y + self.h

    @property
    def area(self) -> int:
        return max(0, self.w) * max(0, self.h)

    def union(self, other: Box) -> Box:
        x, y = min(self.x, other.x), min(self.y, other.y)
        return Box(x, y, max(self.x1, other.x1) - x, max(self.y1, other.y1) - y)

    def intersection(self, other: Box) -> Box | None:
        x, y = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.x1, other.x1), min(self.y1, other.y1)
        return Box(x, y, x1 - x, y1 - y) if x1 > x and y1 > y else None

    def iou(self, other: Box) -> float:
        inter = self.intersection(other)
        if inter is None:
            return 0.0
        return inter.area / float(self.area + other.area - inter.area)

    def contains(self, other: Box) -> bool:
        """Whether `other` lies wholly inside this box."""
        return self.x <= other.x and self.y <= other.y and other.x1 <= self.x1 and other.y1 <= self.y1

    def center_distance(self, other: Box) -> float:
        return float(np.hypot(self.x + self.w / 2 - other.x - other.w / 2, self.y + self.h / 2 - other.y - other.h / 2))

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True, eq=False)
class Mark:
    """One watermark in one frame: its `box` and `mask` `(box.h, box.w) bool`, the mark's shape
    (already dilated) inside the box. Frames where a mark stays put share one `Mark` object."""

    box: Box
    mask: np.ndarray

    @classmethod
    def rectangle(cls, box: Box) -> Mark:
        return cls(box, np.ones((box.h, box.w), bool))


FrameMarks = list[list[Mark]]
"""Per frame `i`, the marks found in it (an empty list where none)."""


def union_box(boxes: list[Box]) -> Box | None:
    """The smallest box holding every box in `boxes`, or None for an empty list."""
    if not boxes:
        return None
    out = boxes[0]
    for b in boxes[1:]:
        out = out.union(b)
    return out


def paint_marks(marks: list[Mark], region: Box) -> np.ndarray:
    """The union of the marks' masks inside `region`, as `(region.h, region.w) bool`."""
    out = np.zeros((region.h, region.w), bool)
    for mark in marks:
        inter = mark.box.intersection(region)
        if inter is None:
            continue
        src = mark.mask[inter.y - mark.box.y : inter.y1 - mark.box.y, inter.x - mark.box.x : inter.x1 - mark.box.x]
        out[inter.y - region.y : inter.y1 - region.y, inter.x - region.x : inter.x1 - region.x] |= src
    return out
