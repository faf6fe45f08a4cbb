"""Weights-free detection of overlays that stay put while the picture under them changes.

Over a sliding window of frames, the temporal median of the image gradient cancels the moving
picture and keeps what is fixed on screen. A pixel is a candidate when that median gradient is strong
and coherent (the gradient points the same way in most frames). Candidates grouped into components
become marks only when they match best without a shift in every frame, hold a steady share of their
template from frame to frame (within a shot: across a hard cut the share follows the new picture),
and either the picture around them really changes while they stay or they pop up or vanish while
their surroundings stay (a jump): a locked-off shot's scenery stays put too, but neither happens to
it. Components touching the frame's edge are ignored (letterbox edges). Under a camera that
translates, picture texture that slides along itself (grass blades under a tilt, a long edge under
a pan) also looks fixed; where much of the window does, each frame is shifted back by the camera's
move (phase correlation), and what persists as well that way moves with the picture: it is dropped.
Windows come in two speeds: consecutive frames, and the same number of frames taken every
`slow_step` frames, so that a slow camera move (a fraction of a pixel per frame) changes the
picture enough for it to come apart from the mark.

Over a locked-off shot the scenery stays put as much as a mark does, and the windows cannot tell
them apart; a mark that jumps can still be told by its jumps: it pops up (or vanishes) between two
frames while its gradient and grey levels hold still for a few frames on either side and the
picture around it does not change, and something about as big and with the same edges vanishes
elsewhere in that frame (text that only comes up, a title, is not taken for a mark; in a busy
picture, only pops that pair up that way count). Such a pop starts a track whose
template is the change itself, and whose shape is the pixels that changed near its edges. A mark
seen on one frame is looked for on the next, so a pop-born track follows the mark until it goes;
for a mark that vanishes, the frame since which its gradient had held (kept per pixel as frames
stream by) says since when it was there.

Each mark position becomes a track with an accumulated gradient template. Every frame is then scored
against the tracks seen near it (how much of the template its own gradient contains), which places
the appearance and disappearance of a jumping mark to the frame; a run of frames before that whose
gradient holds the template leads up to the mark (there from the start of a shot too slow for the
first windows to see it). The mask follows the mark's edges
plus its solid parts (pixels near the edges whose picture changes much less than around the mark)
and the insides of its thick strokes (`detector.strokes`).

Known limits: a mark that never moves over a picture that does not change (a locked-off shot) is
not found, and a long picture edge sliding along itself right beside the mark can join it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from detector.base import FrameMarks
from detector.steady import SteadyConfig, SteadyEdges, steady_components
from detector.strokes import fill_stroke_insides
from waterz.core.geometry import Box, Mark, union_box
from waterz.core.masks import fill_holes

log = logging.getLogger(__name__)


@dataclass
class _Features:
    gray: np.ndarray  # (h, w) float32, analysis scale
    gx: np.ndarray
    gy: np.ndarray
    since: np.ndarray | None = None  # (h, w) int32: since which frame each pixel's gradient has held
    step: np.ndarray | None = None  # (h, w) float32: how much the gradient changed from the frame before


@dataclass
class _Track:
    """A mark position: its analysis-scale box, template sums and the windows that saw it."""

    box: Box
    sum_x: np.ndarray
    sum_y: np.ndarray
    votes: np.ndarray  # how many windows marked each pixel as part of the mark
    still_sum: np.ndarray  # sum over windows of each pixel's temporal change relative to its surroundings
    still_n: np.ndarray  # how many windows measured it
    windows: list[tuple[int, int]] = field(default_factory=list)
    present: set[int] = field(default_factory=set)
    # Frames scored before any window near them saw the mark, whose gradient holds its template:
    # the mark was there already where a run of them leads up to a frame it is present on.
    matches: set[int] = field(default_factory=set)

    @property
    def n(self) -> int:
        return len(self.windows)

    def template(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = self.box
        tx = self.sum_x[b.y : b.y1, b.x : b.x1] / self.n
        ty = self.sum_y[b.y : b.y1, b.x : b.x1] / self.n
        # Most windows that saw the mark agree on its pixels; picture edges caught once do not.
        support = self.votes[b.y : b.y1, b.x : b.x1] >= (1.0 if self.n < 2 else max(2.0, 0.5 * self.n))
        return tx, ty, support

    def shape_support(self, min_share: float) -> np.ndarray:
        """The mark's pixels for its mask: seen in at least `min_share` of the windows. Laxer than
        the template's support: parts of a mark that show only over some backgrounds (white on
        white) must still be covered. Not much laxer: over a near-still picture, picture edges
        next to the mark persist in a fifth of the windows or more, and whatever the mask covers
        and no frame shows is painted over (`mask_share` 0.2 made big buck bunny's still
        corner logo's mask 6.9 times the mark's area, 0.35 makes it 3.8)."""
        b = self.box
        return self.votes[b.y : b.y1, b.x : b.x1] >= max(1.0, min_share * self.n)

    def near(self, frame: int, reach: int) -> bool:
        return any(s - reach <= frame < e + reach for s, e in self.windows)


@dataclass
class _Pop:
    """A mark appearing (or vanishing) between two frames: its box, its template (the change of
    the gradient), its shape and its edges, all over the analysis frame."""

    box: Box
    appears: bool
    tx: np.ndarray
    ty: np.ndarray
    shape: np.ndarray
    edges: np.ndarray


class StaticDetector:
    """The `static` detector: see the module docstring. Needs no weights."""

    needs_frames = True

    def __init__(
        self,
        window: int = 16,
        stride: int = 8,
        slow_step: int = 4,
        analysis_size: int = 640,
        min_strength: float = 10.0,
        min_coherence: float = 0.55,
        strict_coherence: float = 0.7,
        min_steady: float = 0.75,
        min_still: float = 0.6,
        max_swing: float = 0.35,
        max_spread: float = 0.15,
        min_change: float = 3.0,
        presence: float = 0.4,
        mask_dilation: int = 2,
        max_area_fraction: float = 0.25,
        max_stillness: float = 0.45,
        mask_share: float = 0.35,
        min_spread_of_directions: float = 0.1,
        steady: SteadyConfig | None = None,
    ) -> None:
        self.steady = steady or SteadyConfig()
        self.window, self.stride, self.slow_step = window, stride, slow_step
        self.analysis_size = analysis_size
        self.min_strength, self.min_coherence = min_strength, min_coherence
        self.strict_coherence, self.min_steady, self.min_still = strict_coherence, min_steady, min_still
        self.min_change, self.presence = min_change, presence
        self.max_swing, self.max_spread = max_swing, max_spread
        self.mask_dilation = mask_dilation
        self.max_area_fraction = max_area_fraction
        self.max_stillness = max_stillness
        self.mask_share = mask_share
        self.min_spread_of_directions = min_spread_of_directions

    def detect(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> FrameMarks:
        width, height = size
        scale = min(1.0, self.analysis_size / max(width, height))
        scan = _Scan(self, scale)
        steady = SteadyEdges(self.steady)
        for index, frame in enumerate(frames):
            feats = _features(frame, scale)
            steady.push(feats.gray, feats.gx, feats.gy)
            scan.push(index, feats)
        scan.finish()
        scan.add_steady(steady)
        return scan.result(total, width, height)


def _features(frame: np.ndarray, scale: float) -> _Features:
    if scale < 1.0:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    # Sobel / 4: a sharp step of d grey levels gives a gradient of about d.
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) * 0.25
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) * 0.25
    return _Features(gray, gx, gy)


class _Scan:
    """Streaming state: a buffer of recent frames' features, the windows done, and the tracks."""

    def __init__(self, cfg: StaticDetector, scale: float) -> None:
        self.cfg, self.scale = cfg, scale
        self.buffer: dict[int, _Features] = {}
        self.next_window = 0
        # Slow windows: `window` frames taken every `slow_step` frames, for slow camera moves under
        # which the picture barely changes within a short window.
        self.sparse: dict[int, _Features] = {}
        self.next_slow = 0
        self.slow_until = 0
        self.last_index = -1
        self.scored_until = 0  # frames below this are scored
        self.tracks: list[_Track] = []
        # Each pixel's gradient as it has held lately, and since which frame.
        self.held: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def push(self, index: int, feats: _Features) -> None:
        self._hold(index, feats)
        self.buffer[index] = feats
        self.last_index = index
        cfg = self.cfg
        while self.next_window + cfg.window <= index + 1:
            self._window(self.next_window, self.next_window + cfg.window)
            self.next_window += cfg.stride
        if cfg.slow_step > 1:
            if index % cfg.slow_step == 0:
                self.sparse[index] = feats
            span = cfg.window * cfg.slow_step
            while self.next_slow + span <= index + 1:
                start = self.next_slow
                frames = [self.sparse[i] for i in range(start, start + span, cfg.slow_step)]
                self._analyse(frames, (start, start + span))
                self.slow_until = start + span
                self.next_slow += cfg.stride * cfg.slow_step
            for old in [i for i in self.sparse if i < self.next_slow - span]:
                del self.sparse[old]
        for i, old in self.buffer.items():
            if i < self.next_window:
                old.since = old.step = None  # only the frames of windows still to come need them
        # A frame is scored once every window that can reveal a mark on it has run.
        done = self.next_window - cfg.window
        if cfg.slow_step > 1:
            done = min(done, self.next_slow - cfg.window * cfg.slow_step)
        self._score_up_to(done)

    def _hold(self, index: int, feats: _Features) -> None:
        """Note since which frame each pixel's gradient has held (within a third of its strength
        or half the candidate strength): where a mark vanishes over a locked-off shot, this says
        since when it had been there, long before the windows that see it go."""
        if self.held is None:
            self.held = (feats.gx.copy(), feats.gy.copy(), np.zeros(feats.gx.shape, np.int32))
        else:
            hx, hy, since = self.held
            dx, dy = feats.gx - hx, feats.gy - hy
            # |drift| < max(min_strength / 2, |held| / 3), in squares
            holds = dx * dx + dy * dy < np.maximum(0.25 * self.cfg.min_strength**2, (hx * hx + hy * hy) / 9)
            hx += np.where(holds, 0.2 * dx, dx)
            hy += np.where(holds, 0.2 * dy, dy)
            since[~holds] = index
        feats.since = self.held[2].copy()
        before = self.buffer.get(index - 1)
        if before is not None:
            feats.step = np.hypot(feats.gx - before.gx, feats.gy - before.gy)

    def finish(self) -> None:
        n = self.last_index + 1
        covered = self.next_window - self.cfg.stride + self.cfg.window if self.next_window else 0
        if n >= 3 and covered < n:
            self._window(max(0, n - self.cfg.window), n)
        tail = sorted(i for i in self.sparse if i >= n - self.cfg.window * self.cfg.slow_step)
        if self.cfg.slow_step > 1 and self.slow_until and self.slow_until < n and len(tail) == self.cfg.window:
            self._analyse([self.sparse[i] for i in tail], (tail[0], n))
        self._score_up_to(n)

    def add_steady(self, edges: SteadyEdges) -> None:
        """Tracks for the marks that never moved (`detector.steady`), where no track has them yet:
        present on every frame, their template the video's mean gradient, their solid parts the
        pixels whose grey level varied much less than the picture around them."""
        cfg = self.cfg
        steady = edges.steady(cfg.min_strength)
        if steady is None:
            return
        h, w = steady.shape
        mx, my = edges.mean_gradient()
        spread = edges.grey_spread()
        parts = steady_components(steady, _grouping_kernel(h, w), cfg.steady.min_pixels)
        for x, y, bw, bh, support in parts:
            if _implausible(x, y, bw, bh, h, w, cfg.max_area_fraction):
                continue
            if not _holds_while_around_changes(support, spread, cfg.steady.max_spread_ratio):
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
            if _one_direction(mx[y : y + bh, x : x + bw][part], my[y : y + bh, x : x + bw][part],
                              cfg.min_spread_of_directions):  # fmt: skip
                continue
            if any(_overlap(t.box, box) > 0.5 for t in self.tracks):
                continue
            zeros = np.zeros_like(mx)
            track = _Track(box, mx.copy(), my.copy(), support.astype(np.float32), zeros.copy(), zeros.copy(),
                           windows=[(0, edges.n)], present=set(range(edges.n)))  # fmt: skip
            self.tracks.append(track)
            log.info("static detector: a mark that never moved at %s (analysis scale)", box)

    # -- windows -------------------------------------------------------------------------------

    def _window(self, start: int, end: int) -> None:
        feats = [self.buffer[i] for i in range(start, end)]
        self._analyse(feats, (start, end))
        self._pops(feats, start)

    def _pops(self, feats: list[_Features], start: int, run: int = 3) -> None:
        """Find marks that appear or vanish between two frames while everything around them holds
        still: the gradient steady for `run` frames before, steady for `run` frames after, and
        different between the two. Over a locked-off shot this is what tells a jumping mark from
        scenery, which never pops; moving objects are not steady from frame to frame. The mark's
        template is the change itself (after minus before for an appearance, the opposite for a
        vanishing), so the scenery under it does not enter it."""
        cfg = self.cfg
        if len(feats) < 2 * run or any(f.step is None for f in feats[1:]):
            return
        h, w = feats[0].gx.shape
        kernel = _grouping_kernel(h, w)
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
            found: list[_Pop] = []
            for x, y, bw, bh, _ in stats[1:]:
                pad = 16  # room for the ring around the mark and for the edges the gate missed
                region = (slice(max(0, y - pad), min(h, y + bh + pad)), slice(max(0, x - pad), min(w, x + bw + pad)))
                found += self._pops_in(feats, t, run, region, kernel)
            for pop in _jumping(found):
                self._add_pop(pop, feats, start, t, run)

    def _add_pop(self, pop: _Pop, feats: list[_Features], start: int, t: int, run: int) -> None:
        span = (start + t, start + t + run) if pop.appears else (start + t - run, start + t)
        seen = np.stack([f.gray for f in feats[slice(t, t + run) if pop.appears else slice(t - run, t)]])
        track = self._add_to_track(pop.box, span, pop.tx, pop.ty, pop.shape, seen)
        if not pop.appears and feats[t - 1].since is not None:
            # Frames before the windows that saw it go: since when the vanished mark held. An
            # object passing under it disturbs some of its pixels at a time, so a fifth of them
            # holding is enough.
            held_from = int(np.percentile(feats[t - 1].since[pop.edges], 20))
            track.present.update(range(held_from, start + t))

    def _pops_in(self, feats: list[_Features], t: int, run: int, region, kernel) -> list[_Pop]:
        """The marks popping up or vanishing at frame t within `region` (slices of the analysis
        frame), see `_pops`."""
        cfg = self.cfg
        h, w = feats[0].gx.shape
        ry, rx = region
        oy, ox = ry.start, rx.start

        def stack(name: str, frames: slice) -> np.ndarray:
            return np.stack([getattr(f, name)[region] for f in feats[frames]])

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
            if sizes[label] < 30 or _implausible(box.x, box.y, bw, bh, h, w, cfg.max_area_fraction):
                continue
            part = pop & (labels == label)
            if not _surroundings_hold(g0, g1, part, cfg.min_change):
                continue
            if _one_direction((bx - ax)[part], (by - ay)[part], cfg.min_spread_of_directions):
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
            out.append(_Pop(box, appears, tx, ty, shape, full_part))
        return out

    def _analyse(self, feats: list[_Features], span: tuple[int, int]) -> None:
        """Find mark candidates in one window of frames (consecutive, or sparse for slow windows)."""
        cfg = self.cfg
        gx = np.stack([f.gx for f in feats])
        gy = np.stack([f.gy for f in feats])
        med_x, med_y = np.median(gx, axis=0), np.median(gy, axis=0)
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
        grouped = cv2.dilate(strict.astype(np.uint8), _grouping_kernel(h, w))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
        shots = _shots(gray)
        for label in range(1, count):
            x, y, bw, bh, _ = stats[label]
            if _implausible(x, y, bw, bh, h, w, cfg.max_area_fraction):
                continue
            box = Box(int(x), int(y), int(bw), int(bh))
            support = cand[y : y + bh, x : x + bw] & (labels[y : y + bh, x : x + bw] == label)
            if support.sum() < 12:
                continue
            if _one_direction(med_x[y : y + bh, x : x + bw][support], med_y[y : y + bh, x : x + bw][support],
                              cfg.min_spread_of_directions):  # fmt: skip
                continue
            if not _stays_put(box, support, med_x, med_y, gx, gy, cfg.min_still):
                continue
            known = any(_overlap(t.box, box) > 0.5 for t in self.tracks)
            if not known and not self._picture_changes(box, support, med_x, med_y, gx, gy, gray, shots, moved):
                continue
            self._add_to_track(box, span, med_x, med_y, cand & (labels == label), gray)

    def _picture_changes(self, box, support, med_x, med_y, gx, gy, gray, shots, moved: bool) -> bool:
        """True when the picture around the component changes while the component stays visible.
        `shots`: the window's frames split at hard cuts; `moved`: the camera travelled (then the
        picture moved under the component, whose pixels do not follow the camera, even where the
        picture around it is too flat to show it)."""
        sl = (slice(box.y, box.y1), slice(box.x, box.x1))
        tx, ty = med_x[sl][support], med_y[sl][support]
        norm = float((tx * tx + ty * ty).sum()) + 1e-6
        coeff = (gx[:, sl[0], sl[1]][:, support] * tx + gy[:, sl[0], sl[1]][:, support] * ty).sum(axis=1) / norm
        # A fixed mark contributes the same gradient to every frame: the share of its template that
        # each frame holds stays near 1. Coincidentally persistent picture content swings widely.
        # Under a moving camera, a mark that jumps away (or in) within the window is judged on the
        # frames it is there (over a still one, scenery an object uncovers would pass as well).
        present = coeff > self.cfg.presence
        one_run = len(np.flatnonzero(np.diff(present.astype(np.int8)))) <= 1
        on = present if moved and one_run and present.sum() >= len(coeff) / 2 else np.ones(len(coeff), bool)
        if (np.abs(coeff[on] - 1.0) < self.cfg.max_swing).mean() < self.cfg.min_steady:
            return False
        # Within a shot. Across a cut the mark's share changes with the picture under it (white
        # lettering shows twice as strongly over a dark scene as over a bright one).
        spreads = [np.median(np.abs(c - np.median(c))) for c in (coeff[s][on[s]] for s in shots) if len(c) >= 3]
        if max(spreads, default=np.inf) > self.cfg.max_spread:
            return False
        if moved:
            return True
        # The ring just outside the component's filled shape, in a slightly larger region.
        pad = 8
        H, W = gray.shape[1:]
        outer = Box(max(0, box.x - pad), max(0, box.y - pad), 0, 0)
        outer = Box(outer.x, outer.y, min(W, box.x1 + pad) - outer.x, min(H, box.y1 + pad) - outer.y)
        part = np.zeros((outer.h, outer.w), bool)
        part[box.y - outer.y : box.y1 - outer.y, box.x - outer.x : box.x1 - outer.x] = support
        ring = _ring(part)
        if ring.sum() < 10:
            return False
        local = gray[:, outer.y : outer.y1, outer.x : outer.x1][:, ring]
        # Median absolute deviation over time: an object passing by for a few frames does not count.
        moving = local[present]
        change = np.median(np.abs(moving - np.median(moving, axis=0)), axis=0)
        if float(np.median(change)) > self.cfg.min_change:
            return True
        return _pops_up(coeff, local, self.cfg.min_change)

    def _add_to_track(self, box: Box, span: tuple[int, int], med_x, med_y, cand_full, gray) -> _Track:
        for track in self.tracks:
            if _overlap(track.box, box) > 0.5:
                break
        else:
            zeros = np.zeros_like(med_x)
            track = _Track(box, *(zeros.copy() for _ in range(5)))
            self.tracks.append(track)
        track.box = track.box.union(box)
        track.votes += cand_full
        if span not in track.windows:  # two parts of one mark in one window count once
            track.sum_x += med_x
            track.sum_y += med_y
            _add_stillness(track, box, cand_full, gray)
            track.windows.append(span)
        return self._merge_overlapping(track)

    def _merge_overlapping(self, track: _Track) -> _Track:
        """Parts of one mark found separately (a logo and its text) become one track once they
        overlap. Returns the track `track` ended up in."""
        merged = True
        while merged:
            merged = False
            for a in self.tracks:
                for b in self.tracks:
                    if a is not b and _overlap(a.box, b.box) > 0.5:
                        a.box = a.box.union(b.box)
                        a.votes += b.votes
                        if set(a.windows) & set(b.windows):  # parts of one mark seen in the same windows
                            a.sum_x, a.sum_y = _weighted(a, b, "sum_x"), _weighted(a, b, "sum_y")
                        else:
                            a.sum_x += b.sum_x
                            a.sum_y += b.sum_y
                            a.still_sum += b.still_sum
                            a.still_n += b.still_n
                        a.windows = sorted(set(a.windows) | set(b.windows))
                        a.present |= b.present
                        a.matches |= b.matches
                        self.tracks.remove(b)
                        track = a if track is b else track
                        merged = True
                        break
                if merged:
                    break
        return track

    # -- per-frame scoring ---------------------------------------------------------------------

    def _score_up_to(self, end: int) -> None:
        reach = self.cfg.window
        for index in range(self.scored_until, min(end, self.last_index + 1)):
            feats = self.buffer.pop(index)
            for track in self.tracks:
                # A mark seen on the previous frame is looked for on this one too: over a
                # locked-off shot only its appearance confirms it, not the windows after.
                near = track.near(index, reach) or (index - 1) in track.present
                if self._score(track, feats) > self.cfg.presence:
                    (track.present if near else track.matches).add(index)
        self.scored_until = max(self.scored_until, min(end, self.last_index + 1))

    @staticmethod
    def _score(track: _Track, feats: _Features) -> float:
        tx, ty, support = track.template()
        if not support.any():
            return 0.0
        b = track.box
        fx, fy = feats.gx[b.y : b.y1, b.x : b.x1], feats.gy[b.y : b.y1, b.x : b.x1]
        tx, ty = tx[support], ty[support]
        return float((fx[support] * tx + fy[support] * ty).sum() / ((tx * tx + ty * ty).sum() + 1e-6))

    # -- result --------------------------------------------------------------------------------

    def result(self, total: int, width: int, height: int) -> FrameMarks:
        out: FrameMarks = [[] for _ in range(total)]
        found = []
        for track in self.tracks:
            present = clean_presence(_lead_in(track.present, track.matches), total)
            if not present.any():
                continue
            mark = self._full_res_mark(track, width, height)
            if mark is not None:
                found.append((mark, present))
        for mark, present in zip(_complete_shapes([m for m, _ in found], width, height), (p for _, p in found)):
            for i in np.flatnonzero(present):
                out[i].append(mark)
        log.info("static detector: %d mark position(s), marks on %d of %d frames",
                 len(self.tracks), sum(1 for m in out if m), total)  # fmt: skip
        return out

    def _full_res_mark(self, track: _Track, width: int, height: int) -> Mark | None:
        support = track.shape_support(self.cfg.mask_share)
        b = track.box
        sl = (slice(b.y, b.y1), slice(b.x, b.x1))
        # Inside solid parts of a mark there is no edge, but the picture there changes much less
        # than around it (an opaque mark not at all, a 50 % one half as much).
        seen = track.still_n[sl] > 0
        still = seen & (track.still_sum[sl] < self.cfg.max_stillness * np.maximum(track.still_n[sl], 1))
        still = cv2.morphologyEx(still.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)).astype(bool)
        pad = 2
        shape = np.zeros((b.h + 2 * pad, b.w + 2 * pad), np.uint8)
        shape[pad:-pad, pad:-pad] = support | (still & _near(support, 6))
        shape = cv2.morphologyEx(shape, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        tx, ty, _ = track.template()
        shape = fill_stroke_insides(shape.astype(bool), np.pad(tx, pad), np.pad(ty, pad)).astype(np.uint8)
        s = self.scale
        grow = self.cfg.mask_dilation + int(np.ceil(0.5 / s))
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


def _complete_shapes(marks: list[Mark], width: int, height: int, min_match: float = 0.75) -> list[Mark]:
    """A jumping mark has the same shape at every position, but each position shows only the parts
    its background let through (white lettering over a white sky is lost). Each mark gains the
    parts it lacks from the marks that match its shape (correlation of the masks at their best
    offset at least `min_match`, sizes within 30 %): whole pieces, not the slivers a one-pixel
    misalignment leaves, so that a mask found complete does not grow."""
    out = []
    for i, a in enumerate(marks):
        extra = []
        for j, b in enumerate(marks):
            if i == j or not _similar_size(a.box, b.box, 0.7, 1.4):
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


def _weighted(a: _Track, b: _Track, name: str) -> np.ndarray:
    """The template sum of two merged tracks that shared windows, rescaled to their union's count."""
    n = len(set(a.windows) | set(b.windows))
    return (getattr(a, name) / max(a.n, 1) + getattr(b, name) / max(b.n, 1)) / 2 * n


def _near(support: np.ndarray, reach: int) -> np.ndarray:
    """Pixels within `reach` of the support: stillness far from any mark edge is picture, not mark."""
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    return cv2.dilate(support.astype(np.uint8), kernel).astype(bool)


def _add_stillness(track: _Track, box: Box, cand_full: np.ndarray, gray: np.ndarray, pad: int = 6) -> None:
    """Accumulate, around `box`, each pixel's temporal change over the window relative to the
    change of the picture around the mark's edges (median absolute deviations over time)."""
    H, W = cand_full.shape
    y0, y1, x0, x1 = max(0, box.y - pad), min(H, box.y1 + pad), max(0, box.x - pad), min(W, box.x1 + pad)
    local = gray[:, y0:y1, x0:x1]
    mad = np.median(np.abs(local - np.median(local, axis=0)), axis=0)
    edges = cv2.dilate(cand_full[y0:y1, x0:x1].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if (~edges).sum() < 10:
        return
    reference = float(np.median(mad[~edges]))
    if reference < 1.0:
        return  # the picture around does not change enough to tell
    track.still_sum[y0:y1, x0:x1] += np.minimum(mad / reference, 2.0)
    track.still_n[y0:y1, x0:x1] += 1


def _holds_while_around_changes(support: np.ndarray, spread: np.ndarray, max_ratio: float) -> bool:
    """Whether the pixels of a steady component (`support`, `(h, w) bool`, filled to its shape)
    vary over the video by less than `max_ratio` of the picture just around it (`spread`: each
    pixel's standard deviation of grey level): an opaque overlay keeps its colour while the light,
    the camera's noise and what moves around it change the picture's. Scenery that merely holds
    still varies as much as its surroundings."""
    shape = cv2.morphologyEx(support.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    shape = fill_holes(shape)
    ring = _ring(shape)
    if ring.sum() < 10:
        return False
    return float(np.median(spread[shape])) < max_ratio * float(np.median(spread[ring]))


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
        return np.median([cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                          for f, m in zip(fields, back)], axis=0)  # fmt: skip

    follows = np.hypot(median_shifted_back(gx), median_shifted_back(gy)) > share * strength
    # The camera's move was a translation (not a zoom, for which the shifts found mean nothing)
    # when most of what persists in place persists as well shifted back.
    fixed = strength > 10.0
    if not fixed.any() or follows[fixed].mean() < 0.5:
        return none
    return follows, True


def _ring(part: np.ndarray) -> np.ndarray:
    """`(h, w) bool`: the pixels just outside the filled shape of `part` (1 to 5 px away)."""
    closed = cv2.morphologyEx(part.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    shape = fill_holes(closed).astype(np.uint8)
    return (cv2.dilate(shape, np.ones((11, 11), np.uint8)) & ~cv2.dilate(shape, np.ones((3, 3), np.uint8)) & 1) > 0


def _grouping_kernel(h: int, w: int) -> np.ndarray:
    """The dilation that groups the edge pixels of one mark into one component."""
    k = max(3, int(round(min(h, w) / 40)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def _implausible(x: int, y: int, bw: int, bh: int, h: int, w: int, max_area_fraction: float) -> bool:
    """A component too small or too big for a mark, or touching the frame's edge (marks sit inside
    the frame; what touches its edge is border artefact or letterbox)."""
    too_small_or_big = bw < 4 or bh < 3 or bw * bh > max_area_fraction * h * w
    return too_small_or_big or x == 0 or y == 0 or x + bw >= w or y + bh >= h


def _similar_size(a: Box, b: Box, low: float, high: float) -> bool:
    """Whether `b`'s width and height are each between `low` and `high` times `a`'s."""
    return low <= b.w / a.w <= high and low <= b.h / a.h <= high


def _jumping(pops: list[_Pop], ratio: float = 1.4, max_iou: float = 0.3, min_match: float = 0.5) -> list[_Pop]:
    """The pops of one frame that are a mark jumping: it vanishes from one place in the frame it
    appears at another, about as big and with the same edges (gradient correlation at least
    `min_match`). Either everything that popped is one jump (each side may come in pieces), or the
    pops that pair up one to one, so that what else pops in a busy picture does not hide a jump.
    Text that only comes up (a title, a slide's next line) or is replaced in place (a subtitle) is
    not a jump, nor are two unrelated things that happen to change in the same frame."""
    gone = [p for p in pops if not p.appears]
    come = [p for p in pops if p.appears]

    def jump(a: list[_Pop], b: list[_Pop]) -> bool:
        box_a, box_b = union_box([p.box for p in a]), union_box([p.box for p in b])
        return (_similar_size(box_a, box_b, 1 / ratio, ratio) and box_a.iou(box_b) < max_iou
                and _same_edges(a, b) >= min_match)  # fmt: skip

    if not gone or not come:
        return []
    if jump(gone, come):
        return pops
    paired: list[_Pop] = []
    for g in gone:
        for c in come:
            if jump([g], [c]):
                paired += [p for p in (g, c) if all(p is not q for q in paired)]
    return paired


def _same_edges(a: list[_Pop], b: list[_Pop]) -> float:
    """How well two groups of pops' gradient templates match at the best offset (normalised
    correlation of the gradient vectors: about 0 for unrelated pictures, 1 for the same mark)."""

    def field(pops: list[_Pop], pad: int) -> np.ndarray:
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
    ring = _ring(part)
    if ring.sum() < 10:
        return False
    step = np.abs(after[ring] - before[ring])
    return float(np.median(step)) < max_change


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


def _one_direction(gx: np.ndarray, gy: np.ndarray, min_ratio: float) -> bool:
    """True when the gradients all point one way (the structure tensor's smaller eigenvalue is under
    `min_ratio` of the larger): a straight picture edge sliding along itself looks fixed, but it has
    no corners, while lettering and logos have edges in many directions."""
    a, b, c = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    half = 0.5 * (a + b)
    disc = np.sqrt(max(half * half - (a * b - c * c), 0.0))
    return (half - disc) < min_ratio * (half + disc)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box: 1 when one box lies inside the other."""
    inter = a.intersection(b)
    return 0.0 if inter is None else inter.area / float(min(a.area, b.area))


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


def _lead_in(present: set[int], matches: set[int]) -> set[int]:
    """`present` and every run of `matches` that ends on the frame before a present frame (a mark
    there from the start of a slow shot is found by windows well into it)."""
    out = set(present)
    for i in sorted(present):
        j = i - 1
        while j in matches and j not in out:
            out.add(j)
            j -= 1
    return out


def clean_presence(frames: set[int], total: int, max_gap: int = 2, min_run: int = 3) -> np.ndarray:
    """Presence as `(total,) bool` with gaps of up to `max_gap` frames bridged and runs shorter
    than `min_run` frames dropped (a detector flicker is not a mark appearing)."""
    present = np.zeros(total, bool)
    present[[i for i in frames if i < total]] = True
    idx = np.flatnonzero(present)
    for a, b in zip(idx, idx[1:]):
        if 1 < b - a <= max_gap + 1:
            present[a:b] = True
    runs = np.flatnonzero(np.diff(np.concatenate([[0], present.astype(np.int8), [0]])))
    for s, e in zip(runs[::2], runs[1::2]):
        if e - s < min_run:
            present[s:e] = False
    return present
