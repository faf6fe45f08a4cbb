"""The least-squares pieces of fitting a mark's blend `I = a * C + (1 - a) * B` (see
`propainter.blend.BlendModel.fit`): the frames paired with their fills, the mark's colour, alpha
per pixel, its smoothing along the mark's shape, and the fit's error."""

from __future__ import annotations

import cv2
import numpy as np

from waterz.core.matte import gradient
from waterz.core.parallel import cores, in_order


def spread(items: list, most: int) -> list:
    """At most `most` of `items`, evenly spread over them, first and last included."""
    return [items[i] for i in np.linspace(0, len(items) - 1, min(most, len(items))).round().astype(int)]


def shape_guide(pairs, most: int = 25) -> np.ndarray:
    """The temporal median of the grey target frames (at most `most`, evenly spread), in [0, 1]:
    the picture averages out under a moving camera and the mark's shape stays."""
    grey = np.stack([cv2.cvtColor(pairs.frames[t], cv2.COLOR_BGR2GRAY) for t in spread(list(pairs.fills), most)])
    return (np.median(grey, axis=0) / 255.0).astype(np.float32)


def smooth_alpha(alpha: np.ndarray, weight: np.ndarray, guide: np.ndarray, radius: int = 4,
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


def calm_colour(picture: np.ndarray) -> np.ndarray:
    """The unblended picture with its colour (not its brightness) median-filtered over 5x5: H.264
    keeps colour at half resolution, so inverting the blend per channel leaves coloured speckles
    along the mark's edges."""
    ycc = cv2.cvtColor(picture.astype(np.float32), cv2.COLOR_BGR2YCrCb)
    for c in (1, 2):
        ycc[..., c] = cv2.medianBlur(np.ascontiguousarray(ycc[..., c]), 5)
    return np.clip(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR), 0, 255)


class Pairs:
    """`(image, fill)` as float32 for each target frame, made on the fly: a segment's worth of
    float copies would not fit the memory budget."""

    def __init__(self, frames: np.ndarray, fills: dict[int, np.ndarray]) -> None:
        self.frames, self.fills = frames, fills
        self.shape = frames.shape[1:3]

    def __iter__(self):
        for t, fill in self.fills.items():
            yield self.frames[t].astype(np.float32), fill.astype(np.float32)


def fit_alpha(pairs, colour: np.ndarray, keep: list[np.ndarray] | None):
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


def blend_error(image: np.ndarray, fill: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """RMS over channels of `I - (a C + (1 - a) B)` per pixel; NaN where `B` is unknown."""
    pred = alpha[..., None] * colour + (1 - alpha[..., None]) * fill
    return np.sqrt(((image - pred) ** 2).mean(axis=-1))


class Moments:
    """Per-pixel sums over the frames where a fill is known: `n`, `b` (the fills `B`), `d` (the
    change `I - B`), `bb`, `bd` and `dd` (products summed over channels), in float32 as
    `mark_colour` has always summed them for its statistics; and the same in float64 for `alpha`,
    whose denominator takes large sums from each other. Alpha's least squares for any colour
    follows from them without another pass over the frames."""

    def __init__(self, pairs) -> None:
        h, w = pairs.shape
        self.n = np.zeros((h, w), np.float32)
        self.b, self.d = np.zeros((h, w, 3), np.float32), np.zeros((h, w, 3), np.float32)
        self.bb, self.bd, self.dd = (np.zeros((h, w), np.float32) for _ in range(3))
        self._b, self._d = np.zeros((h, w, 3)), np.zeros((h, w, 3))
        self._bb, self._bd = np.zeros((h, w)), np.zeros((h, w))
        for image, fill in pairs:
            ok = ~np.isnan(fill[..., 0])
            b = np.where(ok[..., None], fill, 0.0)
            d = np.where(ok[..., None], image - b, 0.0)
            bb, bd = (b * b).sum(axis=-1), (b * d).sum(axis=-1)
            self.n += ok
            self.b += b
            self.d += d
            self.bb += bb
            self.bd += bd
            self.dd += (d * d).sum(axis=-1)
            self._b += b
            self._d += d
            self._bb += bb
            self._bd += bd

    def alpha(self, colour: np.ndarray) -> np.ndarray:
        """`fit_alpha` with every frame kept, to rounding (its sums are float32, taken in another
        order): `I - B = a (C - B)`, so alpha is `sum (C - B).(I - B) / sum |C - B|^2`, both
        expanded in the sums."""
        c = colour.astype(np.float64)
        num = (self._d * c).sum(axis=-1) - self._bd
        den = self.n * float(c @ c) - 2 * (self._b * c).sum(axis=-1) + self._bb
        return (num / np.maximum(den, 1e-6)).astype(np.float32)


def mark_colour(pairs, min_frames: int, guide: np.ndarray, min_alpha: float = 0.15,
                 min_fit: float = 0.6) -> np.ndarray | None:  # fmt: skip
    """The mark's colour `(3,)`: from a per-pixel fit of `I - B = a C - a B` (unknowns `a C`, `a`),
    the median of `C` over the pixels where the mark is clearly there (`a` above `min_alpha`) and
    the fit explains most of the change (`min_fit` of its variance): where a source was wrong, the
    fill error looks like a mark but does not follow the blend. Candidate colours are judged with
    their alpha smoothed along `guide` (see `guide`)."""
    found = _candidate_colours(pairs, min_frames, guide, min_alpha, min_fit)
    if found is None:
        return achromatic_colour(pairs)
    # The median of the samples, and a few other plausible colours: whichever explains the frames
    # best (a truncated squared blend error, so a wrong source cannot dominate) is the colour.
    # Their sums are gone by now: the judging passes run side by side without them.
    candidates, alphas = found
    judged = in_order(lambda k: blend_fit_cost(pairs, candidates[k], alphas[k]), range(len(candidates)), cores())
    return snap_achromatic(candidates[int(np.argmin(list(judged)))])


def _candidate_colours(pairs, min_frames: int, guide: np.ndarray, min_alpha: float, min_fit: float):
    """`mark_colour`'s candidate colours (float32), each with its alpha smoothed along `guide`
    and clipped; None where too few pixels show the mark clearly."""
    m = Moments(pairs)
    safe = np.maximum(m.n, 1)
    mean_b, mean_d = m.b / safe[..., None], m.d / safe[..., None]
    var_b = m.bb - safe * (mean_b * mean_b).sum(axis=-1)
    var_d = m.dd - safe * (mean_d * mean_d).sum(axis=-1)
    cov = m.bd - safe * (mean_b * mean_d).sum(axis=-1)
    alpha = np.where(var_b > 0, -cov / np.maximum(var_b, 1e-6), 0.0)
    explained = cov * cov / np.maximum(var_b * var_d, 1e-6)
    strong = (m.n >= min_frames) & (alpha > min_alpha) & (alpha < 1.0) & (var_b > 64 * 3 * safe)
    strong &= explained >= min_fit
    if strong.sum() < 10:
        return None
    samples = np.clip((mean_d + alpha[..., None] * mean_b)[strong] / alpha[strong][:, None], 0, 255)
    candidates = [np.median(samples, axis=0), *np.percentile(samples, (25, 75), axis=0),
                  np.full(3, 255.0), np.zeros(3)]  # fmt: skip
    candidates = [c.astype(np.float32) for c in candidates]
    has = (m.n > 0).astype(np.float32)
    return candidates, [np.clip(smooth_alpha(m.alpha(c), has, guide), 0.0, 0.85) for c in candidates]


def achromatic_colour(pairs, min_share: float = 0.5, marked: float = 10.0) -> np.ndarray | None:
    """White or black, for a picture too still under the mark to fit its colour (a locked-off
    shot): with the picture known, each colour leaves one unknown (alpha) for three channels per
    pixel, so the wrong one, or a coloured mark, leaves the change unexplained. Counted over the
    pixels the mark visibly changed (by `marked` grey levels), robustly: a source that was wrong
    somewhere (an object in the frame but not in the sources) is explained by neither. None unless
    one of the two explains at least `min_share` of them (to half their change or better)."""
    explained = {255.0: 0, 0.0: 0}
    total = 0
    alphas = {c: np.clip(fit_alpha(pairs, np.full(3, c, np.float32), None)[0], 0.0, 0.85) for c in explained}
    for image, fill in pairs:
        change = np.sqrt(((image - fill) ** 2).mean(axis=-1))
        visible = np.nan_to_num(change, nan=0.0) > marked
        total += int(visible.sum())
        for c in explained:
            err = blend_error(image, fill, alphas[c], np.full(3, c, np.float32))
            explained[c] += int((visible & (np.nan_to_num(err, nan=np.inf) < 0.5 * change)).sum())
    best = max(explained, key=explained.get)
    return np.full(3, best, np.float32) if total and explained[best] >= min_share * total else None


def snap_achromatic(colour: np.ndarray, reach: float = 65.0) -> np.ndarray:
    """White or black when the estimate is near it in every channel. Most marks are one of the
    two, and the estimate drifts from it where the temporal sources leak some of the mark."""
    if np.all(colour >= 255 - reach):
        return np.full(3, 255.0, np.float32)
    if np.all(colour <= reach):
        return np.zeros(3, np.float32)
    return colour


def is_opaque(alpha: np.ndarray, level: float = 0.9, share: float = 0.1) -> bool:
    """Whether the fitted matte says the mark is opaque: at least `share` of its pixels at
    `level` or above (a semi-transparent mark stays below its opacity everywhere)."""
    marked = alpha[alpha > 0.1]
    return marked.size > 0 and float(np.mean(marked >= level)) >= share


def blend_fit_cost(pairs, colour: np.ndarray, alpha: np.ndarray, cap: float = 20.0) -> float:
    """How badly `colour` with `alpha` explains the frames: the squared blend error summed over
    pixels and frames, each truncated at `cap` grey levels (a wrong source cannot dominate)."""
    cost = 0.0
    for image, fill in pairs:
        err = blend_error(image, fill, alpha, colour)
        cost += float(np.minimum(np.nan_to_num(err, nan=0.0), cap).__pow__(2).sum())
    return cost


def one_opacity(alpha: np.ndarray, strong_share: float = 0.5) -> np.ndarray | None:
    """`alpha` as a mark of one opacity: its strong pixels (above `strong_share` of the 90th
    percentile of the marked ones) give the opacity `a0` (their median) and the fit's scatter
    about it (`s`, from their median absolute deviation); a pixel's alpha is then `a0` where
    the fit put it within `s` of `a0`, 0 within `s` of 0, and its coverage of the mark's edge
    (linear) between. A fit on guessed pictures scatters in patches as wide as the guesses'
    errors, which no local smoothing removes; most marks are one opacity throughout. None where
    the scatter leaves nothing between the two."""
    marked = alpha[alpha > 0.05]
    if marked.size < 10:
        return None
    strong = marked[marked > strong_share * np.percentile(marked, 90)]
    a0 = float(np.median(strong))
    s = 1.4826 * float(np.median(np.abs(strong - a0)))
    if a0 - s <= s:
        return None
    return (a0 * np.clip((alpha - s) / (a0 - 2 * s), 0.0, 1.0)).astype(np.float32)


def edge_energy(frames, alphas, colour: np.ndarray, confident: np.ndarray, band: np.ndarray) -> list[float]:
    """For each of `alphas`, the gradient magnitude summed over `frames` of the pictures the blend
    recovers (the frame itself where the blend is not `confident`) on `band`: an inversion with
    the wrong alpha leaves the mark's edges in every frame, the right one leaves the picture's own."""
    totals = [0.0] * len(alphas)
    for frame in frames:
        image = frame.astype(np.float32)
        for k, alpha in enumerate(alphas):
            a = alpha[..., None]
            picture = np.where(confident[..., None], (image - a * colour) / (1 - a), image)
            totals[k] += float(gradient(cv2.cvtColor(np.clip(picture, 0, 255), cv2.COLOR_BGR2GRAY))[band].sum())
    return totals
