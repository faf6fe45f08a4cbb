"""Masks and blending. Pure functions on arrays."""

from __future__ import annotations

import cv2
import numpy as np

from waterz.core.geometry import Box, Mark, paint_marks
from waterz.core.masks import close_pinholes
from waterz.pipeline.plan import Segment


def segment_masks(frame_marks: list[list[Mark]], seg: Segment) -> np.ndarray:
    """Masks `(n, crop.h, crop.w) bool` for the segment's context frames.

    A frame inside the segment whose detection was missed (a bridged flicker) takes the marks of
    the nearest frame of the segment that has them, so the mark is never left in place there.
    Pinholes in a mask are closed (see `close_pinholes`).
    """
    frames = range(seg.context_start, seg.context_end + 1)
    have = [f for f in range(seg.start_frame, seg.end_frame + 1) if frame_marks[f]]
    out = np.zeros((len(frames), seg.crop.h, seg.crop.w), bool)
    painted: dict[tuple[int, ...], np.ndarray] = {}  # frames where the mark stays put share their marks
    for k, f in enumerate(frames):
        marks = frame_marks[f]
        if not marks and have and seg.start_frame <= f <= seg.end_frame:
            marks = frame_marks[min(have, key=lambda g: abs(g - f))]
        key = tuple(id(m) for m in marks)
        if key not in painted:
            painted[key] = close_pinholes(paint_marks(marks, seg.crop))
        out[k] = painted[key]
    return out


def feather_alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """`(h, w) float32` weight of the cleaned pixels: 0 outside the mask, rising to 1 over
    `feather` pixels inside it, so the seam is soft and nothing outside the mask changes."""
    if feather <= 0:
        return mask.astype(np.float32)
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(dist / float(feather + 1), 0.0, 1.0).astype(np.float32) * mask


def blend(original: np.ndarray, cleaned: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`original` and `cleaned` `(h, w, 3) uint8` mixed by `alpha` `(h, w)`."""
    a = alpha[..., None]
    return np.clip(original * (1 - a) + cleaned * a + 0.5, 0, 255).astype(np.uint8)


def chunk_weight(seg: Segment, frame: int) -> float:
    """Cross-fade weight of `seg` at `frame`: ramps up over its `fade_in` frames and down over
    its `fade_out` frames, so two overlapping chunks always sum to 1."""
    w = 1.0
    if seg.fade_in and frame < seg.start_frame + seg.fade_in:
        w = (frame - seg.start_frame + 1) / (seg.fade_in + 1)
    if seg.fade_out and frame > seg.end_frame - seg.fade_out:
        w = min(w, (seg.end_frame - frame + 1) / (seg.fade_out + 1))
    return w


def paste(frame: np.ndarray, crop: Box, pixels: np.ndarray, mask: np.ndarray) -> None:
    """Write the masked `pixels` `(crop.h, crop.w, 3) uint8` into the BGR `frame` at `crop`, in
    place; a `uint16` frame (16-bit BGR) gets them scaled to its 16 bits."""
    region = frame[crop.y : crop.y1, crop.x : crop.x1]
    region[mask] = pixels[mask] if frame.dtype == np.uint8 else pixels[mask].astype(np.uint16) * 257


def i420_planes(buffer: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y `(H, W)`, U and V `(H/2, W/2)` planes of an I420 frame `(H * 3 // 2, W)`
    (uint8, or uint16 for more than 8 bits)."""
    flat = buffer.reshape(-1)
    area = width * height
    y = flat[:area].reshape(height, width)
    u = flat[area : area * 5 // 4].reshape(height // 2, width // 2)
    v = flat[area * 5 // 4 : area * 3 // 2].reshape(height // 2, width // 2)
    return y, u, v


def paste_planar(frame: np.ndarray, width: int, height: int, crop: Box, pixels: np.ndarray, mask: np.ndarray,
                 fmt: str = "yuv420p") -> None:  # fmt: skip
    """Write the masked BGR `pixels` `(crop.h, crop.w, 3) uint8` into the I420 `frame` at `crop`
    (even coordinates), in place: luma where masked, chroma where any pixel of its 2x2 block is
    masked. `fmt`: the frame's format, `yuv420p` or `yuv420p10le` (the pixels are converted to
    it: 8 bits widened to 10)."""
    import av

    yuv = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="bgr24").reformat(format=fmt)
    cy, cu, cv = i420_planes(yuv.to_ndarray(), crop.w, crop.h)
    fy, fu, fv = i420_planes(frame, width, height)
    fy[crop.y : crop.y1, crop.x : crop.x1][mask] = cy[mask]
    half = mask.reshape(crop.h // 2, 2, crop.w // 2, 2).any(axis=(1, 3))
    sl = (slice(crop.y // 2, crop.y1 // 2), slice(crop.x // 2, crop.x1 // 2))
    fu[sl][half] = cu[half]
    fv[sl][half] = cv[half]
