"""Stage 4: a track per mark position, accumulating the gradient template of the windows that saw
it, and the frames it is present on. Every frame is scored against the tracks seen near it (how
much of the template its own gradient holds), which places a jumping mark's appearance and
disappearance to the frame; a run of frames before that whose gradient holds the template leads
up to the mark (there from the start of a shot too slow for the first windows to see it). Parts of
one mark found separately (a logo and its text) become one track once they overlap.

A mark is fixed on the screen: until it jumps, fades or is cut away, what it looks like is found
at its place better than anywhere near it. Something in the picture that held still on screen for
a while (a character's head while the camera follows it) leaves by moving: over the last frames
it is found on, its template matches better a few pixels off its place than at it, and that run
is not a mark's (`moved_away`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

import cv2
import numpy as np

from detector.static.features import QUARTER, Features
from detector.static.parts import overlap, parts
from detector.static.pops import Pop
from waterz.core.geometry import Box


class Pending(NamedTuple):
    """A window's component kept for the join (`Tracks.pend`): its arrays cut to its box."""

    box: Box
    span: tuple[int, int]
    med_x: np.ndarray
    med_y: np.ndarray
    pixels: np.ndarray
    still: Stillness


TAIL = 3  # the last frames of a run of presence that tell whether it moved away (`moved_away`)


@dataclass(eq=False)  # tracks are told apart by identity (their sums are arrays)
class Track:
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
    # The last frames of runs of presence over which its template moved away (`moved_away`).
    moved: set[int] = field(default_factory=set)
    # Where the video is looked at in chunks (`Tracks.owns`): the same sums over the windows this
    # chunk answers for alone, so that the chunks' tracks add up to the whole video's.
    own: Track | None = None

    @property
    def n(self) -> int:
        return len(self.windows)

    def template(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = self.box
        tx = self.sum_x[b.y : b.y1, b.x : b.x1] / self.n
        ty = self.sum_y[b.y : b.y1, b.x : b.x1] / self.n
        # Most windows that saw the mark agree on its pixels; picture edges caught once do not. Of
        # a mark that shows only over part of the picture, most of those that saw its best-seen
        # pixels (`shape_support`): else a frame is scored on the few letters the pan showed most.
        return tx, ty, self._seen_in(0.5, floor=min(2.0, self.n))

    def shape_support(self, min_share: float) -> np.ndarray:
        """The mark's pixels for its mask: seen in at least `min_share` of the windows. Laxer than
        the template's support: parts of a mark that show only over some backgrounds (white on
        white) must still be covered; not much laxer: over a near-still picture, picture edges
        next to the mark persist in a fifth of the windows or more, and whatever the mask covers
        and no frame shows is painted over.

        Where even the mark's best-seen pixels were seen in few of the windows (a mid-grey mark
        shows only where the picture under it is darker or lighter than itself, and a pan moves
        that from letter to letter), the share is of those pixels' count instead, but never
        under two windows: the letters that showed less often are the same mark."""
        return self._seen_in(min_share, floor=1.0)

    def _seen_in(self, share: float, floor: float = 2.0) -> np.ndarray:
        """The box's pixels seen in `share` of the windows, or, where even the best-seen pixels
        were seen in fewer, in `share` of their count (at least two); never in under `floor`."""
        b = self.box
        votes = self.votes[b.y : b.y1, b.x : b.x1]
        best = float(votes.max()) if votes.size else 0.0
        return votes >= max(floor, min(share * self.n, max(2.0, share * best)))

    def near(self, frame: int, reach: int) -> bool:
        return any(s - reach <= frame < e + reach for s, e in self.windows)

    def score(self, feats: Features) -> float:
        """The share of the template that a frame's gradient holds, each of the template's parts
        (see `parts`) taken whichever way it points in the frame."""
        tx, ty, support = self.template()
        if not support.any():
            return 0.0
        b = self.box
        fx, fy = feats.gx4[b.y : b.y1, b.x : b.x1] * QUARTER, feats.gy4[b.y : b.y1, b.x : b.x1] * QUARTER
        labels = parts(support)
        dots = np.bincount(labels[support], (fx * tx + fy * ty)[support])
        return float(np.abs(dots).sum() / ((tx * tx + ty * ty)[support].sum() + 1e-6))

    def presence(self, total: int) -> np.ndarray:
        """`(total,) bool`: the frames the mark is on (`clean_presence` of the present frames and
        the runs of matches that lead up to them), but for the runs that moved away."""
        present = clean_presence(_lead_in(self.present, self.matches), total)
        for start, end in runs(present):
            if end - 1 in self.moved:
                present[start:end] = False
        return present

    def moved_away(self, tail: list[Features], reach: int = 8) -> bool:
        """Whether, on each of a run's last frames (`tail`), the template matches better (normalised
        correlation of the gradients) somewhere 2 to `reach` analysis pixels off its place than at
        it. Under 2 pixels a mark that wiggles, or the codec, moves it too."""
        tx, ty, support = self.template()
        if not tail or not support.any():
            return False
        templ = np.dstack([tx * support, ty * support]).astype(np.float32)
        b = self.box
        for feats in tail:
            image = np.dstack([feats.gx4, feats.gy4]).astype(np.float32)
            image = cv2.copyMakeBorder(image, reach, reach, reach, reach, cv2.BORDER_CONSTANT, value=0)
            match = cv2.matchTemplate(image[b.y : b.y1 + 2 * reach, b.x : b.x1 + 2 * reach], templ,
                                      cv2.TM_CCORR_NORMED)  # fmt: skip
            own = match[reach, reach]
            match[reach - 1 : reach + 2, reach - 1 : reach + 2] = -np.inf
            if match.max() <= own:
                return False
        return True


class Tracks:
    """The tracks of one video, in the order they were started."""

    def __init__(self, owns: tuple[int, int] | None = None) -> None:
        """`owns`: where a chunk of the video is looked at, the frames it answers for; a window
        whose middle frame is among them is its own (`Track.own`). None: the whole video."""
        self.all: list[Track] = []
        self.owns = owns
        self.pending: list[Pending] = []  # (`pend`)
        self.recent: dict[int, Features] = {}  # the last `TAIL` frames scored, by index

    def knows(self, box: Box) -> bool:
        return self.at(box) is not None

    def at(self, box: Box) -> Track | None:
        """The track at `box`'s place (over half of the smaller box in common), if any."""
        return next((t for t in self.all if overlap(t.box, box) > 0.5), None)

    def add(self, box: Box, span: tuple[int, int], med_x, med_y, pixels, gray) -> Track:
        """A window's component (`pixels` over the analysis frame; `gray`, the window's grey
        frames) into the track at its place, or a new one. Returns the track it ended up in."""
        track = self.at(box)
        if track is None:
            track = _empty(box, med_x)
            self.all.append(track)
        still = cache(lambda: stillness(box, pixels, gray))  # made once, where a window is new to a sum
        if self.owned(span):
            track.own = track.own or _empty(box, med_x)
            _accumulate(track.own, box, span, med_x, med_y, pixels, still, track)
        _accumulate(track, box, span, med_x, med_y, pixels, still, track)
        return self._merge_overlapping(track)

    def owned(self, span: tuple[int, int]) -> bool:
        """Whether the window of `span` is this chunk's own (see `owns`); False for the whole video."""
        return self.owns is not None and self.owns[0] <= (span[0] + span[1]) // 2 < self.owns[1]

    def pend(self, box: Box, span: tuple[int, int], med_x, med_y, pixels, gray) -> None:
        """A window's component the chunk could not place: not where it knows a track, and the picture
        around it did not change. A pass over the video takes it where an earlier window put a track
        (maybe in another chunk); kept, its arrays cut to its box, for `join_pending`."""
        cut = (slice(box.y, box.y1), slice(box.x, box.x1))
        self.pending.append(Pending(box, span, med_x[cut].copy(), med_y[cut].copy(), pixels[cut].copy(),
                                    stillness(box, pixels, gray)))  # fmt: skip

    def join_pending(self, pending: list[Pending]) -> None:
        """Chunks' pending components (`pend`), in the order their windows ended, into the tracks
        that a window which ended no later had put at their places (as a pass knows them); the
        others stay out."""
        for p in sorted(pending, key=lambda p: (p.span[1], p.span[0])):
            host = self.at(p.box)
            if host is None or not any(w[1] <= p.span[1] and w != p.span for w in host.windows):
                continue
            cut = (slice(p.box.y, p.box.y1), slice(p.box.x, p.box.x1))
            _accumulate(host, p.box, p.span, p.med_x, p.med_y, p.pixels, lambda p=p: p.still, host, cut)
            self._merge_overlapping(host)

    def absorb(self, track: Track) -> None:
        """A track of another chunk of the video, joined to the one at its place, if any."""
        self.all.append(track)
        self._merge_overlapping(track)

    def add_pop(self, pop: Pop, feats: list[Features], start: int, t: int, run: int) -> None:
        """A pop at frame t of the window of `feats` starting at frame `start`."""
        span = (start + t, start + t + run) if pop.appears else (start + t - run, start + t)
        seen = np.stack([f.gray for f in feats[slice(t, t + run) if pop.appears else slice(t - run, t)]])
        track = self.add(pop.box, span, pop.tx, pop.ty, pop.shape, seen)
        if not pop.appears and feats[t - 1].since is not None:
            # Frames before the windows that saw it go: since when the vanished mark held. An
            # object passing under it disturbs some of its pixels at a time, so a fifth of them
            # holding is enough.
            held_from = int(np.percentile(feats[t - 1].since[pop.edges], 20))
            track.present.update(range(held_from, start + t))

    def score(self, index: int, feats: Features, reach: int, presence: float) -> None:
        """Frame `index` against every track: present where it holds `presence` of the template."""
        for track in self.all:
            # A mark seen on the previous frame is looked for on this one too: over a
            # locked-off shot only its appearance confirms it, not the windows after.
            near = track.near(index, reach) or (index - 1) in track.present
            if track.score(feats) > presence:
                (track.present if near else track.matches).add(index)
            elif index - 1 in track.present:  # a run ended: did it move away?
                tail = [self.recent[i] for i in range(index - TAIL, index) if i in track.present and i in self.recent]
                if track.moved_away(tail):
                    track.moved.add(index - 1)
        self.recent[index] = feats
        self.recent.pop(index - TAIL, None)  # (frames come in order)

    def _merge_overlapping(self, track: Track) -> Track:
        merged = True
        while merged:
            merged = False
            for a in self.all:
                for b in self.all:
                    if a is not b and overlap(a.box, b.box) > 0.5:
                        _merge(a, b)
                        self.all.remove(b)
                        track = a if track is b else track
                        merged = True
                        break
                if merged:
                    break
        return track


def _empty(box: Box, like: np.ndarray) -> Track:
    return Track(box, *(np.zeros_like(like) for _ in range(5)))


def _accumulate(track: Track, box: Box, span, med_x, med_y, pixels, still: Callable[[], Stillness], ref: Track,
                at: tuple[slice, slice] = (slice(None), slice(None))) -> None:  # fmt: skip
    """A window's component into `track`'s sums, its edges turned to point as `ref`'s do; `at`:
    where in the analysis frame the arrays lie (a component cut to its box, `Tracks.pend`)."""
    track.box = track.box.union(box)
    track.votes[at] += pixels
    if span not in track.windows:  # two parts of one mark in one window count once
        med_x, med_y = aligned(med_x, med_y, ref.sum_x[at], ref.sum_y[at], pixels)
        track.sum_x[at] += med_x
        track.sum_y[at] += med_y
        if (found := still()) is not None:
            region, values = found
            track.still_sum[region] += values
            track.still_n[region] += 1
        track.windows.append(span)


def _merge(a: Track, b: Track) -> None:
    a.box = a.box.union(b.box)
    a.votes += b.votes
    if set(a.windows) & set(b.windows):  # parts of one mark seen in the same windows
        a.sum_x, a.sum_y = _weighted(a, b, "sum_x"), _weighted(a, b, "sum_y")
    else:
        b_x, b_y = aligned(b.sum_x, b.sum_y, a.sum_x, a.sum_y, b.votes > 0)
        a.sum_x += b_x
        a.sum_y += b_y
        a.still_sum += b.still_sum
        a.still_n += b.still_n
    a.windows = sorted(set(a.windows) | set(b.windows))
    a.present |= b.present
    a.matches |= b.matches
    a.moved |= b.moved
    if a.own is not None and b.own is not None:
        _merge(a.own, b.own)
    else:
        a.own = a.own or b.own


def aligned(gx: np.ndarray, gy: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray,
            pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """`gx, gy` with each part of `pixels` (see `parts`) turned to point as `ref_x, ref_y` do
    there. A mark neither near-white nor near-black (a mid-grey wordmark) is lighter than a dark
    picture and darker than a bright one: from shot to shot, and from letter to letter over one
    frame, its edges change sign. Added with their signs, the windows' gradients would cancel."""
    labels = parts(pixels)
    if not labels.any():
        return gx, gy
    dots = np.bincount(labels.ravel(), (gx * ref_x + gy * ref_y).ravel())
    flip = dots < 0
    flip[0] = False
    if not flip.any():
        return gx, gy
    sign = np.where(flip[labels], -1.0, 1.0).astype(gx.dtype)
    # the part's neighbourhood turns with it: edges just off its pixels belong to it
    near = cv2.dilate((sign < 0).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    sign = np.where(near, -1.0, 1.0).astype(gx.dtype)
    return gx * sign, gy * sign


def _weighted(a: Track, b: Track, name: str) -> np.ndarray:
    """The template sum of two merged tracks that shared windows, rescaled to their union's count."""
    n = len(set(a.windows) | set(b.windows))
    return (getattr(a, name) / max(a.n, 1) + getattr(b, name) / max(b.n, 1)) / 2 * n


Stillness = tuple[tuple[slice, slice], np.ndarray] | None


def stillness(box: Box, pixels: np.ndarray, gray: np.ndarray, pad: int = 6) -> Stillness:
    """Around `box`, each pixel's temporal change over the window relative to the change of the
    picture around the mark's edges (median absolute deviations over time), and the region it
    covers; None where the picture around does not change enough to tell."""
    H, W = pixels.shape
    y0, y1, x0, x1 = max(0, box.y - pad), min(H, box.y1 + pad), max(0, box.x - pad), min(W, box.x1 + pad)
    local = gray[:, y0:y1, x0:x1]
    mad = np.median(np.abs(local - np.median(local, axis=0)), axis=0)
    edges = cv2.dilate(pixels[y0:y1, x0:x1].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if (~edges).sum() < 10:
        return None
    reference = float(np.median(mad[~edges]))
    if reference < 1.0:
        return None
    return (slice(y0, y1), slice(x0, x1)), np.minimum(mad / reference, 2.0)


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
    for s, e in runs(present):
        if e - s < min_run:
            present[s:e] = False
    return present


def runs(present: np.ndarray) -> list[tuple[int, int]]:
    """`(start, stop)` of each run of True in `present`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], present.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
