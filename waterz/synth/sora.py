"""The real Sora mark, animated as real Sora downloads show it, for composites over clean footage.

The matte is the one measured on real downloads (`detector/presets/sora.png`, its mean look), at
the size the preset gives for the picture. What real downloads show and this reproduces (issue 21):
the mark stays about 2.2 s at each of three places of the picture (top-left, middle-right,
bottom-left), the icon wiggles by a pixel or two and changes shape frame to frame (here: a shift
and a vertical squash drawn at random), and around each jump the word fades out over 2 frames,
the icon stays alone for 2, one frame has no mark, and the word fades in over 3 at the new place.
With `username`, the line of newer videos is drawn under the mark: the creator's handle in a
plain font (not Sora's), centred under the icon and the word, about a third of the mark's height,
as opaque as the word and fading with it; the places then hold the mark and its line together.
What it does not reproduce: the real icon's exact shapes (its eyes open and close), the real
line's font, and the compression of the real mark with the picture.
"""

from __future__ import annotations

import cv2
import numpy as np

from detector.preset import load_preset

STAY_S = 2.2  # seconds at one place
FADE_OUT, ICON_ALONE, BLANK, FADE_IN = 2, 2, 1, 3  # frames around each jump


def sora_alpha(width: int, height: int, frames: int, fps: float, seed: int = 0,
               username: str | None = None) -> np.ndarray:  # fmt: skip
    """The mark's alpha `(frames, height, width) float32` in every frame (0 where absent); with
    `username`, the `@username` line under it."""
    preset = load_preset("sora")
    rng = np.random.default_rng(seed)
    scale, matte = preset.scale_for(width, height), preset.matte_for(width, height)
    split = round(preset.first_part.shape[1] * scale)
    icon, word = matte[:, :split], matte[:, split:]
    h, w = matte.shape
    line = None if username is None else _line(username, h, float(matte.max()))
    lw, lh = (0, 0) if line is None else (line.shape[1], line.shape[0])
    gap = round(0.12 * h) if line is not None else 0
    full_w, full_h = max(w, lw), h + gap + lh
    margin = round(0.03 * min(width, height))
    places = ((margin, margin), (width - full_w - margin, (height - full_h) // 2),
              (margin, height - full_h - margin))  # fmt: skip
    stay = max(FADE_OUT + ICON_ALONE + BLANK + FADE_IN + 2, round(STAY_S * fps))
    wiggle = max(1, round(scale * 1.5))
    alpha = np.zeros((frames, height, width), np.float32)
    for f in range(frames):
        x, y = places[(f // stay) % len(places)]
        lx, x = x + (full_w - lw) // 2, x + (full_w - w) // 2
        p, left = f % stay, stay - 1 - f % stay  # frames since the stay began, and until it ends
        if left < BLANK:
            continue
        word_share = min(1.0, (p + 1) / FADE_IN) if f >= stay else 1.0
        if left < BLANK + ICON_ALONE:
            word_share = 0.0
        elif left < BLANK + ICON_ALONE + FADE_OUT:
            word_share = min(word_share, (left - BLANK - ICON_ALONE + 1) / (FADE_OUT + 1))
        squash = rng.uniform(0.88, 1.0)
        moved = cv2.resize(icon, (icon.shape[1], max(2, round(icon.shape[0] * squash))), interpolation=cv2.INTER_AREA)
        dx, dy = rng.integers(-wiggle, wiggle + 1, 2)
        iy = y + (h - moved.shape[0]) // 2 + int(dy)
        ix = x + int(dx)
        _put(alpha[f], moved, ix, iy)
        if word_share > 0:
            _put(alpha[f], word * word_share, x + split, y)
            if line is not None:
                _put(alpha[f], line * word_share, lx, y + h + gap)
    return alpha


def _line(text: str, mark_h: int, opacity: float) -> np.ndarray:
    """The matte of a text line about a third of `mark_h` high, at `opacity`."""
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 1.0
    (_, th), _ = cv2.getTextSize(text, font, size, 2)
    size *= max(6, round(0.33 * mark_h)) / th
    thick = max(1, round(size * 1.6))
    (tw, th), base = cv2.getTextSize(text, font, size, thick)
    canvas = np.zeros((th + base + 2 * thick, tw + 2 * thick), np.uint8)
    cv2.putText(canvas, text, (thick, th + thick), font, size, 255, thick, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas)
    canvas = canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return canvas.astype(np.float32) / 255 * opacity


def _put(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """`frame = max(frame, patch)` over the patch's place, clipped to the frame."""
    H, W = frame.shape
    h, w = patch.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 < x1 and y0 < y1:
        region = frame[y0:y1, x0:x1]
        np.maximum(region, patch[y0 - y : y1 - y, x0 - x : x1 - x], out=region)
