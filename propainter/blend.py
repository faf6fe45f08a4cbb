"""The mark's blend over a segment's crop (`BlendModel`): fitted from the frames and their temporal
fills, combined with a matte other segments kept (`with_book`), and inverted to recover the
picture under a semi-transparent mark from each frame itself (`unblend`)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from propainter.blend_fit import (
    Pairs,
    blend_error,
    calm_colour,
    edge_energy,
    fit_alpha,
    is_opaque,
    mark_colour,
    one_opacity,
    shape_guide,
    smooth_alpha,
    spread,
)
from waterz.core.matte import UNKNOWN, Matte, MatteBook, gradient, marked_pixels, persistent_edges


class BlendModel:
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
            opaque_alpha: float = 0.1, smooth_error: float = 0.03,
            judged_frames: int = 16) -> BlendModel | None:  # fmt: skip
        if len(fills) < min_frames:
            return None
        pairs = Pairs(frames, fills)
        guide = shape_guide(pairs)
        colour = mark_colour(pairs, min_frames, guide)
        if colour is None:
            return None
        alpha, n, den = fit_alpha(pairs, colour, None)
        opaque = is_opaque(alpha)
        if opaque:
            # Nothing under an opaque mark to recover, and its blurred edges only mislead: the
            # model then only tells the pixels of the mask that the mark does not touch.
            max_alpha = opaque_alpha
        # One reweighting step: frames where a source was wrong at this pixel (an object that
        # moved differently) leave the fit.
        errors = np.empty((len(fills), *pairs.shape), np.float16)
        for k, (image, fill) in enumerate(pairs):
            errors[k] = blend_error(image, fill, alpha, colour)
        typical = _median_over_frames(errors)
        keep = [np.nan_to_num(e.astype(np.float32), nan=np.inf) <= np.maximum(2 * typical, 6.0) for e in errors]
        del errors
        alpha, n, den = fit_alpha(pairs, colour, keep)
        residual = np.zeros(alpha.shape, np.float32)
        for (image, fill), kept in zip(pairs, keep):
            residual += np.where(kept, np.nan_to_num(blend_error(image, fill, alpha, colour)) ** 2, 0.0)
        safe = np.maximum(n, 1)
        residual = np.sqrt(residual / safe)
        contrast_rms = np.sqrt(den / (3 * safe))
        # Standard error of alpha: the residual over the contrast, shrinking with the frames used.
        alpha_error = residual / np.maximum(contrast_rms, 1.0) / np.sqrt(safe)
        fitted = n >= min_frames
        smooth = smooth_alpha(alpha, np.where(fitted, 1.0 / np.maximum(alpha_error, 0.02) ** 2, 0.0), guide)
        # Where the pixel's own fit is good (many frames, good sources) it stays; the smoothed
        # alpha, whose own error is about `smooth_error`, takes over as the fit's error grows.
        uncertain = np.where(fitted, alpha_error**2, 1e6)  # a pixel too few frames saw: smoothed only
        share = uncertain / (uncertain + smooth_error**2)
        alpha = (1 - share) * np.nan_to_num(alpha) + share * smooth
        confident = fitted & (alpha > -0.05) & (alpha < max_alpha)
        if not confident.any():
            return None
        alpha = np.clip(alpha, 0.0, max_alpha).astype(np.float32)
        if not opaque:
            alpha = _flattest(alpha, colour, confident, [frames[t] for t in spread(list(fills), judged_frames)])
        return cls(alpha, colour, confident, max_alpha, opaque, alpha_error.astype(np.float32))

    def arrays(self) -> dict[str, np.ndarray]:
        """The model as named arrays (`from_arrays` makes it again), to keep beside its sources."""
        return {"alpha": self.alpha, "colour": self.colour, "confident": self.confident,
                "max_alpha": np.float64(self.max_alpha), "opaque": np.bool_(self.opaque),
                "alpha_error": self.alpha_error, "noise": np.float64(self.noise)}  # fmt: skip

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BlendModel:
        return cls(arrays["alpha"], arrays["colour"], arrays["confident"], float(arrays["max_alpha"]),
                   bool(arrays["opaque"]), arrays["alpha_error"], float(arrays["noise"]))  # fmt: skip

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
        picture = calm_colour(picture)
        contrast = np.abs(self.colour - picture).mean(axis=-1)
        var = (self.noise**2 + (self.alpha_error * contrast) ** 2) / (1 - self.alpha) ** 2
        return picture, np.where(self.confident, var, np.inf).astype(np.float32)


def _flattest(alpha: np.ndarray, colour: np.ndarray, confident: np.ndarray, frames: list[np.ndarray]) -> np.ndarray:
    """`alpha`, or the same as a mark of one opacity (`one_opacity`) where that leaves weaker edges
    along the mark's outlines in the pictures recovered from `frames` (`edge_energy`): the frames
    themselves judge, so a mark of several opacities keeps its fit."""
    flat = one_opacity(alpha)
    if flat is None:
        return alpha
    fitted, flattened = edge_energy(frames, (alpha, flat), colour, confident, _steps(alpha) | _steps(flat))
    return flat if flattened < fitted else alpha


def _steps(alpha: np.ndarray, share: float = 0.25) -> np.ndarray:
    """Where `alpha` steps (its gradient at least `share` of its steepest), a pixel either side:
    a wrong alpha leaves the mark's outline there. Not inside the mark, where a lower alpha only
    dims the picture's own texture, which would favour it."""
    steep = gradient(alpha)
    return cv2.dilate((steep > share * steep.max()).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def _median_over_frames(values: np.ndarray, rows: int = 16) -> np.ndarray:
    """`np.nanmedian(values, axis=0)` of a `(frames, h, w)` stack, a few rows at a time: numpy
    takes a sorted copy, a mask and wider floats of what it is given, several times the stack's
    own size at once for a large crop (the peak of a 720p run's memory)."""
    out = np.empty(values.shape[1:], values.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels no frame gave a source for
        for y in range(0, values.shape[1], rows):
            out[y : y + rows] = np.nanmedian(values[:, y : y + rows], axis=0)
    return out


def with_book(own: BlendModel | None, frames: np.ndarray, masks: np.ndarray, targets: list[int],
              book: MatteBook) -> tuple[BlendModel | None, int | None]:  # fmt: skip
    """The segment's blend combined with the book's matte for its mark (placed by the mark's
    edges), each pixel's alpha weighted by the inverse of its squared error; the own blend alone
    when the book has no matching matte or the mark is opaque; the matte alone when it was placed
    over an own colour fitted on too little of the mark. Also returns, when no matte was placed,
    how much of the mark the own fit saw (None when one was, or the mark is opaque)."""
    if own is not None and own.opaque:
        return own, None  # nothing to combine with (and no edges to measure for nothing)
    seen = 0 if own is None else marked_pixels(own.alpha, own.confident)
    if not book.mattes:
        return own, seen
    mask = masks[targets].any(axis=0)
    placed = book.place(persistent_edges(frames, targets), mask, None if own is None else own.colour, seen)
    if placed is None:
        return own, seen
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
            return None, None
        return BlendModel(np.clip(alpha_r, 0.0, max_alpha), matte.colour.copy(), known_r, max_alpha,
                          alpha_error=error_r), None  # fmt: skip
    w_own = np.where(own.confident, 1.0 / np.maximum(own.alpha_error, 1e-3) ** 2, 1.0 / UNKNOWN**2)
    w_r = np.where(known_r, 1.0 / np.maximum(error_r, 1e-3) ** 2, 1.0 / UNKNOWN**2)
    alpha = (own.alpha * w_own + alpha_r * w_r) / (w_own + w_r)
    error = 1.0 / np.sqrt(w_own + w_r)
    return BlendModel(np.clip(alpha, 0.0, max_alpha).astype(np.float32), own.colour, own.confident | known_r,
                      max_alpha, alpha_error=error.astype(np.float32)), None  # fmt: skip
