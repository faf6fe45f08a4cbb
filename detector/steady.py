"""Marks that never move, told by their edges holding steadier over the whole video than anything
the camera films.

The windowed search of `detector.static` needs the picture around a mark to change within a few
frames. Over a camera that holds still relative to the scene (fixed in a car, on a tripod) it
does not, and the scene's edges persist beside the mark's; they join into one component too big
to be a mark. Over the whole video the two differ: a filmed edge drifts by a fraction of a pixel
and changes contrast as the light changes (vibration, noise, exposure), an overlay's edge keeps
its place and, where the picture beside it is steady too, its contrast. So each pixel's gradient
is summed over every frame, and the pixels whose gradient varied by less than `max_motion` of its
mean strength are the steady ones. The cue says something only where most of the picture's
edges are not that steady (a locked-off shot of still scenery holds every edge), so it is not
used where more than `max_steady_share` of them are.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SteadyConfig:
    """How steady an edge must be, and when the cue is used at all."""

    max_motion: float = 0.125
    """RMS change of a pixel's gradient over the video, as a share of its mean strength: about the
    RMS shift, in pixels, of a one-pixel-wide edge. An eighth of a pixel: finer than a real
    camera holds still, coarser than codec noise moves a fixed edge."""
    max_steady_share: float = 0.15
    """Most of the picture's strong edges must move: above this share of steady ones the picture
    itself holds still, and steadiness tells nothing."""
    min_pixels: int = 30
    """Steady pixels a mark needs: a few stray ones are noise."""
    max_spread_ratio: float = 0.5
    """An opaque mark's own pixels vary over the video by less than this share of the picture's
    around it (see `detector.static`): half, so that codec noise on the mark and a picture around
    it that barely changes do not pass."""
    min_frames: int = 30
    """Frames the statistic needs before it means anything."""


class SteadyEdges:
    """Per-pixel running sums of the gradient over a video's frames (analysis scale)."""

    def __init__(self, cfg: SteadyConfig = SteadyConfig()) -> None:
        self.cfg = cfg
        self.n = 0
        self._sx = self._sy = self._s2 = None
        self._gray = self._gray2 = None

    def push(self, gray: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> None:
        """One frame's grey levels and gradient, `(h, w) float32` each."""
        if self._sx is None:
            self._sx, self._sy, self._s2, self._gray, self._gray2 = (np.zeros(gx.shape, np.float64) for _ in range(5))
        self._sx += gx
        self._sy += gy
        self._s2 += gx * gx + gy * gy
        self._gray += gray
        self._gray2 += gray * gray
        self.n += 1

    def add(self, other: SteadyEdges) -> None:
        """`other`'s frames too (the sums of another chunk of the video's frames)."""
        if other.n == 0:
            return
        if self._sx is None:
            self._sx, self._sy, self._s2, self._gray, self._gray2 = (a.copy() for a in other.sums())
        else:
            for mine, theirs in zip(self.sums(), other.sums()):
                mine += theirs
        self.n += other.n

    def sums(self) -> tuple[np.ndarray, ...]:
        """The running sums (`(h, w) float64` each; empty before the first frame)."""
        if self._sx is None:
            return ()
        return self._sx, self._sy, self._s2, self._gray, self._gray2

    @classmethod
    def from_sums(cls, n: int, sums: tuple[np.ndarray, ...]) -> SteadyEdges:
        """Sums as `sums` gave them (to be `add`ed to another's: the thresholds are that one's)."""
        out = cls()
        if n and sums:
            out._sx, out._sy, out._s2, out._gray, out._gray2 = sums
            out.n = n
        return out

    def steady(self, min_strength: float) -> np.ndarray | None:
        """`(h, w) bool`: the pixels whose edge held steady over the whole video, or None where the
        cue does not apply (too few frames, or a picture that holds still itself)."""
        if self.n < self.cfg.min_frames:
            return None
        mx, my = self.mean_gradient()
        strength = np.hypot(mx, my)
        spread = np.sqrt(np.maximum(self._s2 / self.n - strength**2, 0.0))
        strong = strength > min_strength
        steady = strong & (spread < self.cfg.max_motion * strength)
        if steady.sum() > self.cfg.max_steady_share * max(1, strong.sum()):
            return None
        return steady

    def mean_gradient(self) -> tuple[np.ndarray, np.ndarray]:
        return (self._sx / self.n).astype(np.float32), (self._sy / self.n).astype(np.float32)

    def grey_spread(self) -> np.ndarray:
        """`(h, w) float32`: each pixel's standard deviation of grey level over the video."""
        mean = self._gray / self.n
        return np.sqrt(np.maximum(self._gray2 / self.n - mean**2, 0.0)).astype(np.float32)


Component = tuple[int, int, int, int, np.ndarray]


def steady_components(steady: np.ndarray, kernel: np.ndarray, min_pixels: int) -> list[Component]:
    """`(x, y, w, h, support)` of each group of steady pixels (grouped by `kernel`'s dilation),
    `support` the group's steady pixels over the whole frame, with at least `min_pixels` of them."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(steady.astype(np.uint8), kernel))
    out = []
    for k in range(1, count):
        support = steady & (labels == k)
        if support.sum() >= min_pixels:
            x, y, w, h, _ = stats[k]
            out.append((int(x), int(y), int(w), int(h), support))
    return out
