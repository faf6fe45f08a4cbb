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

`unblend` also fits the mark's blend over the segment (`_BlendModel`) and recovers the picture
under a semi-transparent mark from each frame itself; where the mark is near-opaque, or the fit is
poor, the temporal fill stays.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from waterz.core.matte import UNKNOWN, Matte, MatteBook, marked_pixels, persistent_edges
from waterz.core.stop import checkpoint, phase

_IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float64)


class TemporalInpainter:
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
    invert the mark's blend where it is semi-transparent (see `_BlendModel`); off for `temporal`,
    on for `unblend`. `source_error`: grey levels of error a temporal fill carries even when its
    sources agree (alignment, interpolation); `lone_source_error`: the error assumed for a fill
    from a single source.
    """

    def __init__(self, max_distance: int = 150, near: int = 8, patience: int = 15, candidates: int = 3,
                 max_align_error: float = 6.0, max_pixel_error: float = 8.0, margin: int = 3, spatial_radius: int = 5,
                 unblend: bool = False, source_error: float = 4.0,
                 lone_source_error: float = 10.0) -> None:  # fmt: skip
        self.unblend = unblend
        self.source_error, self.lone_source_error = source_error, lone_source_error
        self.max_distance, self.patience = max_distance, patience
        self.near = near
        self.max_pixel_error = max_pixel_error
        self.candidates = candidates
        self.max_align_error = max_align_error
        self.margin = margin
        self.spatial_radius = spatial_radius

    @property
    def _progress_shares(self) -> tuple[float, float]:
        """Where the sources pass and the blend's fit end, as shares of the progress reported (the
        render takes the rest): about what each took of the 720p job's inpainting in the profile
        of docs/benchmarks.md (63 %, 24 %, 13 %); without the blend the sources are nearly all."""
        return (0.65, 0.88) if self.unblend else (0.95, 0.95)

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int,
                mattes: MatteBook | None = None) -> np.ndarray:  # fmt: skip
        return self.render(frames, masks, first, last, self.analyse(frames, masks, first, last, mattes))

    def analyse(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int,
                mattes: MatteBook | None = None) -> Analysis:  # fmt: skip
        """The temporal sources of every masked frame first..last and, for `unblend`, the blend;
        with `mattes`, the blend is combined with a matte other segments estimated for the same
        mark, and this segment's own goes into the book."""
        fills, spreads = {}, {}
        sources, fit = self._progress_shares
        with phase(0.0, sources):
            if masks[first : last + 1].any():
                motion = _Motion(frames, masks, self.margin)
                targets = [t for t in range(first, last + 1) if masks[t].any()]
                hidden = motion.never_uncovered(masks, self.max_align_error)
                for k, t in enumerate(targets):
                    checkpoint(k, len(targets))
                    if hidden:  # no frame shows any of it: no source to look for
                        fills[t] = np.full((*masks[t].shape, 3), np.nan, np.float16)
                        spreads[t] = np.full(masks[t].shape, np.nan, np.float16)
                        continue
                    fill, spread = self._sources(frames, masks, motion, t)
                    fills[t], spreads[t] = fill.astype(np.float16), spread.astype(np.float16)
                    motion.forget(t)
        with phase(sources, fit):
            unblend = self.unblend and fills and not (mattes is not None and mattes.animated)
            blend = _BlendModel.fit(frames, fills) if unblend else None
            if mattes is not None:
                mattes.unmatched = None  # until `_with_book` finds otherwise
            if unblend and mattes is not None:
                own = blend
                blend = _with_book(own, frames, masks, sorted(fills), mattes)
                exported = own.export() if own is not None else None
                if exported is not None:
                    mattes.add(exported)
        return Analysis(fills, blend, spreads)

    def render(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, analysis: Analysis) -> np.ndarray:
        out = frames[first : last + 1].copy()
        with phase(self._progress_shares[1], 1.0):
            for k, (t, fill) in enumerate(analysis.fills.items()):
                checkpoint(k, len(analysis.fills))
                spread = analysis.spreads[t].astype(np.float32)
                out[t - first] = self._compose(frames[t], masks[t], fill.astype(np.float32), spread, analysis.blend)
        return out

    def _compose(self, frame: np.ndarray, mask: np.ndarray, fill: np.ndarray, spread: np.ndarray,
                 blend: _BlendModel | None) -> np.ndarray:  # fmt: skip
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
        return np.where(mask[..., None], filled, frame)

    def _sources(self, frames: np.ndarray, masks: np.ndarray, motion: _Motion,
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
                if motion.check(t, s, a) > self.max_align_error:
                    continue
                disagreement = motion.disagreement(t, s)
                qx, qy, inside, qxi, qyi = _project(a, xs, ys, mask.shape)
                cost = disagreement[ys, xs]
                take = inside & ~masks[s][qyi, qxi] & (counts[side] < k) & (cost < self.max_pixel_error)
                if take.any():
                    if (take & (counts[side] == 0)).any():
                        last_new = s
                    slot = side * k + counts[side][take]
                    samples[np.flatnonzero(take), slot] = _bilinear(frames[s], qx[take], qy[take])
                    counts[side][take] += 1
        fill = np.full((*mask.shape, 3), np.nan, np.float32)
        spread = np.full(mask.shape, np.nan, np.float32)
        seen = counts.sum(axis=0) > 0
        if seen.any():
            median = np.nanmedian(samples[seen], axis=1)
            fill[ys[seen], xs[seen]] = median
            several = counts.sum(axis=0)[seen] > 1
            # Robust spread of the sources around their median (grey levels, 1.48 MAD ~ sigma).
            mad = 1.48 * np.nanmedian(np.abs(samples[seen] - median[:, None]).mean(axis=-1), axis=1)
            spread[ys[seen][several], xs[seen][several]] = mad[several]
        return fill, spread


@dataclass
class Analysis:
    """What `analyse` found: `fills` per masked frame (NaN where no source saw the spot), the
    mark's blend (None when not fitted or too poor to use), and `spreads`, the spread of each
    fill's sources (NaN where fewer than two)."""

    fills: dict[int, np.ndarray]
    blend: _BlendModel | None
    spreads: dict[int, np.ndarray]

    @property
    def opaque(self) -> bool:
        """Whether the fitted blend says the mark is opaque (nothing under it to recover)."""
        return self.blend is not None and self.blend.opaque


def unblend_inpainter(**kwargs) -> TemporalInpainter:
    """`unblend`: temporal propagation plus the mark's blend inverted where it is semi-transparent."""
    return TemporalInpainter(unblend=True, **kwargs)


class _BlendModel:
    """The mark's blend `I = a * C + (1 - a) * B` over a segment's crop: alpha `a` per pixel, one
    mark colour `C`, picture `B`. Fitted by least squares over the frames where the temporal
    sources gave `B`: first `a` and `a * C` per pixel, whose strongest pixels give the colour `C`;
    then, with `C` fixed, `a` per pixel again, now one unknown for three channels per frame. With
    the blend known, `B = (I - a C) / (1 - a)` recovers the picture from the frame itself, also
    where an object crossed under a semi-transparent mark and no other frame saw it."""

    def __init__(self, alpha: np.ndarray, colour: np.ndarray, confident: np.ndarray, max_alpha: float,
                 opaque: bool = False, alpha_error: np.ndarray | None = None, noise: float = 3.0) -> None:  # fmt: skip
        self.alpha, self.colour, self.confident, self.max_alpha = alpha, colour, confident, max_alpha
        self.opaque = opaque
        self.alpha_error = np.zeros_like(alpha) if alpha_error is None else alpha_error
        self.noise = noise

    @classmethod
    def fit(cls, frames: np.ndarray, fills: dict[int, np.ndarray], min_frames: int = 5, max_alpha: float = 0.85,
            opaque_alpha: float = 0.1, smooth_error: float = 0.03) -> _BlendModel | None:  # fmt: skip
        if len(fills) < min_frames:
            return None
        pairs = _Pairs(frames, fills)
        guide = _guide(pairs)
        colour = _mark_colour(pairs, min_frames, guide)
        if colour is None:
            return None
        alpha, n, den = _fit_alpha(pairs, colour, None)
        opaque = _opaque(alpha)
        if opaque:
            # Nothing under an opaque mark to recover, and its blurred edges only mislead: the
            # model then only tells the pixels of the mask that the mark does not touch.
            max_alpha = opaque_alpha
        # One reweighting step: frames where a source was wrong at this pixel (an object that
        # moved differently) leave the fit.
        errors = [_blend_error(image, fill, alpha, colour).astype(np.float16) for image, fill in pairs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # pixels no frame gave a source for
            typical = np.nanmedian(np.stack(errors), axis=0)
        keep = [np.nan_to_num(e.astype(np.float32), nan=np.inf) <= np.maximum(2 * typical, 6.0) for e in errors]
        del errors
        alpha, n, den = _fit_alpha(pairs, colour, keep)
        residual = np.zeros(alpha.shape, np.float32)
        for (image, fill), kept in zip(pairs, keep):
            residual += np.where(kept, np.nan_to_num(_blend_error(image, fill, alpha, colour)) ** 2, 0.0)
        safe = np.maximum(n, 1)
        residual = np.sqrt(residual / safe)
        contrast_rms = np.sqrt(den / (3 * safe))
        # Standard error of alpha: the residual over the contrast, shrinking with the frames used.
        alpha_error = residual / np.maximum(contrast_rms, 1.0) / np.sqrt(safe)
        fitted = n >= min_frames
        smooth = _smooth_alpha(alpha, np.where(fitted, 1.0 / np.maximum(alpha_error, 0.02) ** 2, 0.0), guide)
        # Where the pixel's own fit is good (many frames, good sources) it stays; the smoothed
        # alpha, whose own error is about `smooth_error`, takes over as the fit's error grows.
        uncertain = np.where(fitted, alpha_error**2, 1e6)  # a pixel too few frames saw: smoothed only
        share = uncertain / (uncertain + smooth_error**2)
        alpha = (1 - share) * np.nan_to_num(alpha) + share * smooth
        confident = fitted & (alpha > -0.05) & (alpha < max_alpha)
        if not confident.any():
            return None
        return cls(np.clip(alpha, 0.0, max_alpha).astype(np.float32), colour, confident, max_alpha, opaque,
                   alpha_error.astype(np.float32))  # fmt: skip

    def export(self, min_pixels: int = 20) -> Matte | None:
        """The matte over the mark's box for other segments; None for an opaque mark (nothing
        to unblend) or too little of it known."""
        known = self.confident & (self.alpha > 0.05)
        if self.opaque or known.sum() < min_pixels:
            return None
        ys, xs = np.nonzero(known)
        pad = 2
        y0, x0 = max(0, ys.min() - pad), max(0, xs.min() - pad)
        sl = (slice(y0, ys.max() + pad + 1), slice(x0, xs.max() + pad + 1))
        conf = self.confident[sl]
        return Matte(np.where(conf, self.alpha[sl], 0.0).astype(np.float32),
                     np.where(conf, self.alpha_error[sl], UNKNOWN).astype(np.float32), self.colour.copy())  # fmt: skip

    def recover(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The picture under the mark `(h, w, 3) float32` and its expected squared error `(h, w)`
        (inf where unknown): the noise and the error of alpha times the contrast, grown by
        `1 / (1 - a)`."""
        a = self.alpha[..., None]
        picture = np.clip((frame.astype(np.float32) - a * self.colour) / (1 - a), 0, 255)
        picture = _calm_colour(picture)
        contrast = np.abs(self.colour - picture).mean(axis=-1)
        var = (self.noise**2 + (self.alpha_error * contrast) ** 2) / (1 - self.alpha) ** 2
        return picture, np.where(self.confident, var, np.inf).astype(np.float32)


def _with_book(own: _BlendModel | None, frames: np.ndarray, masks: np.ndarray, targets: list[int],
               book: MatteBook) -> _BlendModel | None:  # fmt: skip
    """The segment's blend combined with the book's matte for its mark (placed by the mark's
    edges), each pixel's alpha weighted by the inverse of its squared error; the own blend alone
    when the book has no matching matte or the mark is opaque; the matte alone when it was placed
    over an own colour fitted on too little of the mark. Leaves in `book.unmatched` how much of
    the mark the own fit saw when no matte was placed."""
    if own is not None and own.opaque:
        return own  # nothing to combine with (and no edges to measure for nothing)
    seen = 0 if own is None else marked_pixels(own.alpha, own.confident)
    book.unmatched = seen
    if not book.mattes:
        return own
    mask = masks[targets].any(axis=0)
    placed = book.place(persistent_edges(frames, targets), mask, None if own is None else own.colour, seen)
    if placed is None:
        return own
    book.unmatched = None
    matte, x, y = placed
    if own is not None and not matte.same_colour(own.colour):
        own = None  # placed over an own colour fitted on too little of the mark (see `MatteBook.place`)
    mh, mw = matte.alpha.shape
    alpha_r = np.zeros(mask.shape, np.float32)
    error_r = np.full(mask.shape, UNKNOWN, np.float32)
    alpha_r[y : y + mh, x : x + mw] = matte.alpha
    error_r[y : y + mh, x : x + mw] = matte.error
    max_alpha = 0.85 if own is None else own.max_alpha
    known_r = mask & (error_r < UNKNOWN) & (alpha_r < max_alpha)
    if own is None:
        if not known_r.any():
            return None
        return _BlendModel(np.clip(alpha_r, 0.0, max_alpha), matte.colour.copy(), known_r, max_alpha,
                           alpha_error=error_r)  # fmt: skip
    w_own = np.where(own.confident, 1.0 / np.maximum(own.alpha_error, 1e-3) ** 2, 1.0 / UNKNOWN**2)
    w_r = np.where(known_r, 1.0 / np.maximum(error_r, 1e-3) ** 2, 1.0 / UNKNOWN**2)
    alpha = (own.alpha * w_own + alpha_r * w_r) / (w_own + w_r)
    error = 1.0 / np.sqrt(w_own + w_r)
    return _BlendModel(np.clip(alpha, 0.0, max_alpha).astype(np.float32), own.colour, own.confident | known_r,
                       max_alpha, alpha_error=error.astype(np.float32))  # fmt: skip


def _guide(pairs, most: int = 25) -> np.ndarray:
    """The temporal median of the grey target frames (at most `most`, evenly spread), in [0, 1]:
    the picture averages out under a moving camera and the mark's shape stays."""
    targets = list(pairs.fills)
    pick = np.linspace(0, len(targets) - 1, min(most, len(targets))).round().astype(int)
    grey = np.stack([cv2.cvtColor(pairs.frames[targets[i]], cv2.COLOR_BGR2GRAY) for i in pick])
    return (np.median(grey, axis=0) / 255.0).astype(np.float32)


def _smooth_alpha(alpha: np.ndarray, weight: np.ndarray, guide: np.ndarray, radius: int = 4,
                  eps: float = 1e-4) -> np.ndarray:  # fmt: skip
    """Alpha after a weighted guided filter (He et al.) on `guide`: within each window alpha is
    taken as a linear function of the guide, fitted with each pixel weighted by `weight` (the
    inverse of its squared error). A mark's matte follows its own shape, which the guide shows;
    the per-pixel fit's errors (a wrong source here and there) do not."""
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x.astype(np.float32), -1, size)

    w = weight.astype(np.float32)
    a = np.nan_to_num(alpha).astype(np.float32)
    total = np.maximum(mean(w), 1e-12)
    m_i, m_a = mean(w * guide) / total, mean(w * a) / total
    cov = mean(w * guide * a) / total - m_i * m_a
    var = mean(w * guide * guide) / total - m_i * m_i
    slope = cov / (np.maximum(var, 0.0) + eps)
    offset = m_a - slope * m_i
    has = mean(w > 0) > 0
    return np.where(has, mean(slope) * guide + mean(offset), a).astype(np.float32)


def _calm_colour(picture: np.ndarray) -> np.ndarray:
    """The unblended picture with its colour (not its brightness) median-filtered over 5x5: H.264
    keeps colour at half resolution, so inverting the blend per channel leaves coloured speckles
    along the mark's edges."""
    ycc = cv2.cvtColor(picture.astype(np.float32), cv2.COLOR_BGR2YCrCb)
    for c in (1, 2):
        ycc[..., c] = cv2.medianBlur(np.ascontiguousarray(ycc[..., c]), 5)
    return np.clip(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR), 0, 255)


class _Pairs:
    """`(image, fill)` as float32 for each target frame, made on the fly: a segment's worth of
    float copies would not fit the memory budget."""

    def __init__(self, frames: np.ndarray, fills: dict[int, np.ndarray]) -> None:
        self.frames, self.fills = frames, fills
        self.shape = frames.shape[1:3]

    def __iter__(self):
        for t, fill in self.fills.items():
            yield self.frames[t].astype(np.float32), fill.astype(np.float32)


def _fit_alpha(pairs, colour: np.ndarray, keep: list[np.ndarray] | None):
    """Per-pixel alpha with the colour known: `I - B = a (C - B)` over the (kept) frames.
    Returns alpha, the number of frames used and the summed squared contrast `|C - B|^2`."""
    h, w = pairs.shape
    n, num, den = (np.zeros((h, w), np.float32) for _ in range(3))
    for k, (image, fill) in enumerate(pairs):
        ok = ~np.isnan(fill[..., 0])
        if keep is not None:
            ok &= keep[k]
        contrast = np.where(ok[..., None], colour - fill, 0.0)
        n += ok
        num += (contrast * np.where(ok[..., None], image - fill, 0.0)).sum(axis=-1)
        den += (contrast * contrast).sum(axis=-1)
    return num / np.maximum(den, 1e-6), n, den


def _blend_error(image: np.ndarray, fill: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """RMS over channels of `I - (a C + (1 - a) B)` per pixel; NaN where `B` is unknown."""
    pred = alpha[..., None] * colour + (1 - alpha[..., None]) * fill
    return np.sqrt(((image - pred) ** 2).mean(axis=-1))


def _mark_colour(pairs, min_frames: int, guide: np.ndarray, min_alpha: float = 0.15,
                 min_fit: float = 0.6) -> np.ndarray | None:  # fmt: skip
    """The mark's colour `(3,)`: from a per-pixel fit of `I - B = a C - a B` (unknowns `a C`, `a`),
    the median of `C` over the pixels where the mark is clearly there (`a` above `min_alpha`) and
    the fit explains most of the change (`min_fit` of its variance): where a source was wrong, the
    fill error looks like a mark but does not follow the blend. Candidate colours are judged with
    their alpha smoothed along `guide` (see `_guide`)."""
    h, w = pairs.shape
    n = np.zeros((h, w), np.float32)
    sum_b, sum_d = np.zeros((h, w, 3), np.float32), np.zeros((h, w, 3), np.float32)
    sum_bb, sum_bd, sum_dd = (np.zeros((h, w), np.float32) for _ in range(3))
    for image, fill in pairs:
        ok = ~np.isnan(fill[..., 0])
        b = np.where(ok[..., None], fill, 0.0)
        d = np.where(ok[..., None], image - b, 0.0)
        n += ok
        sum_b += b
        sum_d += d
        sum_bb += (b * b).sum(axis=-1)
        sum_bd += (b * d).sum(axis=-1)
        sum_dd += (d * d).sum(axis=-1)
    safe = np.maximum(n, 1)
    mean_b, mean_d = sum_b / safe[..., None], sum_d / safe[..., None]
    var_b = sum_bb - safe * (mean_b * mean_b).sum(axis=-1)
    var_d = sum_dd - safe * (mean_d * mean_d).sum(axis=-1)
    cov = sum_bd - safe * (mean_b * mean_d).sum(axis=-1)
    alpha = np.where(var_b > 0, -cov / np.maximum(var_b, 1e-6), 0.0)
    explained = cov * cov / np.maximum(var_b * var_d, 1e-6)
    strong = (n >= min_frames) & (alpha > min_alpha) & (alpha < 1.0) & (var_b > 64 * 3 * safe)
    strong &= explained >= min_fit
    if strong.sum() < 10:
        return _achromatic_colour(pairs)
    samples = np.clip((mean_d + alpha[..., None] * mean_b)[strong] / alpha[strong][:, None], 0, 255)
    # The median of the samples, and a few other plausible colours: whichever explains the frames
    # best (a truncated squared blend error, so a wrong source cannot dominate) is the colour.
    candidates = [np.median(samples, axis=0), *np.percentile(samples, (25, 75), axis=0),
                  np.full(3, 255.0), np.zeros(3)]  # fmt: skip
    scores = [_blend_fit_cost(pairs, c.astype(np.float32), guide) for c in candidates]
    return _snap_achromatic(candidates[int(np.argmin(scores))].astype(np.float32))


def _achromatic_colour(pairs, min_share: float = 0.5, marked: float = 10.0) -> np.ndarray | None:
    """White or black, for a picture too still under the mark to fit its colour (a locked-off
    shot): with the picture known, each colour leaves one unknown (alpha) for three channels per
    pixel, so the wrong one, or a coloured mark, leaves the change unexplained. Counted over the
    pixels the mark visibly changed (by `marked` grey levels), robustly: a source that was wrong
    somewhere (an object in the frame but not in the sources) is explained by neither. None unless
    one of the two explains at least `min_share` of them (to half their change or better)."""
    explained = {255.0: 0, 0.0: 0}
    total = 0
    alphas = {c: np.clip(_fit_alpha(pairs, np.full(3, c, np.float32), None)[0], 0.0, 0.85) for c in explained}
    for image, fill in pairs:
        change = np.sqrt(((image - fill) ** 2).mean(axis=-1))
        visible = np.nan_to_num(change, nan=0.0) > marked
        total += int(visible.sum())
        for c in explained:
            err = _blend_error(image, fill, alphas[c], np.full(3, c, np.float32))
            explained[c] += int((visible & (np.nan_to_num(err, nan=np.inf) < 0.5 * change)).sum())
    best = max(explained, key=explained.get)
    return np.full(3, best, np.float32) if total and explained[best] >= min_share * total else None


def _snap_achromatic(colour: np.ndarray, reach: float = 65.0) -> np.ndarray:
    """White or black when the estimate is near it in every channel. Most marks are one of the
    two, and the estimate drifts from it where the temporal sources leak some of the mark."""
    if np.all(colour >= 255 - reach):
        return np.full(3, 255.0, np.float32)
    if np.all(colour <= reach):
        return np.zeros(3, np.float32)
    return colour


def _opaque(alpha: np.ndarray, level: float = 0.9, share: float = 0.1) -> bool:
    """Whether the fitted matte says the mark is opaque: at least `share` of its pixels at
    `level` or above (a semi-transparent mark stays below its opacity everywhere)."""
    marked = alpha[alpha > 0.1]
    return marked.size > 0 and float(np.mean(marked >= level)) >= share


def _blend_fit_cost(pairs, colour: np.ndarray, guide: np.ndarray, cap: float = 20.0, max_alpha: float = 0.85) -> float:
    alpha, n, _ = _fit_alpha(pairs, colour, None)
    alpha = np.clip(_smooth_alpha(alpha, (n > 0).astype(np.float32), guide), 0.0, max_alpha)
    cost = 0.0
    for image, fill in pairs:
        err = _blend_error(image, fill, alpha, colour)
        cost += float(np.minimum(np.nan_to_num(err, nan=0.0), cap).__pow__(2).sum())
    return cost


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
        return all(self._alignment(t, s, _IDENTITY)[0] <= max_error for t, s in pairs)

    def between(self, t: int, s: int) -> np.ndarray | None:
        """`(2, 3)` affine taking a pixel of frame t to frame s, or None when it cannot be tracked."""
        key = (t, s)
        if key not in self.models:
            model = self._composed(t, s)
            # Composed steps drift over long spans: refine directly only when they misalign.
            if model is not None and abs(t - s) > 1 and self.check(t, s, model) > self.refine_above:
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

    def could_show(self, t: int, s: int, ys: np.ndarray, xs: np.ndarray, mask_s: np.ndarray) -> bool:
        """A cheap first look, by the composed motion alone: whether frame s shows any of the
        pixels `(ys, xs)` of frame t uncovered by its own mask `mask_s`."""
        a = self._composed(t, s)
        if a is None:
            return False
        _, _, inside, qxi, qyi = _project(a, xs, ys, mask_s.shape)
        return bool((~mask_s[qyi[inside], qxi[inside]]).any())

    def forget(self, t: int) -> None:
        """Drop what was kept for frame t as a target: it is only needed while filling t."""
        for key in [k for k in self.checks if k[0] == t]:
            del self.checks[key]
        for key in [k for k in self.models if k[0] == t]:
            del self.models[key]

    def check(self, t: int, s: int, a: np.ndarray) -> float:
        """How far frame s, brought onto frame t by `a`, can be trusted as a source for t: the
        median grey-level difference in the ring around the mark (misalignment)."""
        key = (t, s)
        if key not in self.checks:
            self.checks[key] = self._alignment(t, s, a)
        return self.checks[key][0]

    def _alignment(self, t: int, s: int, a: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """`check`'s error for the affine `a`, with the difference map and where it was measured."""
        h, w = self.gray[t].shape
        inverse = cv2.WARP_INVERSE_MAP
        warped = cv2.warpAffine(self.gray[s], a, (w, h), flags=cv2.INTER_LINEAR | inverse)
        valid = cv2.warpAffine(self.keep[s].astype(np.uint8), a, (w, h), flags=cv2.INTER_NEAREST | inverse)
        known = self.keep[t] & valid.astype(bool)
        diff = np.abs(warped.astype(np.float32) - self.gray[t].astype(np.float32)) * known
        ring = self.ring[t] & known
        return (float(np.median(diff[ring])) if ring.sum() >= 20 else float("inf")), diff, known

    def disagreement(self, t: int, s: int) -> np.ndarray:
        """After `check(t, s, a)`: an `(h, w)` map of the mean difference near each pixel, measured
        where both frames are visible and carried into the masks from their border: an object that
        stood next to the mark in one of the two frames makes that source suspect there. Made only
        for the sources `check` lets through."""
        error, diff, known = self.checks[(t, s)]
        if known is not None:
            diff = _carry_in(diff, known, error)
            self.checks[(t, s)] = (error, diff, None)
        return diff


def _project(a: np.ndarray, xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]):
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
