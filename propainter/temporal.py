"""Flow-guided temporal propagation: the CPU default.

Each masked pixel takes the true background from other frames of the segment where that spot was
visible. Motion between neighbouring crops is tracked outside the mark (where the static overlay
would drag it to zero) and extended inside it with a robust affine model: the flow inside the mask
is completed from its border. Models are composed to reach frames further away and refined there.
Each masked pixel then collects candidates from the nearest frames before and after where its spot
is visible and whose alignment around the mark is good; their median (robust to an object that
crossed the spot in one source) is the fill. What no frame ever saw is filled spatially. Only the
crop is processed.
"""

from __future__ import annotations

import cv2
import numpy as np

_IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float64)


class TemporalInpainter:
    """See the module docstring.

    `max_distance`: how many frames away a source may lie (beyond `near` frames, only for pixels
    that have no source yet); `candidates`: how many sources per direction feed the median;
    `max_align_error`: grey levels of median misalignment around the mark above which a source
    frame is not trusted; `max_pixel_error`: the same per pixel, carried into the mask from its
    border, so that an object which stood on the spot in one source (but not in the target) rules
    that source out there.
    """

    def __init__(self, max_distance: int = 30, near: int = 8, candidates: int = 3, max_align_error: float = 6.0,
                 max_pixel_error: float = 12.0, margin: int = 3, spatial_radius: int = 5) -> None:  # fmt: skip
        self.max_distance = max_distance
        self.near = near
        self.max_pixel_error = max_pixel_error
        self.candidates = candidates
        self.max_align_error = max_align_error
        self.margin = margin
        self.spatial_radius = spatial_radius

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int) -> np.ndarray:
        out = frames[first : last + 1].copy()
        if not masks[first : last + 1].any():
            return out
        motion = _Motion(frames, masks, self.margin)
        for k, t in enumerate(range(first, last + 1)):
            if masks[t].any():
                out[k] = self._fill(frames, masks, motion, t)
        return out

    def _fill(self, frames: np.ndarray, masks: np.ndarray, motion: _Motion, t: int) -> np.ndarray:
        mask = masks[t]
        ys, xs = np.nonzero(mask)
        n, k = len(frames), self.candidates
        samples = np.full((len(ys), 2 * k, 3), np.nan, np.float32)
        counts = np.zeros((2, len(ys)), np.int32)
        for side, step in enumerate((-1, 1)):
            for s in range(t + step, t + step * (self.max_distance + 1), step):
                if not 0 <= s < n or counts[side].min() >= k:
                    break
                if abs(s - t) > self.near and counts[side].min() >= 1:
                    break  # far sources only for what the near ones could not see
                a = motion.between(t, s)
                if a is None:
                    continue
                error, disagreement = motion.check(t, s, a)
                if error > self.max_align_error:
                    continue
                qx = a[0, 0] * xs + a[0, 1] * ys + a[0, 2]
                qy = a[1, 0] * xs + a[1, 1] * ys + a[1, 2]
                h, w = mask.shape
                inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
                qxi = np.clip(np.rint(qx), 0, w - 1).astype(np.int32)
                qyi = np.clip(np.rint(qy), 0, h - 1).astype(np.int32)
                cost = disagreement[ys, xs]
                take = inside & ~masks[s][qyi, qxi] & (counts[side] < k) & (cost < self.max_pixel_error)
                if take.any():
                    slot = side * k + counts[side][take]
                    samples[np.flatnonzero(take), slot] = _bilinear(frames[s], qx[take], qy[take])
                    counts[side][take] += 1
        frame = frames[t].copy()
        seen = counts.sum(axis=0) > 0
        if seen.any():
            fill = np.nanmedian(samples[seen], axis=1)
            frame[ys[seen], xs[seen]] = np.clip(fill + 0.5, 0, 255).astype(np.uint8)
        if not seen.all():
            unseen = np.zeros(mask.shape, np.uint8)
            unseen[ys[~seen], xs[~seen]] = 1
            frame = cv2.inpaint(frame, unseen, self.spatial_radius, cv2.INPAINT_TELEA)
        return np.where(mask[..., None], frame, frames[t])


class _Motion:
    """Affine motion of the picture between crops, measured outside the masks only."""

    def __init__(self, frames: np.ndarray, masks: np.ndarray, margin: int, refine_above: float = 3.0) -> None:
        self.refine_above = refine_above
        self.gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        self.keep = [cv2.dilate(m.astype(np.uint8), kernel) == 0 for m in masks]
        ring_kernel = np.ones((25, 25), np.uint8)
        self.ring = [
            cv2.dilate(m.astype(np.uint8), ring_kernel).astype(bool) & keep for m, keep in zip(masks, self.keep)
        ]
        self.to_first: list[np.ndarray | None] = [np.eye(3)]  # 3x3 maps from frame u to frame 0
        self.models: dict[tuple[int, int], np.ndarray | None] = {}
        self.checks: dict[tuple[int, int], tuple[float, np.ndarray]] = {}

    def between(self, t: int, s: int) -> np.ndarray | None:
        """`(2, 3)` affine taking a pixel of frame t to frame s, or None when it cannot be tracked."""
        key = (t, s)
        if key not in self.models:
            model = self._composed(t, s)
            # Composed steps drift over long spans: refine directly only when they misalign.
            if model is not None and abs(t - s) > 1 and self.check(t, s, model)[0] > self.refine_above:
                refined = self._track(t, s, model)
                if refined is not None:
                    self.checks.pop(key, None)
                model = refined
            self.models[key] = model
        return self.models[key]

    def _composed(self, t: int, s: int) -> np.ndarray | None:
        while len(self.to_first) <= max(t, s):
            u = len(self.to_first)
            prev = self.to_first[u - 1]
            step = None if prev is None else self._track(u, u - 1, _IDENTITY)
            self.to_first.append(None if step is None else prev @ np.vstack([step, [0, 0, 1]]))
        a, b = self.to_first[t], self.to_first[s]
        if a is None or b is None:
            return None
        return (np.linalg.inv(b) @ a)[:2]

    def _track(self, t: int, s: int, guess: np.ndarray) -> np.ndarray | None:
        keep = (self.keep[t] & _warp_mask(self.keep[s], guess)).astype(np.uint8) * 255
        pts = cv2.goodFeaturesToTrack(self.gray[t], 300, 0.005, 4, mask=keep, blockSize=5)
        if pts is None or len(pts) < 6:
            return guess if guess is not _IDENTITY else None
        init = cv2.transform(pts, guess).astype(np.float32)
        lk = {"winSize": (15, 15), "maxLevel": 2, "flags": cv2.OPTFLOW_USE_INITIAL_FLOW}
        fwd, ok1, _ = cv2.calcOpticalFlowPyrLK(self.gray[t], self.gray[s], pts, init.copy(), **lk)
        back, ok2, _ = cv2.calcOpticalFlowPyrLK(self.gray[s], self.gray[t], fwd, pts.copy(), **lk)
        good = (ok1[:, 0] == 1) & (ok2[:, 0] == 1) & (np.linalg.norm((back - pts)[:, 0], axis=1) < 0.7)
        if good.sum() < 6:
            return None
        model, _ = cv2.estimateAffine2D(pts[good, 0], fwd[good, 0], method=cv2.RANSAC, ransacReprojThreshold=1.0)
        return None if model is None else model

    def check(self, t: int, s: int, a: np.ndarray) -> tuple[float, np.ndarray]:
        """How far frame s, brought onto frame t by `a`, can be trusted as a source for t.

        Returns the median grey-level difference in the ring around the mark (misalignment), and
        an `(h, w)` map of the mean difference near each pixel, measured where both frames are
        visible and carried into the masks from their border: an object that stood next to the
        mark in one of the two frames makes that source suspect there.
        """
        key = (t, s)
        if key not in self.checks:
            h, w = self.gray[t].shape
            inverse = cv2.WARP_INVERSE_MAP
            warped = cv2.warpAffine(self.gray[s], a, (w, h), flags=cv2.INTER_LINEAR | inverse)
            valid = cv2.warpAffine(self.keep[s].astype(np.uint8), a, (w, h), flags=cv2.INTER_NEAREST | inverse)
            known = self.keep[t] & valid.astype(bool)
            diff = np.abs(warped.astype(np.float32) - self.gray[t].astype(np.float32)) * known
            ring = self.ring[t] & known
            error = float(np.median(diff[ring])) if ring.sum() >= 20 else float("inf")
            self.checks[key] = (error, _carry_in(diff, known, error))
        return self.checks[key]


def _carry_in(diff: np.ndarray, known: np.ndarray, fallback: float) -> np.ndarray:
    """The local mean of `diff` over `known` pixels at each pixel (normalised convolution), from a
    fine neighbourhood where there is one, else a coarse one, else `fallback`: carried as deep
    into the unknown areas as needed."""
    out = np.full(diff.shape, fallback, np.float32)
    for size in (63, 15):  # coarse first, overwritten by fine where the fine one has support
        weight = cv2.blur(known.astype(np.float32), (size, size))
        spread = cv2.blur(diff, (size, size)) / np.maximum(weight, 1e-6)
        out = np.where(weight > 0.02, spread, out)
    return out


def _warp_mask(keep: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Pixels of frame t whose image under `a` lands on a trackable pixel of frame s."""
    h, w = keep.shape
    return cv2.warpAffine(keep.astype(np.uint8), a, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP).astype(bool)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Colours of `image` at sub-pixel points `(x, y)`, as `(len(x), 3) float32`."""
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0, y0 = np.floor(x).astype(np.int32), np.floor(y).astype(np.int32)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (x - x0)[:, None], (y - y0)[:, None]
    img = image.astype(np.float32)
    top = img[y0, x0] * (1 - ax) + img[y0, x1] * ax
    bottom = img[y1, x0] * (1 - ax) + img[y1, x1] * ax
    return top * (1 - ay) + bottom * ay
