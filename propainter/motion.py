"""Affine motion of the picture between the crops of a segment, tracked outside the masks (where
a static mark would drag it to zero): step by step between neighbours, composed to reach frames
further away and tracked again directly where the composed model misaligns. What `temporal`
needs to bring one frame's pixels onto another's and to judge whether that source can be trusted."""

from __future__ import annotations

import threading

import cv2
import numpy as np

IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float64)


class Motion:
    """Affine motion of the picture between crops, measured outside the masks only. Several
    targets may be worked on at once, each by one thread: what is kept for a target is its own,
    and the steps between neighbours are made once, under a lock."""

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
        self._steps = threading.Lock()
        # per target t, per source s
        self.models: dict[int, dict[int, np.ndarray | None]] = {}
        self.checks: dict[int, dict[int, tuple[float, np.ndarray, np.ndarray | None]]] = {}
        # pairs (earlier, later) tracked directly: both frames of a pair look at each other
        self.direct: dict[tuple[int, int], np.ndarray | None] = {}

    def never_uncovered(self, masks: np.ndarray, max_error: float) -> bool:
        """Whether no frame can show what is under the mask: it covers the same pixels in every
        frame, and the picture around it holds still (the first, middle and last frames align
        with no motion at all). Over a still camera, something moving in front of it (a head, a
        car) gives tracked points a motion of their own; composed over many frames, its small
        steps drift by pixels where a flat picture around the mark cannot show it, and the
        picture beside the mark would be taken for the picture under it."""
        if not all(np.array_equal(masks[0], m) for m in masks[1:]):
            return False
        last = len(masks) - 1
        pairs = ((0, last), (0, last // 2), (last // 2, last))
        return all(self._alignment(t, s, IDENTITY)[0] <= max_error for t, s in pairs)

    def between(self, t: int, s: int) -> np.ndarray | None:
        """`(2, 3)` affine taking a pixel of frame t to frame s, or None when it cannot be tracked."""
        models = self.models.setdefault(t, {})
        if s not in models:
            model = self._composed(t, s)
            # Composed steps drift over long spans: refine directly only when they misalign.
            if model is not None and abs(t - s) > 1 and self.check(t, s, model) > self.refine_above:
                refined = self._direct(t, s)
                if refined is not None:
                    self.checks.get(t, {}).pop(s, None)
                model = refined
            models[s] = model
        return models[s]

    def _direct(self, t: int, s: int) -> np.ndarray | None:
        """The motion from t to s tracked directly, from the earlier frame of the two to the later
        (guessed by the composed steps) and inverted where t is the later: each pair is tracked
        once, whichever of its frames is the target first (the same model whatever the order)."""
        pair = (min(t, s), max(t, s))
        if pair not in self.direct:
            guess = self._composed(*pair)
            self.direct[pair] = None if guess is None else self._track(*pair, guess)
        model = self.direct[pair]
        if model is None or t < s:
            return model
        return cv2.invertAffineTransform(model)

    def _composed(self, t: int, s: int) -> np.ndarray | None:
        if len(self.to_first) <= max(t, s):
            with self._steps:
                while len(self.to_first) <= max(t, s):
                    u = len(self.to_first)
                    prev = self.to_first[u - 1]
                    step = None if prev is None else self._track(u, u - 1, IDENTITY)
                    self.to_first.append(None if step is None else prev @ np.vstack([step, [0, 0, 1]]))
        a, b = self.to_first[t], self.to_first[s]
        if a is None or b is None:
            return None
        return (np.linalg.inv(b) @ a)[:2]

    def _track(self, t: int, s: int, guess: np.ndarray) -> np.ndarray | None:
        keep = (self.keep[t] & _warp_mask(self.keep[s], guess)).astype(np.uint8) * 255
        pts = cv2.goodFeaturesToTrack(self.gray[t], 300, 0.005, 4, mask=keep, blockSize=5)
        if pts is None or len(pts) < 6:
            return guess if guess is not IDENTITY else None
        init = cv2.transform(pts, guess).astype(np.float32)
        lk = {"winSize": (15, 15), "maxLevel": 2, "flags": cv2.OPTFLOW_USE_INITIAL_FLOW}
        fwd, ok1, _ = cv2.calcOpticalFlowPyrLK(self.gray[t], self.gray[s], pts, init.copy(), **lk)
        back, ok2, _ = cv2.calcOpticalFlowPyrLK(self.gray[s], self.gray[t], fwd, pts.copy(), **lk)
        good = (ok1[:, 0] == 1) & (ok2[:, 0] == 1) & (np.linalg.norm((back - pts)[:, 0], axis=1) < 0.7)
        if good.sum() < 6:
            return None
        model, _ = cv2.estimateAffine2D(pts[good, 0], fwd[good, 0], method=cv2.RANSAC, ransacReprojThreshold=1.0)
        return None if model is None else model

    def could_show(self, t: int, s: int, ys: np.ndarray, xs: np.ndarray, mask_s: np.ndarray) -> bool:
        """A cheap first look, by the composed motion alone: whether frame s shows any of the
        pixels `(ys, xs)` of frame t uncovered by its own mask `mask_s`."""
        a = self._composed(t, s)
        if a is None:
            return False
        _, _, inside, qxi, qyi = project(a, xs, ys, mask_s.shape)
        return bool((~mask_s[qyi[inside], qxi[inside]]).any())

    def release(self, t: int, s: int) -> None:
        """Drop the maps `check(t, s)` kept for `disagreement` (its error stays): a source is
        looked at once per target, and the maps of all of them would not fit the memory budget."""
        checks = self.checks.get(t, {})
        if s in checks:
            checks[s] = (checks[s][0], None, None)

    def forget(self, t: int) -> None:
        """Drop what was kept for frame t as a target: it is only needed while filling t."""
        self.checks.pop(t, None)
        self.models.pop(t, None)

    def check(self, t: int, s: int, a: np.ndarray) -> float:
        """How far frame s, brought onto frame t by `a`, can be trusted as a source for t: the
        median grey-level difference in the ring around the mark (misalignment)."""
        checks = self.checks.setdefault(t, {})
        if s not in checks:
            checks[s] = self._alignment(t, s, a)
        return checks[s][0]

    def _alignment(self, t: int, s: int, a: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """`check`'s error for the affine `a`, with the difference map and where it was measured."""
        h, w = self.gray[t].shape
        inverse = cv2.WARP_INVERSE_MAP
        warped = cv2.warpAffine(self.gray[s], a, (w, h), flags=cv2.INTER_LINEAR | inverse)
        valid = cv2.warpAffine(self.keep[s].astype(np.uint8), a, (w, h), flags=cv2.INTER_NEAREST | inverse)
        known = self.keep[t] & valid.astype(bool)
        diff = cv2.absdiff(warped, self.gray[t])
        diff[~known] = 0
        ring = self.ring[t] & known
        return (_median_grey(diff[ring]) if ring.sum() >= 20 else float("inf")), diff, known

    def disagreement(self, t: int, s: int) -> np.ndarray:
        """After `check(t, s, a)`: an `(h, w)` map of the mean difference near each pixel, measured
        where both frames are visible and carried into the masks from their border: an object that
        stood next to the mark in one of the two frames makes that source suspect there. Made only
        for the sources `check` lets through, and only until `release(t, s)`."""
        error, diff, known = self.checks[t][s]
        if diff is None:
            raise ValueError(f"the maps of source {s} for target {t} were released")
        return _carry_in(diff.astype(np.float32), known, error)


def project(a: np.ndarray, xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]):
    """Pixels `(ys, xs)` mapped by the affine `a`: their positions `qx, qy`, whether they land
    inside a frame of `shape`, and the nearest pixel, clamped into it."""
    h, w = shape
    qx = a[0, 0] * xs + a[0, 1] * ys + a[0, 2]
    qy = a[1, 0] * xs + a[1, 1] * ys + a[1, 2]
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    qxi = np.clip(np.rint(qx), 0, w - 1).astype(np.int32)
    qyi = np.clip(np.rint(qy), 0, h - 1).astype(np.int32)
    return qx, qy, inside, qxi, qyi


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


def _median_grey(values: np.ndarray) -> float:
    """`np.median` of grey levels (`uint8`), from their histogram: the same value, without the
    sort numpy takes for it."""
    counts = np.cumsum(np.bincount(values, minlength=256))
    n = len(values)
    low = int(np.searchsorted(counts, (n - 1) // 2, side="right"))
    high = int(np.searchsorted(counts, n // 2, side="right"))
    return (low + high) / 2


def _warp_mask(keep: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Pixels of frame t whose image under `a` lands on a trackable pixel of frame s."""
    h, w = keep.shape
    return cv2.warpAffine(keep.astype(np.uint8), a, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP).astype(bool)


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Colours of `image` at sub-pixel points `(x, y)`, as `(len(x), 3) float32`."""
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0, y0 = np.floor(x).astype(np.int32), np.floor(y).astype(np.int32)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (x - x0)[:, None], (y - y0)[:, None]

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return image[yy, xx].astype(np.float32)  # only the pixels read, not the whole image

    top = at(y0, x0) * (1 - ax) + at(y0, x1) * ax
    bottom = at(y1, x0) * (1 - ax) + at(y1, x1) * ax
    return top * (1 - ay) + bottom * ay
