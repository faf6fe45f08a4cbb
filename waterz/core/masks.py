"""Operations on boolean masks that detectors and the pipeline share."""

from __future__ import annotations

import cv2
import numpy as np


def fill_holes(mask: np.ndarray, max_area: int | None = None) -> np.ndarray:
    """`mask` (bool) with its enclosed holes filled: the regions of background not connected (4-way)
    to the frame's edge, each of at most `max_area` pixels (all of them by default)."""
    # Framed by one pixel of background, everything not enclosed is the component of the corner.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(np.pad(~mask, 1, constant_values=True).astype(np.uint8),
                                                               connectivity=4)  # fmt: skip
    holes = [k for k in range(1, count)
             if k != labels[0, 0] and (max_area is None or stats[k, cv2.CC_STAT_AREA] <= max_area)]  # fmt: skip
    return mask | np.isin(labels[1:-1, 1:-1], holes) if holes else mask


def close_pinholes(mask: np.ndarray, max_share: float = 0.02) -> np.ndarray:
    """`mask` with its small enclosed holes (each at most `max_share` of the mask's area) filled.
    A detector leaves such holes inside a mark's solid parts; an unmasked pixel there still shows
    the mark, and spatial filling and feathering would spread it over the hole's surroundings.
    Larger enclosed regions (the inside of a ring) are real picture and stay."""
    return fill_holes(mask, max(1, int(max_share * mask.sum()))) if mask.any() else mask
