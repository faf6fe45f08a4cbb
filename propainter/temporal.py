"""Flow-guided temporal propagation (`temporal`), and the same with the mark's blend inverted
where it is semi-transparent (`unblend`).

Each masked pixel takes the true background from other frames of the segment where that spot was
visible. Motion between neighbouring crops is tracked outside the mark (where the static overlay
would drag it to zero) and extended inside it with a robust affine model: the flow inside the mask
is completed from its border. Models are composed to reach frames further away and refined there.
Each masked pixel then collects candidates from the nearest frames before and after where its spot
is visible and whose alignment around the mark is good; their median (robust to an object that
crossed the spot in one source) is the fill. What no frame ever saw is filled spatially. Only the
crop is processed.

`unblend` also fits the mark's blend over the segment (`BlendModel`) and recovers the picture
under a semi-transparent mark from each frame itself; where the mark is near-opaque, or the fit is
poor, the temporal fill stays. Where other frames show under half of the picture under the mark,
and the picture keeps changing (a handheld camera, cuts), what they did not show is guessed from
around the mark for the fit (`_guessed_fills`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from propainter.base import Cleaned, Inpainter, Sources
from propainter.blend import BlendModel, with_book
from propainter.blend_fit import spread
from propainter.motion import Motion, bilinear, project
from waterz.core.matte import Learned, MatteBook
from waterz.core.parallel import cores, in_order
from waterz.core.stop import checkpoint, phase


class TemporalInpainter(Inpainter):
    """See the module docstring.

    `max_distance`: how many frames away a source may lie (beyond `near` frames, only for pixels
    that have no source yet, and only while some frame within `patience` frames showed one of
    them for the first time: a slow pan uncovers a wide mark a column at a time; until a side
    shows anything, frames that cannot show the spot by the composed motion alone are passed
    over, and up to `patience` others looked at: over a still shot the spot shows only once the
    mark has jumped away, in the context frames); `candidates`:
    how many sources per direction feed the median; `max_align_error`: grey levels of median
    misalignment around the mark above which a source frame is not trusted; `max_pixel_error`:
    the same per pixel, carried into the mask from its border, so that an object which stood on
    the spot in one source (but not in the target) rules that source out there. `unblend`: also
    invert the mark's blend where it is semi-transparent (see `BlendModel`); off for `temporal`,
    on for `unblend`. `source_error`: grey levels of error a temporal fill carries even when its
    sources agree (alignment, interpolation); `lone_source_error`: the error assumed for a fill
    from a single source.
    """

    def __init__(self, max_distance: int = 150, near: int = 8, patience: int = 15, candidates: int = 3,
                 max_align_error: float = 6.0, max_pixel_error: float = 8.0, margin: int = 3, spatial_radius: int = 5,
                 unblend: bool = False, source_error: float = 4.0,
                 lone_source_error: float = 10.0, min_seen: float = 0.5, spatial_frames: int = 48) -> None:  # fmt: skip
        self.unblend = unblend
        self.min_seen, self.spatial_frames = min_seen, spatial_frames
        self.source_error, self.lone_source_error = source_error, lone_source_error
        self.max_distance, self.patience = max_distance, patience
        self.near = near
        self.max_pixel_error = max_pixel_error
        self.candidates = candidates
        self.max_align_error = max_align_error
        self.margin = margin
        self.spatial_radius = spatial_radius
        # what the sources, and the blend fitted on them, depend on besides the frames and masks
        # (`Sources.made_by`)
        self.made_by = (f"temporal {max_distance} {near} {patience} {candidates} {max_align_error} "
                        f"{max_pixel_error} {margin} fit {min_seen} {spatial_frames} {spatial_radius}")  # fmt: skip

    @property
    def _progress_shares(self) -> tuple[float, float]:
        """Where the sources pass and the blend's fit end, as shares of the progress reported (the
        render takes the rest), in proportion to what each takes (docs/benchmarks.md, Speed);
        without the blend the sources are nearly all."""
        return (0.65, 0.88) if self.unblend else (0.95, 0.95)

    def fill(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, mattes: MatteBook | None,
             sources: Sources | None = None) -> Cleaned:  # fmt: skip
        analysis = self.analyse(frames, masks, first, last, mattes, sources)
        return Cleaned(self.render(frames, masks, first, last, analysis), analysis.learned, analysis.sources)

    def analyse(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int,
                mattes: MatteBook | None = None, known: Sources | None = None) -> Analysis:  # fmt: skip
        """The temporal sources of every masked frame first..last (`known`: those an earlier
        cleaning of the same frames found) and, for `unblend`, the blend; with `mattes`, the blend
        is combined with a matte other segments estimated for the same mark, and this segment's
        own is what it learned (`Analysis.learned`)."""
        fills, spreads = {}, {}
        sources, fit = self._progress_shares
        targets = [t for t in range(first, last + 1) if masks[t].any()]
        reused = known is not None and known.made_by == self.made_by and sorted(known.fills) == targets
        if reused:
            fills, spreads = known.fills, known.spreads
        with phase(0.0, sources):
            if targets and not fills:
                motion = Motion(frames, masks, self.margin)
                hidden = motion.never_uncovered(masks, self.max_align_error)

                def look(t: int) -> tuple[np.ndarray, np.ndarray]:
                    if hidden:  # no frame shows any of it: no source to look for
                        nothing = np.full(masks[t].shape, np.nan, np.float16)
                        return np.repeat(nothing[..., None], 3, axis=-1), nothing
                    fill, spread = self._sources(frames, masks, motion, t)
                    motion.forget(t)
                    return fill.astype(np.float16), spread.astype(np.float16)

                for t, (fill, spread) in _each(look, targets):
                    fills[t], spreads[t] = fill, spread
        with phase(sources, fit):
            unblend = self.unblend and fills and not (mattes is not None and mattes.animated)
            blend, own_fit = None, None
            if unblend:
                blend, own_fit = self._own_blend(frames, masks, targets, fills, known if reused else None)
            learned = Learned()
            if unblend and mattes is not None:
                own = blend
                blend, unmatched = with_book(own, frames, masks, sorted(fills), mattes)
                learned = Learned(own.export() if own is not None else None, unmatched)
        return Analysis(Sources(fills, spreads, self.made_by, reused, own_fit), blend, learned)

    def _own_blend(self, frames: np.ndarray, masks: np.ndarray, targets: list[int], fills: dict[int, np.ndarray],
                   known: Sources | None) -> tuple[BlendModel | None, dict[str, np.ndarray]]:  # fmt: skip
        """The blend fitted on the segment's sources alone, and its arrays to keep with them (empty:
        none fitted): taken back from `known` (the same sources, kept by an earlier cleaning) where
        it was kept there, else fitted (`_fit`)."""
        if known is not None and known.fit is not None:
            try:
                return (BlendModel.from_arrays(known.fit) if known.fit else None), known.fit
            except (KeyError, TypeError, ValueError):
                pass  # kept by other code: fitted again (kept things only spare work)
        blend = self._fit(frames, masks, targets, fills)
        return blend, (blend.arrays() if blend is not None else {})

    def _fit(self, frames: np.ndarray, masks: np.ndarray, targets: list[int],
             fills: dict[int, np.ndarray]) -> BlendModel | None:  # fmt: skip
        """The mark's blend fitted on the segment's own frames and their temporal `fills`."""
        # Other frames showed under `min_seen` of the picture under the mark (a handheld camera,
        # cuts): a fit on what they showed would stretch the few pixels it knows over the rest.
        # Where the picture keeps changing, the rest is guessed from around the mark for the fit.
        if _seen_share(fills, masks) < self.min_seen and _changing(frames, masks, targets):
            guessed = BlendModel.fit(frames, self._guessed_fills(frames, masks, fills))
            # An opaque mark hides the picture: nothing to unblend, and guesses cannot tell its
            # soft fringe from the picture finely enough to keep the mask's other pixels; the
            # fit on the sources alone decides then.
            if guessed is not None and not guessed.opaque:
                return guessed
        return BlendModel.fit(frames, fills)

    def _guessed_fills(self, frames: np.ndarray, masks: np.ndarray,
                       fills: dict[int, np.ndarray]) -> dict[int, np.ndarray]:  # fmt: skip
        """The temporal `fills`, with what no other frame showed filled from the picture around
        the mask (Telea), for at most `spatial_frames` targets spread evenly: a guess of the
        picture under the mark, wrong by the picture's own detail at each guessed pixel. Over many
        frames whose pictures differ (a moving camera, cuts), those errors average out in the
        blend's least squares, and its reweighting step drops the frames where one is large."""
        def guess(t: int) -> np.ndarray:
            fill = cv2.inpaint(frames[t], masks[t].astype(np.uint8), self.spatial_radius, cv2.INPAINT_TELEA)
            seen = ~np.isnan(fills[t][..., :1])
            return np.where(seen, fills[t], np.where(masks[t][..., None], fill.astype(np.float16), np.float16(np.nan)))

        chosen = spread(sorted(fills), self.spatial_frames)
        return dict(zip(chosen, in_order(guess, chosen, cores())))

    def render(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, analysis: Analysis) -> np.ndarray:
        out = frames[first : last + 1].copy()

        def compose(t: int) -> np.ndarray:
            fill, spread = analysis.fills[t].astype(np.float32), analysis.spreads[t].astype(np.float32)
            return self._compose(frames[t], masks[t], fill, spread, analysis.blend)

        with phase(self._progress_shares[1], 1.0):
            for t, composed in _each(compose, list(analysis.fills)):
                out[t - first] = composed
        return out

    def _compose(self, frame: np.ndarray, mask: np.ndarray, fill: np.ndarray, spread: np.ndarray,
                 blend: BlendModel | None) -> np.ndarray:  # fmt: skip
        """The final crop for one frame: the temporal fill and the unblended picture, each weighted
        by the inverse of its expected error (the fill's from the spread of its sources, the
        unblended one's from the noise and the blend's uncertainty, both grown by `1 / (1 - a)`),
        Telea for what neither gives."""
        result = frame.astype(np.float32)
        seen = mask & ~np.isnan(fill[..., 0])
        result[seen] = fill[seen]
        known = np.zeros_like(mask)
        if blend is not None:
            recovered, var_r = blend.recover(frame)
            usable = mask & np.isfinite(var_r)
            var_f = np.nan_to_num(spread, nan=self.lone_source_error) ** 2 + self.source_error**2
            weight = np.where(usable, var_f / (var_f + np.where(usable, var_r, 1.0)), 0.0)
            # Where the two disagree far beyond their expected errors the picture under the mark
            # changed differently from its surroundings (an object passed, and the sources, which
            # agree among themselves, show the spot without it): the frame's own unblended
            # content is right, however uncertain, since the disagreement already counts it.
            gap = np.abs(np.nan_to_num(fill) - recovered).mean(axis=-1)
            apart = gap**2 > 9 * (var_f + var_r)
            weight = np.where(apart & usable, 1.0, weight)
            both = seen & usable
            result[both] = (1 - weight[both, None]) * fill[both] + weight[both, None] * recovered[both]
            only = mask & ~seen & usable & (var_r < self.max_pixel_error**2 * 4)
            result[only] = recovered[only]
            known = only
        filled = np.clip(result + 0.5, 0, 255).astype(np.uint8)
        unseen = mask & ~seen & ~known
        if unseen.any():
            filled = cv2.inpaint(filled, unseen.astype(np.uint8), self.spatial_radius, cv2.INPAINT_TELEA)
        return filled  # outside the mask: the frame's own values (the base class makes sure of it)

    def _sources(self, frames: np.ndarray, masks: np.ndarray, motion: Motion,
                 t: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """`(h, w, 3) float32`: the median of the sources found for each masked pixel of frame t,
        NaN where none was found (and outside the mask); and `(h, w)` the spread of those sources
        (NaN where fewer than two)."""
        mask = masks[t]
        ys, xs = np.nonzero(mask)
        n, k = len(frames), self.candidates
        samples = np.full((len(ys), 2 * k, 3), np.nan, np.float32)
        counts = np.zeros((2, len(ys)), np.int32)
        for side, step in enumerate((-1, 1)):
            last_new = t  # the last frame that showed a pixel no frame on this side had shown yet
            looks = 0  # far frames looked at while this side had shown nothing
            for s in range(t + step, t + step * (self.max_distance + 1), step):
                if not 0 <= s < n or counts[side].min() >= k:
                    break
                far = abs(s - t) > self.near
                if far and counts[side].min() >= 1:
                    break  # far sources only for what the near ones could not see
                if far and counts[side].any() and abs(s - last_new) > self.patience:
                    break  # the camera has stopped uncovering the rest
                if far and not counts[side].any():
                    # Nothing seen yet on this side (a still shot: until the mark moves away). Only
                    # frames that could show the spot are looked at, and only `patience` of them.
                    if looks >= self.patience:
                        break
                    if not motion.could_show(t, s, ys, xs, masks[s]):
                        continue
                    looks += 1
                a = motion.between(t, s)
                if a is None:
                    continue
                qx, qy, inside, qxi, qyi = project(a, xs, ys, mask.shape)
                wanted = inside & ~masks[s][qyi, qxi] & (counts[side] < k)
                take = wanted & self._trusted(motion, t, s, a, ys, xs) if wanted.any() else wanted
                motion.release(t, s)
                if take.any():
                    if (take & (counts[side] == 0)).any():
                        last_new = s
                    slot = side * k + counts[side][take]
                    samples[np.flatnonzero(take), slot] = bilinear(frames[s], qx[take], qy[take])
                    counts[side][take] += 1
        fill = np.full((*mask.shape, 3), np.nan, np.float32)
        spread = np.full(mask.shape, np.nan, np.float32)
        seen = counts.sum(axis=0) > 0
        if seen.any():
            median = _median_of_sources(samples[seen])
            fill[ys[seen], xs[seen]] = median
            several = counts.sum(axis=0)[seen] > 1
            # Robust spread of the sources around their median (grey levels, 1.48 MAD ~ sigma).
            mad = 1.48 * _median_of_sources(np.abs(samples[seen] - median[:, None]).mean(axis=-1))
            spread[ys[seen][several], xs[seen][several]] = mad[several]
        return fill, spread

    def _trusted(self, motion: Motion, t: int, s: int, a: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Which pixels `(ys, xs)` of frame t frame s, brought onto it by `a`, may give: none if the
        picture around the mark misaligns, else those no object near them makes suspect."""
        if motion.check(t, s, a) > self.max_align_error:
            return np.zeros(len(ys), bool)
        return motion.disagreement(t, s)[ys, xs] < self.max_pixel_error


def _seen_share(fills: dict[int, np.ndarray], masks: np.ndarray) -> float:
    """The share of the masked pixels, over every target, that some other frame showed."""
    seen = sum(int((~np.isnan(fill[..., 0]) & masks[t]).sum()) for t, fill in fills.items())
    return seen / max(1, sum(int(masks[t].sum()) for t in fills))


def _changing(frames: np.ndarray, masks: np.ndarray, targets: list[int], most: int = 25) -> bool:
    """Whether the picture around the mask changes over the targets at least half as much as it
    varies across that ring (per-pixel spread in time against spread in space of the mean frame).
    Only then do guesses of the picture under the mark made from around it err differently from
    frame to frame; over a still shot they err the same way every time, and no fit averages that out."""
    pick = spread(targets, most)
    mask = masks[pick].any(axis=0).astype(np.uint8)
    ring = (cv2.dilate(mask, np.ones((9, 9), np.uint8)) > 0) & (mask == 0)
    if ring.sum() < 20 or len(pick) < 5:
        return False
    grey = np.stack([cv2.cvtColor(frames[t], cv2.COLOR_BGR2GRAY)[ring] for t in pick]).astype(np.float32)
    in_time = float(np.median(grey.std(axis=0)))
    in_space = float(grey.mean(axis=0).std())
    return in_time >= 0.5 * in_space


def _median_of_sources(values: np.ndarray) -> np.ndarray:
    """`np.nanmedian(values, axis=1)` for rows of a few sources, each with at least one: the same
    values, without the masked arrays numpy takes for short rows (several times slower)."""
    ordered = np.sort(values, axis=1)  # NaN last
    count = (~np.isnan(values)).sum(axis=1, keepdims=True)
    low = np.take_along_axis(ordered, (count - 1) // 2, axis=1)[:, 0]
    high = np.take_along_axis(ordered, count // 2, axis=1)[:, 0]
    return (low + high) / 2


def _each(work, targets: list[int]):
    """`(t, work(t))` for each target in order, worked on by as many threads as the process may
    use, with a checkpoint before the first and after each."""
    checkpoint(0, len(targets))
    for k, (t, result) in enumerate(zip(targets, in_order(work, targets, cores())), 1):
        yield t, result
        checkpoint(k, len(targets))


@dataclass
class Analysis:
    """What `analyse` found: the `sources` of each masked frame (their `fills`, NaN where no
    source saw the spot, and `spreads`, NaN where fewer than two), the mark's blend (None when not
    fitted or too poor to use); `learned`: the segment's own matte and, where it found none in the
    book to use, how much of the mark it saw (see `Learned`)."""

    sources: Sources
    blend: BlendModel | None
    learned: Learned = field(default_factory=Learned)

    @property
    def fills(self) -> dict[int, np.ndarray]:
        return self.sources.fills

    @property
    def spreads(self) -> dict[int, np.ndarray]:
        return self.sources.spreads

    @property
    def opaque(self) -> bool:
        """Whether the fitted blend says the mark is opaque (nothing under it to recover)."""
        return self.blend is not None and self.blend.opaque


def unblend_inpainter(**kwargs) -> TemporalInpainter:
    """`unblend`: temporal propagation plus the mark's blend inverted where it is semi-transparent."""
    return TemporalInpainter(unblend=True, **kwargs)
