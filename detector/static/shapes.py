"""Stage 5: each track's mask at full resolution, on the frames it is present on. The mask follows
the mark's edges plus its solid parts (pixels near the edges whose picture changes much less than
around the mark) and the insides of its thick strokes (`detector.strokes`); a jumping mark's
positions lend each other the parts their backgrounds hid (`complete_shapes`)."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from detector.base import FrameMarks
from detector.static.config import StaticConfig
from detector.static.parts import similar_size
from detector.static.tracks import Track
from detector.strokes import fill_stroke_insides
from waterz.core.geometry import Box, Mark

log = logging.getLogger(__name__)


def frame_marks(tracks: list[Track], cfg: StaticConfig, scale: float, total: int, width: int,
                height: int) -> FrameMarks:  # fmt: skip
    out: FrameMarks = [[] for _ in range(total)]
    found = []
    for track, present in zip(tracks, parts_together([t.box for t in tracks], [t.presence(total) for t in tracks])):
        if not present.any():
            continue
        mark = full_res_mark(track, cfg, scale, width, height)
        if mark is not None:
            found.append((mark, present))
    for mark, present in zip(complete_shapes([m for m, _ in found], width, height), (p for _, p in found)):
        for i in np.flatnonzero(present):
            out[i].append(mark)
    log.info("static detector: %d mark position(s), marks on %d of %d frames",
             len(tracks), sum(1 for m in out if m), total)  # fmt: skip
    return out


def full_res_mark(track: Track, cfg: StaticConfig, scale: float, width: int, height: int) -> Mark | None:
    support = track.shape_support(cfg.mask_share)
    b = track.box
    sl = (slice(b.y, b.y1), slice(b.x, b.x1))
    # Inside solid parts of a mark there is no edge, but the picture there changes much less
    # than around it (an opaque mark not at all, a 50 % one half as much).
    seen = track.still_n[sl] > 0
    still = seen & (track.still_sum[sl] < cfg.max_stillness * np.maximum(track.still_n[sl], 1))
    still = cv2.morphologyEx(still.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)).astype(bool)
    pad = 2
    shape = np.zeros((b.h + 2 * pad, b.w + 2 * pad), np.uint8)
    shape[pad:-pad, pad:-pad] = support | (still & _near(support, 6))
    shape = cv2.morphologyEx(shape, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    tx, ty, _ = track.template()
    shape = fill_stroke_insides(shape.astype(bool), np.pad(tx, pad), np.pad(ty, pad)).astype(np.uint8)
    s = scale
    grow = cfg.mask_dilation + int(np.ceil(0.5 / s))
    x0, y0 = (b.x - pad) / s, (b.y - pad) / s
    fw, fh = int(round(shape.shape[1] / s)), int(round(shape.shape[0] / s))
    full = cv2.resize(shape * 255, (fw, fh), interpolation=cv2.INTER_LINEAR) > 64
    full = np.pad(full, grow)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    full = cv2.dilate(full.astype(np.uint8), kernel).astype(bool)
    ox, oy = int(round(x0)) - grow, int(round(y0)) - grow
    # Clip to the frame, then shrink the box to the mask's own extent.
    cx0, cy0 = max(0, ox), max(0, oy)
    cx1, cy1 = min(width, ox + full.shape[1]), min(height, oy + full.shape[0])
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    full = full[cy0 - oy : cy1 - oy, cx0 - ox : cx1 - ox]
    ys, xs = np.nonzero(full)
    if len(xs) == 0:
        return None
    box = Box(cx0 + int(xs.min()), cy0 + int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    mask = full[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return Mark(box, np.ascontiguousarray(mask))


def parts_together(boxes: list[Box], presences: list[np.ndarray], min_common: float = 0.5) -> list[np.ndarray]:
    """Each track's presence, joined with those of the tracks that are other parts of its mark:
    side by side (apart by at most half the lower one's height) and on the same frames (on at
    least `min_common` of the frames of the one present less). A mark's parts come and go
    together, but each is scored on its own share of its own template: where the picture under
    one part looks like the mark (a white logo over a white rim), that part's score falls while
    the rest of the mark still holds, and the part would be left on those frames."""
    group = list(range(len(boxes)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i, (a, pa) in enumerate(zip(boxes, presences)):
        for j in range(i + 1, len(boxes)):
            b, pb = boxes[j], presences[j]
            gap = max(a.x - b.x1, b.x - a.x1, a.y - b.y1, b.y - a.y1)
            fewer = min(int(pa.sum()), int(pb.sum()))
            if fewer and gap <= min(a.h, b.h) / 2 and (pa & pb).sum() >= min_common * fewer:
                group[root(j)] = root(i)
    joined = {}
    for i, present in enumerate(presences):
        joined[root(i)] = joined.get(root(i), np.zeros_like(present)) | present
    return [joined[root(i)] for i in range(len(boxes))]


def complete_shapes(marks: list[Mark], width: int, height: int, min_match: float = 0.75) -> list[Mark]:
    """A jumping mark has the same shape at every position, but each position shows only the parts
    its background let through (white lettering over a white sky is lost). Each mark gains the
    parts it lacks from the marks that match its shape (correlation of the masks at their best
    offset at least `min_match`, sizes within 30 %): whole pieces, not the slivers a one-pixel
    misalignment leaves, so that a mask found complete does not grow."""
    out = []
    for i, a in enumerate(marks):
        extra = []
        for j, b in enumerate(marks):
            if i == j or not similar_size(a.box, b.box, 0.7, 1.4):
                continue
            pad_y, pad_x = b.box.h, b.box.w
            canvas = np.pad(a.mask.astype(np.float32), ((pad_y, pad_y), (pad_x, pad_x)))
            score = cv2.matchTemplate(canvas, b.mask.astype(np.float32), cv2.TM_CCORR_NORMED)
            _, best, _, (dx, dy) = cv2.minMaxLoc(score)
            if best < min_match:
                continue
            own = np.zeros_like(canvas, dtype=bool)
            own[pad_y:-pad_y, pad_x:-pad_x] = cv2.dilate(a.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            missing = ~own[dy : dy + b.box.h, dx : dx + b.box.w] & b.mask
            missing = cv2.morphologyEx(missing.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            count, labels, stats, _ = cv2.connectedComponentsWithStats(missing, connectivity=8)
            pieces = np.isin(labels, [k for k in range(1, count) if stats[k, 4] >= max(20, 0.02 * b.mask.sum())])
            # Grown back within the other mark's shape: the opening and the seam took a pixel or two.
            pieces = cv2.dilate(pieces.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool) & b.mask
            if pieces.any():
                extra.append((a.box.x + dx - pad_x, a.box.y + dy - pad_y, pieces))
        if not extra:
            out.append(a)
            continue
        x0 = max(0, min([a.box.x] + [x for x, _, _ in extra]))
        y0 = max(0, min([a.box.y] + [y for _, y, _ in extra]))
        x1 = min(width, max([a.box.x1] + [x + m.shape[1] for x, _, m in extra]))
        y1 = min(height, max([a.box.y1] + [y + m.shape[0] for _, y, m in extra]))
        shape = np.zeros((y1 - y0, x1 - x0), bool)
        for x, y, m in [(a.box.x, a.box.y, a.mask), *extra]:
            _paint(shape, m, x - x0, y - y0)
        ys, xs = np.nonzero(shape)
        box = Box(x0 + int(xs.min()), y0 + int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
        out.append(Mark(box, shape[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]))
    return out


def _paint(canvas: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """OR `mask` into `canvas` with its top-left corner at (x, y), clipped to the canvas."""
    h, w = canvas.shape
    cx0, cy0, cx1, cy1 = max(0, x), max(0, y), min(w, x + mask.shape[1]), min(h, y + mask.shape[0])
    if cx0 < cx1 and cy0 < cy1:
        canvas[cy0:cy1, cx0:cx1] |= mask[cy0 - y : cy1 - y, cx0 - x : cx1 - x]


def _near(support: np.ndarray, reach: int) -> np.ndarray:
    """Pixels within `reach` of the support: stillness far from any mark edge is picture, not mark."""
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    return cv2.dilate(support.astype(np.uint8), kernel).astype(bool)
