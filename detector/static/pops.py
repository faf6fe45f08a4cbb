"""Stage 3b: marks that jump over a locked-off shot, where the scenery stays put as much as a mark
does and the windows cannot tell them apart. A mark that jumps pops up (or vanishes) between two
frames while its gradient and grey levels hold still for a few frames on either side and the
picture around it does not change, and something about as big and with the same edges vanishes
elsewhere in that frame (text that only comes up, a title, is not taken for a mark; in a busy
picture, only pops that pair up that way count). A pop's template is the change itself, and its
shape the pixels that changed near its edges, so the scenery under it enters neither."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from detector.static.config import StaticConfig
from detector.static.features import Features
from detector.static.parts import grouping_kernel, implausible, one_direction, ring, similar_size
from waterz.core.geometry import Box, union_box

RUN = 3
"""Frames the gradient must hold on either side of a pop."""


@dataclass
class Pop:
    """A mark appearing (or vanishing) between two frames: its box, its template (the change of
    the gradient), its shape and its edges, all over the analysis frame."""

    box: Box
    appears: bool
    tx: np.ndarray
    ty: np.ndarray
    shape: np.ndarray
    edges: np.ndarray


def pops(feats: list[Features], cfg: StaticConfig, run: int = RUN) -> Iterator[tuple[int, Pop]]:
    """The jumps in a window of consecutive frames: `(t, pop)`, the pop between frames t-1 and t
    of the window: the gradient steady for `run` frames before, steady for `run` frames after, and
    different between the two. Moving objects are not steady from frame to frame."""
    if len(feats) < 2 * run or any(f.step is None for f in feats[1:]):
        return
    h, w = feats[0].shape
    kernel = grouping_kernel(h, w)
    low = 0.5 * cfg.min_strength
    for t in range(run, len(feats) - run + 1):
        # A step between frames t-1 and t, with none just before or after ...
        jump = (feats[t].step > cfg.min_strength) & (feats[t - 1].step < low)
        if t + 1 < len(feats):
            jump &= feats[t + 1].step < low
        if jump.sum() < 30 or jump.mean() > cfg.max_area_fraction:
            continue  # nothing, or a cut (everything changes)
        # ... and such pixels close together (a mark's edges), not scattered over moving texture.
        dense = cv2.boxFilter(jump.astype(np.float32), -1, (9, 9)) >= 0.2
        if not dense.any():
            continue
        count, _, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(dense.astype(np.uint8), kernel))
        found: list[Pop] = []
        for x, y, bw, bh, _ in stats[1:]:
            pad = 16  # room for the ring around the mark and for the edges the gate missed
            region = (slice(max(0, y - pad), min(h, y + bh + pad)), slice(max(0, x - pad), min(w, x + bw + pad)))
            found += _pops_in(feats, t, run, region, kernel, cfg)
        for pop in _jumping(found):
            yield t, pop


def _pops_in(feats: list[Features], t: int, run: int, region, kernel, cfg: StaticConfig) -> list[Pop]:
    """The marks popping up or vanishing at frame t within `region` (slices of the analysis
    frame), see `pops`."""
    h, w = feats[0].shape
    ry, rx = region
    oy, ox = ry.start, rx.start

    def stack(name: str, frames: slice) -> np.ndarray:
        return np.stack([getattr(f.at(region), name) for f in feats[frames]])

    before, after = slice(t - run, t), slice(t, t + run)
    # Frames before the pop (x0s: their x gradients, ...) and after it, and their means.
    x0s, y0s, g0s = stack("gx", before), stack("gy", before), stack("gray", before)
    x1s, y1s, g1s = stack("gx", after), stack("gy", after), stack("gray", after)
    ax, ay, g0 = x0s.mean(axis=0), y0s.mean(axis=0), g0s.mean(axis=0)
    bx, by, g1 = x1s.mean(axis=0), y1s.mean(axis=0), g1s.mean(axis=0)
    change = np.hypot(bx - ax, by - ay)
    wobble = np.maximum(np.hypot(x0s - ax, y0s - ay).max(axis=0), np.hypot(x1s - bx, y1s - by).max(axis=0))
    # The picture itself holds too on both sides (the edge of an object moving slowly can
    # keep its gradient for a few frames, not its grey levels).
    still = np.maximum(np.abs(g0s - g0).max(axis=0), np.abs(g1s - g1).max(axis=0)) < 6.0
    pop = (change > cfg.min_strength) & (wobble < 0.35 * change) & still
    if pop.sum() < 30:
        return []
    out = []
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(pop.astype(np.uint8), kernel))
    sizes = np.bincount(labels[pop], minlength=count)
    for label in range(1, count):
        x, y, bw, bh, _ = stats[label]
        box = Box(int(x + ox), int(y + oy), int(bw), int(bh))
        if sizes[label] < 30 or implausible(box.x, box.y, bw, bh, h, w, cfg.max_area_fraction):
            continue
        part = pop & (labels == label)
        if not _surroundings_hold(g0, g1, part, cfg.min_change):
            continue
        if one_direction((bx - ax)[part], (by - ay)[part], cfg.min_spread_of_directions):
            continue
        appears = float(np.hypot(bx, by)[part].mean()) > float(np.hypot(ax, ay)[part].mean())
        sign = 1.0 if appears else -1.0
        # The whole mark, not only its edges: where the picture changed at the pop, near them.
        near = cv2.dilate(part.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        body = near & still & (np.abs(g1 - g0) > 8.0)
        full_part, shape = np.zeros((h, w), bool), np.zeros((h, w), bool)
        tx, ty = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
        full_part[region], shape[region] = part, part | body
        tx[region] = np.where(part, sign * (bx - ax), 0.0)
        ty[region] = np.where(part, sign * (by - ay), 0.0)
        out.append(Pop(box, appears, tx, ty, shape, full_part))
    return out


def _jumping(pops: list[Pop], ratio: float = 1.4, max_iou: float = 0.3, min_match: float = 0.5) -> list[Pop]:
    """The pops of one frame that are a mark jumping: it vanishes from one place in the frame it
    appears at another, about as big and with the same edges (gradient correlation at least
    `min_match`). Either everything that popped is one jump (each side may come in pieces), or the
    pops that pair up one to one, so that what else pops in a busy picture does not hide a jump.
    Text that only comes up (a title, a slide's next line) or is replaced in place (a subtitle) is
    not a jump, nor are two unrelated things that happen to change in the same frame."""
    gone = [p for p in pops if not p.appears]
    come = [p for p in pops if p.appears]

    def jump(a: list[Pop], b: list[Pop]) -> bool:
        box_a, box_b = union_box([p.box for p in a]), union_box([p.box for p in b])
        return (similar_size(box_a, box_b, 1 / ratio, ratio) and box_a.iou(box_b) < max_iou
                and _same_edges(a, b) >= min_match)  # fmt: skip

    if not gone or not come:
        return []
    if jump(gone, come):
        return pops
    paired: list[Pop] = []
    for g in gone:
        for c in come:
            if jump([g], [c]):
                paired += [p for p in (g, c) if all(p is not q for q in paired)]
    return paired


def _same_edges(a: list[Pop], b: list[Pop]) -> float:
    """How well two groups of pops' gradient templates match at the best offset (normalised
    correlation of the gradient vectors: about 0 for unrelated pictures, 1 for the same mark)."""

    def field(pops: list[Pop], pad: int) -> np.ndarray:
        box = union_box([p.box for p in pops])
        sl = (slice(box.y, box.y1), slice(box.x, box.x1))
        f = np.dstack([sum(p.tx[sl] for p in pops), sum(p.ty[sl] for p in pops)]).astype(np.float32)
        return np.pad(f, ((pad, pad), (pad, pad), (0, 0)))

    area = [union_box([p.box for p in group]).area for group in (a, b)]
    small, big = (a, b) if area[0] <= area[1] else (b, a)
    big_box = union_box([p.box for p in big])
    image, templ = field(big, max(big_box.w, big_box.h) // 4), field(small, 0)
    grow = (max(0, templ.shape[0] - image.shape[0]), max(0, templ.shape[1] - image.shape[1]))
    image = np.pad(image, ((0, grow[0]), (0, grow[1]), (0, 0)))
    return float(cv2.matchTemplate(image, templ, cv2.TM_CCORR_NORMED).max())


def _surroundings_hold(before: np.ndarray, after: np.ndarray, part: np.ndarray, max_change: float) -> bool:
    """True when the picture just around `part` (outside its filled shape) is the same before and
    after (mean grey levels `(h, w)` each): an overlay popping up, not an object moving in."""
    around = ring(part)
    if around.sum() < 10:
        return False
    step = np.abs(after[around] - before[around])
    return float(np.median(step)) < max_change
