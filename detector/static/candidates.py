"""Stage 3a: mark candidates in one window. The temporal median of the image gradient cancels the
moving picture and keeps what is fixed on screen. A pixel is a candidate when that median is strong
and coherent (the gradient points the same way in most frames); candidates grouped into components
count when they match best without a shift in most frames, have edges in more than one direction,
and either the picture around them changes while they stay or they pop up or vanish while their
surroundings stay (`Candidate.picture_changes`: a locked-off shot's scenery stays put too, but
neither happens to it). Under a camera that translates, texture that slides along itself (grass
under a tilt, a long edge under a pan) also looks fixed; where much of the window does, frames are
shifted back by the camera's move, and what persists that way as well moves with the picture."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from detector.static.config import StaticConfig
from detector.static.features import Features
from detector.static.parts import grouping_kernel, implausible, one_direction, ring
from waterz.core.geometry import Box
from waterz.core.median import median_of_planes


@dataclass
class Candidate:
    """One component of a window: its box, its edge pixels in the box (`support`) and over the
    whole frame (`pixels`), and the window's gradient stacks it was found in."""

    box: Box
    support: np.ndarray
    label: int
    labels: np.ndarray  # the window's components, by label
    candidates: np.ndarray  # the window's candidate pixels
    med_x: np.ndarray
    med_y: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    gray: np.ndarray
    shots: list[slice]
    moved: bool
    cfg: StaticConfig

    @property
    def pixels(self) -> np.ndarray:
        """`(h, w) bool`: its candidate pixels over the whole frame (made only for those kept)."""
        return self.candidates & (self.labels == self.label)

    def picture_changes(self) -> bool:
        """True when the picture around the component changes while the component stays visible.
        `shots`: the window's frames split at hard cuts; `moved`: the camera travelled (then the
        picture moved under the component, whose pixels do not follow the camera, even where the
        picture around it is too flat to show it)."""
        box, support, cfg, gray = self.box, self.support, self.cfg, self.gray
        sl = (slice(box.y, box.y1), slice(box.x, box.x1))
        tx, ty = self.med_x[sl][support], self.med_y[sl][support]
        norm = float((tx * tx + ty * ty).sum()) + 1e-6
        coeff = (self.gx[:, sl[0], sl[1]][:, support] * tx + self.gy[:, sl[0], sl[1]][:, support] * ty).sum(axis=1)
        coeff = coeff / norm
        # A fixed mark contributes the same gradient to every frame: the share of its template that
        # each frame holds stays near 1. Coincidentally persistent picture content swings widely.
        # Under a moving camera, a mark that jumps away (or in) within the window is judged on the
        # frames it is there (over a still one, scenery an object uncovers would pass as well).
        present = coeff > cfg.presence
        one_run = len(np.flatnonzero(np.diff(present.astype(np.int8)))) <= 1
        on = present if self.moved and one_run and present.sum() >= len(coeff) / 2 else np.ones(len(coeff), bool)
        if (np.abs(coeff[on] - 1.0) < cfg.max_swing).mean() < cfg.min_steady:
            return False
        # Within a shot. Across a cut the mark's share changes with the picture under it (white
        # lettering shows twice as strongly over a dark scene as over a bright one).
        spreads = [np.median(np.abs(c - np.median(c))) for c in (coeff[s][on[s]] for s in self.shots) if len(c) >= 3]
        if max(spreads, default=np.inf) > cfg.max_spread:
            return False
        if self.moved:
            return True
        # The ring just outside the component's filled shape, in a slightly larger region.
        pad = 8
        H, W = gray.shape[1:]
        outer = Box(max(0, box.x - pad), max(0, box.y - pad), 0, 0)
        outer = Box(outer.x, outer.y, min(W, box.x1 + pad) - outer.x, min(H, box.y1 + pad) - outer.y)
        part = np.zeros((outer.h, outer.w), bool)
        part[box.y - outer.y : box.y1 - outer.y, box.x - outer.x : box.x1 - outer.x] = support
        around = ring(part)
        if around.sum() < 10:
            return False
        local = gray[:, outer.y : outer.y1, outer.x : outer.x1][:, around]
        # Median absolute deviation over time: an object passing by for a few frames does not count.
        moving = local[present]
        change = np.median(np.abs(moving - np.median(moving, axis=0)), axis=0)
        if float(np.median(change)) > cfg.min_change:
            return True
        return _pops_up(coeff, local, cfg.min_change)


def candidates(feats: list[Features], cfg: StaticConfig) -> Iterator[Candidate]:
    """The components of one window (consecutive frames, or a slow window's) that stay put."""
    gx = np.stack([f.gx for f in feats])
    gy = np.stack([f.gy for f in feats])
    med_x, med_y = median_of_planes(gx), median_of_planes(gy)
    strength = np.hypot(med_x, med_y)
    coherent = strength > cfg.min_coherence * (np.hypot(gx, gy).mean(axis=0) + 1e-3)
    # Share of frames whose gradient keeps at least half of the median along its direction.
    unit_x, unit_y = med_x / (strength + 1e-6), med_y / (strength + 1e-6)
    steady = ((gx * unit_x + gy * unit_y) > 0.5 * strength).mean(axis=0) >= cfg.min_steady
    cand = (strength > cfg.min_strength) & coherent
    strict = cand & steady & (strength > cfg.strict_coherence * (np.hypot(gx, gy).mean(axis=0) + 1e-3))
    gray = np.stack([f.gray for f in feats])
    # Only where much of the picture looks fixed (texture sliding along itself).
    follows, moved = _follows_the_camera(gray, gx, gy, strength) if strict.mean() > 0.03 else (None, False)
    if follows is not None:
        strict &= ~follows
    if not strict.any():
        return
    h, w = cand.shape
    grouped = cv2.dilate(strict.astype(np.uint8), grouping_kernel(h, w))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    shots = _shots(gray)
    for label in range(1, count):
        x, y, bw, bh, _ = stats[label]
        if implausible(x, y, bw, bh, h, w, cfg.max_area_fraction):
            continue
        box = Box(int(x), int(y), int(bw), int(bh))
        support = cand[y : y + bh, x : x + bw] & (labels[y : y + bh, x : x + bw] == label)
        if support.sum() < 12:
            continue
        if one_direction(med_x[y : y + bh, x : x + bw][support], med_y[y : y + bh, x : x + bw][support],
                         cfg.min_spread_of_directions):  # fmt: skip
            continue
        if not _stays_put(box, support, med_x, med_y, gx, gy, cfg.min_still):
            continue
        yield Candidate(box, support, label, labels, cand, med_x, med_y, gx, gy, gray, shots, moved, cfg)


def _follows_the_camera(gray: np.ndarray, gx: np.ndarray, gy: np.ndarray, strength: np.ndarray,
                        min_travel: float = 4.0, share: float = 0.5) -> tuple[np.ndarray, bool]:  # fmt: skip
    """`(h, w) bool` pixels whose gradient persists at least as well (`share` of `strength`, the
    persistence in place) when each frame is shifted back by the camera's own translation, where
    most frames lie at least `min_travel / 2` pixels from the window's middle one (shifted less than
    a stroke's width, a mark would persist as well): picture texture that slides
    along itself (grass blades, a long edge) under a tilt or pan looks fixed in place, but it moves
    with the picture; a mark does not. Over a still camera nothing is excluded. Also returns
    whether the camera travelled that far, as a translation."""
    mid = len(gray) // 2
    window = cv2.createHanningWindow(gray.shape[1:][::-1], cv2.CV_32F)
    shifts = [cv2.phaseCorrelate(gray[mid], g, window)[0] for g in gray]
    none = np.zeros(strength.shape, bool), False
    if np.median([np.hypot(dx, dy) for dx, dy in shifts]) < min_travel / 2:
        return none
    h, w = strength.shape
    back = [np.float32([[1, 0, -dx], [0, 1, -dy]]) for dx, dy in shifts]

    def median_shifted_back(fields: np.ndarray) -> np.ndarray:
        return median_of_planes([cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                                 for f, m in zip(fields, back)])  # fmt: skip

    follows = np.hypot(median_shifted_back(gx), median_shifted_back(gy)) > share * strength
    # The camera's move was a translation (not a zoom, for which the shifts found mean nothing)
    # when most of what persists in place persists as well shifted back.
    fixed = strength > 10.0
    if not fixed.any() or follows[fixed].mean() < 0.5:
        return none
    return follows, True


def _shots(gray: np.ndarray, min_jump: float = 20.0, min_len: int = 3) -> list[slice]:
    """The window's frames `(T, h, w)` split at hard cuts: a frame-to-frame change of at least
    `min_jump` grey levels and four times the window's usual change. Parts shorter than `min_len`
    frames stay with their neighbour."""
    step = np.abs(np.diff(gray, axis=0)).mean(axis=(1, 2))
    if len(step) == 0:
        return [slice(0, len(gray))]
    usual = float(np.median(step))
    cuts = [t + 1 for t, d in enumerate(step) if d >= max(min_jump, 4 * usual)]
    edges = [0]
    for c in cuts:
        if c - edges[-1] >= min_len and len(gray) - c >= min_len:
            edges.append(c)
    edges.append(len(gray))
    return [slice(a, b) for a, b in zip(edges, edges[1:])]


def _pops_up(coeff: np.ndarray, ring: np.ndarray, max_ring_change: float, run: int = 2) -> bool:
    """True when the component appears or vanishes between two frames while its surroundings stay
    the same: an overlay jumping, not scenery (an object covering scenery changes the surroundings too).

    `coeff`: (T,) share of the template in each frame; `ring`: (T, P) grey levels around it.
    """
    on = coeff > 0.7
    off = np.abs(coeff) < 0.3
    for t in range(run, len(coeff) - run + 1):
        before, after = slice(t - run, t), slice(t, t + run)
        if (off[before].all() and on[after].all()) or (on[before].all() and off[after].all()):
            step = float(np.median(np.abs(ring[t] - ring[t - 1])))
            return step < max_ring_change
    return False


def _stays_put(box: Box, support, med_x, med_y, gx, gy, min_still: float, reach: int = 3) -> bool:
    """True when, in most frames, the component's template matches best without any shift.

    A slowly moving picture can look persistent over a short window, but its best match drifts
    from frame to frame; a watermark's does not move at all.
    """
    H, W = med_x.shape
    if box.x < reach or box.y < reach or box.x1 + reach > W or box.y1 + reach > H:
        return False  # too close to the frame's edge to measure
    sl = (slice(box.y, box.y1), slice(box.x, box.x1))
    templ = np.dstack([med_x[sl] * support, med_y[sl] * support]).astype(np.float32)
    big = (slice(box.y - reach, box.y1 + reach), slice(box.x - reach, box.x1 + reach))
    still = 0
    for fx, fy in zip(gx, gy):
        image = np.dstack([fx[big], fy[big]]).astype(np.float32)
        score = cv2.matchTemplate(image, templ, cv2.TM_CCORR_NORMED)
        still += int(np.argmax(score) == score.size // 2)
    return still >= min_still * len(gx)
