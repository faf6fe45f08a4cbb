"""Tests a component of edge pixels must pass to be a mark, shared by the stages: its size and
place, its edges' directions, the ring of picture around it."""

from __future__ import annotations

import cv2
import numpy as np

from waterz.core.geometry import Box
from waterz.core.masks import fill_holes

MIN_PART = 12  # pixels (at analysis scale) of the smallest part of a mark whose sign is told apart


def ring(part: np.ndarray) -> np.ndarray:
    """`(h, w) bool`: the pixels just outside the filled shape of `part` (1 to 5 px away)."""
    closed = cv2.morphologyEx(part.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    shape = fill_holes(closed).astype(np.uint8)
    return (cv2.dilate(shape, np.ones((11, 11), np.uint8)) & ~cv2.dilate(shape, np.ones((3, 3), np.uint8)) & 1) > 0


def grouping_kernel(h: int, w: int) -> np.ndarray:
    """The dilation that groups the edge pixels of one mark into one component."""
    k = max(3, int(round(min(h, w) / 40)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def implausible(x: int, y: int, bw: int, bh: int, h: int, w: int, max_area_fraction: float) -> bool:
    """A component too small or too big for a mark, or touching the frame's edge (marks sit inside
    the frame; what touches its edge is border artefact or letterbox)."""
    too_small_or_big = bw < 4 or bh < 3 or bw * bh > max_area_fraction * h * w
    return too_small_or_big or x == 0 or y == 0 or x + bw >= w or y + bh >= h


def similar_size(a: Box, b: Box, low: float, high: float) -> bool:
    """Whether `b`'s width and height are each between `low` and `high` times `a`'s."""
    return low <= b.w / a.w <= high and low <= b.h / a.h <= high


def one_direction(gx: np.ndarray, gy: np.ndarray, min_ratio: float) -> bool:
    """True when the gradients all point one way (the structure tensor's smaller eigenvalue is under
    `min_ratio` of the larger): a straight picture edge sliding along itself looks fixed, but it has
    no corners, while lettering and logos have edges in many directions."""
    a, b, c = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    half = 0.5 * (a + b)
    disc = np.sqrt(max(half * half - (a * b - c * c), 0.0))
    return (half - disc) < min_ratio * (half + disc)


def overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box: 1 when one box lies inside the other."""
    inter = a.intersection(b)
    return 0.0 if inter is None else inter.area / float(min(a.area, b.area))


def parts(pixels: np.ndarray, min_part: int = MIN_PART) -> np.ndarray:
    """`(h, w) int`: the parts of a mark's pixels (its letters, its logo): groups of at least
    `min_part` pixels near one another (grown by a pixel, a letter's broken outline is one
    group), labelled from 1; 0 elsewhere and for smaller groups."""
    joined = cv2.dilate(pixels.astype(np.uint8), np.ones((3, 3), np.uint8))
    count, labels = cv2.connectedComponents(joined, connectivity=8)
    labels = np.where(pixels, labels, 0)
    sizes = np.bincount(labels.ravel(), minlength=count)
    sizes[0] = 0
    return np.where(sizes[labels] >= min_part, labels, 0).astype(np.int32)
