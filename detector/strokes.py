"""The insides of a mark's thick strokes, which have no edge of their own, told from the picture
by the direction of the mark's edges around them.

A mark's edges all point the same way across its outline (a bright mark: from the picture into
the mark). So a pixel inside a stroke sees, in almost every direction, an outline whose gradient
points back at it, and a pixel of the picture (around the mark, between its letters or in a
letter's counter) sees outlines whose gradient points away. The picture around each part of the
mark says which of the two that part is (a mid-grey mark is lighter than a dark picture and
darker than a bright one, letter by letter). Votes are taken along rays, so an outline with gaps
(where the picture under the mark was as bright as the mark, or a still picture's own edges broke
it) still encloses the stroke in most directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class StrokeConfig:
    """How a stroke's inside is told from the picture."""

    min_agreement: float = 0.3
    """Least normalised dot product of the edges' direction with "into this pixel" (or region),
    relative to the picture around the mark: below it the edges around are not the mark's."""
    directions: int = 16
    """Rays cast from each pixel: an angular step of 22.5 degrees."""
    min_enclosed: float = 0.75
    """Share of the rays that must meet an outline: a gap may open up to a quarter of the view."""
    crossing: int = 4
    """Pixels of outline summed along a ray where it first meets one: the outline mask is the
    edge grown by a few pixels, and its gradient is strongest in its middle."""


def fill_stroke_insides(shape: np.ndarray, tx: np.ndarray, ty: np.ndarray,
                        cfg: StrokeConfig = StrokeConfig()) -> np.ndarray:  # fmt: skip
    """`shape` (`(h, w) bool`, the mark's outline and solid parts) with its strokes' insides
    filled: whole enclosed regions whose edges point into them, and single pixels whose rays
    (see the module docstring) say so. `tx`, `ty`: the mark's mean gradient over `shape`'s area."""
    ys, xs = np.nonzero(~shape)
    enclosed, vote = _ray_votes(shape, tx, ty, ys, xs, cfg)
    # The picture around the mark: pixels that see an outline but mostly open ground. Their view
    # of the outline says which way the mark's edges point (a gap in the outline lets the inside
    # of a stroke join the picture's region, but its pixels stay enclosed).
    around = (enclosed > 0) & (enclosed < 0.5)
    side = _sides(shape, around, ys, xs, vote)
    out = shape.copy()
    count, labels = cv2.connectedComponents((~shape).astype(np.uint8), connectivity=4)
    for k in range(1, count):
        region = labels == k
        if region[0, 0]:
            continue
        region_side = float(side[region].mean())
        if abs(region_side) < cfg.min_agreement:
            continue  # the edges around this part of the mark do not agree on a direction
        if -_into(region, shape, tx, ty) * np.sign(region_side) >= cfg.min_agreement:
            out |= region
    local = side[ys, xs]
    inside = (enclosed >= cfg.min_enclosed) & (np.abs(local) >= cfg.min_agreement)
    inside &= -vote * np.sign(local) >= cfg.min_agreement
    out[ys[inside], xs[inside]] = True
    return out


def _sides(shape: np.ndarray, around: np.ndarray, ys: np.ndarray, xs: np.ndarray, vote: np.ndarray) -> np.ndarray:
    """`(h, w)`, from the votes of the pixels `(ys, xs)` and which of them are `around`: for
    each pixel, which way the edges of the part of the mark nearest to it point (the mean vote of
    the picture around that part; where none is around it, around the whole mark). Told part by
    part: a mark neither near-white nor near-black is lighter than the picture under some of its
    letters and darker under others."""
    if not shape.any() or not around.any():
        return np.zeros(shape.shape, np.float32)
    _, nearest = cv2.distanceTransformWithLabels((~shape).astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_CCOMP)  # fmt: skip
    labels = nearest[ys[around], xs[around]]
    sums = np.bincount(labels, vote[around], minlength=nearest.max() + 1)
    counts = np.bincount(labels, minlength=nearest.max() + 1)
    whole = sums.sum() / counts.sum()
    return np.where(counts > 0, sums / np.maximum(counts, 1), whole)[nearest].astype(np.float32)


def _into(region: np.ndarray, shape: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> float:
    """How much the edges next to `region` point into it (-1 to 1)."""
    soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 1.5)
    nx, ny = cv2.Sobel(soft, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(soft, cv2.CV_32F, 0, 1, ksize=3)
    rim = shape & (np.hypot(nx, ny) > 1e-3)
    dot = (tx * nx + ty * ny)[rim].sum()
    norm = (np.hypot(tx, ty) * np.hypot(nx, ny))[rim].sum()
    return float(dot / norm) if norm > 0 else 0.0


def _ray_votes(shape: np.ndarray, tx: np.ndarray, ty: np.ndarray, ys: np.ndarray, xs: np.ndarray,
               cfg: StrokeConfig) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """For each pixel `(ys, xs)`: the share of its rays that meet an outline within the array, and
    the mean over those rays of how much the outline's gradient points back at the pixel (-1 to 1,
    each ray's crossing normalised by its gradient's strength)."""
    h, w = shape.shape
    met = np.zeros(len(ys), np.float32)
    vote = np.zeros(len(ys), np.float32)
    for angle in np.arange(cfg.directions) * 2 * np.pi / cfg.directions:
        dx, dy = np.cos(angle), np.sin(angle)
        dot = np.zeros(len(ys), np.float32)
        norm = np.zeros(len(ys), np.float32)
        depth = np.zeros(len(ys), np.int32)
        live = np.arange(len(ys))  # rays still marching: not yet out of the array or past a crossing
        for k in range(1, max(h, w)):
            px = np.rint(xs[live] + k * dx).astype(np.int32)
            py = np.rint(ys[live] + k * dy).astype(np.int32)
            within = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            live, px, py = live[within], px[within], py[within]
            on = shape[py, px]
            # A ray that has met the outline and leaves it, or has summed `crossing` pixels, is done.
            done = (depth[live] > 0) & (~on | (depth[live] >= cfg.crossing))
            keep = ~done & on
            idx, gx, gy = live[keep], tx[py[keep], px[keep]], ty[py[keep], px[keep]]
            dot[idx] -= gx * dx + gy * dy
            norm[idx] += np.hypot(gx, gy)
            depth[idx] += 1
            live = live[~done]
            if not len(live):
                break
        ray_met = depth > 0
        met += ray_met
        vote += np.where(ray_met, dot / np.maximum(norm, 1e-9), 0.0)
    return met / cfg.directions, vote / np.maximum(met, 1)
