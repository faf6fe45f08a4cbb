"""Stage 3c: marks that never moved (`detector.steady`), where no track has them yet: present on
every frame, their template the video's mean gradient, their solid parts the pixels whose grey
level varied much less than the picture around them."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from detector.static.config import StaticConfig
from detector.static.parts import grouping_kernel, implausible, one_direction, ring
from detector.static.tracks import Track, Tracks
from detector.steady import SteadyEdges, steady_components
from waterz.core.geometry import Box
from waterz.core.masks import fill_holes

log = logging.getLogger(__name__)


def add_fixed_marks(edges: SteadyEdges, tracks: Tracks, cfg: StaticConfig, total: int) -> None:
    """The marks that never moved, over the video's `total` frames (`edges`: sums over all of them,
    or over those the static detector looked at where a known mark answered for the others)."""
    steady = edges.steady(cfg.min_strength)
    if steady is None:
        return
    h, w = steady.shape
    mx, my = edges.mean_gradient()
    spread = edges.grey_spread()
    parts = steady_components(steady, grouping_kernel(h, w), cfg.steady.min_pixels)
    for x, y, bw, bh, support in parts:
        if implausible(x, y, bw, bh, h, w, cfg.max_area_fraction):
            continue
        if not holds_while_around_changes(support, spread, cfg.steady.max_spread_ratio):
            continue
        # A logo's parts (an icon, its words) lie side by side within about the icon's height:
        # steady parts wholly within that reach belong to it, whatever else they touch.
        reach = Box(x - bh, y - bh, bw + 2 * bh, 3 * bh)
        for px, py, pw, ph, other in parts:
            if reach.contains(Box(px, py, pw, ph)):
                support = support | other
        ys, xs = np.nonzero(support)
        x, y, bw, bh = int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1
        box = Box(x, y, bw, bh)
        part = support[y : y + bh, x : x + bw]
        if one_direction(mx[y : y + bh, x : x + bw][part], my[y : y + bh, x : x + bw][part],
                         cfg.min_spread_of_directions):  # fmt: skip
            continue
        if tracks.knows(box):
            continue
        zeros = np.zeros_like(mx)
        track = Track(box, mx.copy(), my.copy(), support.astype(np.float32), zeros.copy(), zeros.copy(),
                      windows=[(0, total)], present=set(range(total)))  # fmt: skip
        tracks.all.append(track)
        log.info("static detector: a mark that never moved at %s (analysis scale)", box)


def holds_while_around_changes(support: np.ndarray, spread: np.ndarray, max_ratio: float) -> bool:
    """Whether the pixels of a steady component (`support`, `(h, w) bool`, filled to its shape)
    vary over the video by less than `max_ratio` of the picture just around it (`spread`: each
    pixel's standard deviation of grey level): an opaque overlay keeps its colour while the light,
    the camera's noise and what moves around it change the picture's. Scenery that merely holds
    still varies as much as its surroundings."""
    shape = cv2.morphologyEx(support.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    shape = fill_holes(shape)
    around = ring(shape)
    if around.sum() < 10:
        return False
    return float(np.median(spread[shape])) < max_ratio * float(np.median(spread[around]))
