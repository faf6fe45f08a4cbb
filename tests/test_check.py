"""The self-check after cleaning (`waterz.pipeline.check`): what is left of the mark in a segment's own
output, reported per segment."""

from __future__ import annotations

import cv2
import numpy as np

from propainter import create_inpainter
from propainter.base import Cleaned, Inpainter
from tests.test_inpaint import crop_problem
from waterz.core.geometry import Box
from waterz.pipeline import check
from waterz.pipeline.plan import Segment
from waterz.pipeline.run import clean_segment


def test_the_input_is_all_mark_left_and_the_clean_picture_none(clips):
    frames, masks, clean = crop_problem(clips("pan_jump"))
    assert check.mark_left(frames, frames, masks) == 1.0
    assert check.mark_left(frames, clean, masks) < 0.05
    assert check.mark_left(frames, np.zeros_like(frames), np.zeros_like(masks)) is None  # no mark: no figure


def test_a_halo_just_past_the_mask_counts_as_left():
    """A mark that reached past its mask (a wiggle) leaves its outline around the mask's edge."""
    picture = np.full((1, 96, 96, 3), 90, np.uint8)
    marked = picture.copy()
    cv2.rectangle(marked[0], (28, 28), (68, 68), (240, 240, 240), -1)
    masks = np.zeros((1, 96, 96), bool)
    masks[0, 31:66, 31:66] = True  # 3 px short of the mark on every side
    inside_only = np.where(masks[..., None], picture, marked)
    assert check.mark_left(marked, inside_only, masks) > 0.3
    assert check.mark_left(marked, picture, masks) < 0.05


class _KeepsTheMark(Inpainter):
    """An engine that fails: it gives back its input."""

    def fill(self, frames, masks, first, last, mattes=None, sources=None):
        return Cleaned(frames[first : last + 1].copy())


def _segment(frames) -> Segment:
    n, h, w = frames.shape[:3]
    return Segment(index=0, start_frame=0, end_frame=n - 1, context_start=0, context_end=n - 1, crop=Box(0, 0, w, h))


def test_each_segment_reports_what_it_left_of_the_mark(clips):
    """A segment's result carries the check's figure, and the masks it was cleaned with."""
    frames, masks, _ = crop_problem(clips("pan_jump"))
    frames, masks = frames[:12], masks[:12]
    failed = clean_segment(_KeepsTheMark(), _segment(frames), frames, masks, feather=2)
    assert failed.residual == 1.0 and failed.check() == {"residual": 1.0}
    cleaned = clean_segment(create_inpainter("telea"), _segment(frames), frames, masks, feather=2)
    assert cleaned.residual is not None and cleaned.residual <= check.LIMIT
    assert np.array_equal(cleaned.masks, masks)
    assert cleaned.check() == {"residual": round(cleaned.residual, 3)}
