"""The self-check after cleaning (`pipeline.check`): what is left of the mark in a segment's own
output, and the second cleaning it starts."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline import check
from pipeline.geometry import Box
from pipeline.plan import Segment
from pipeline.run import clean_segment
from propainter import create_inpainter
from tests.test_inpaint import crop_problem


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


class _KeepsTheMarkWithAFittedMatte:
    """An engine that fails as a blend inverted with a wrong matte does (the mark's ghost stays),
    and fills (Telea) where no fitted matte may be used."""

    def inpaint(self, frames, masks, first, last, mattes=None):
        if mattes is None or not mattes.animated:
            return frames[first : last + 1].copy()
        return np.stack([cv2.inpaint(f, m.astype(np.uint8), 5, cv2.INPAINT_TELEA)
                         for f, m in zip(frames[first : last + 1], masks[first : last + 1], strict=True)])  # fmt: skip


def _segment(frames) -> Segment:
    n, h, w = frames.shape[:3]
    return Segment(index=0, start_frame=0, end_frame=n - 1, context_start=0, context_end=n - 1, crop=Box(0, 0, w, h))


def test_a_segment_that_kept_its_mark_is_cleaned_again_with_grown_masks(clips):
    frames, masks, _ = crop_problem(clips("pan_jump"))
    frames, masks = frames[:12], masks[:12]
    result = clean_segment(_KeepsTheMarkWithAFittedMatte(), _segment(frames), frames, masks, feather=2)
    assert result.cleaned_again
    assert result.residual is not None and result.residual <= check.LIMIT
    assert result.masks.sum() > masks.sum() and (result.masks | ~masks).all()  # grown, never shrunk
    assert result.check() == {"residual": round(result.residual, 3), "cleaned_again": True}


def test_a_segment_cleaned_well_the_first_time_is_not_cleaned_again(clips):
    frames, masks, _ = crop_problem(clips("pan_jump"))
    frames, masks = frames[:12], masks[:12]
    result = clean_segment(create_inpainter("telea"), _segment(frames), frames, masks, feather=2)
    assert not result.cleaned_again and result.residual <= check.LIMIT
    assert np.array_equal(result.masks, masks)


class _DimsTheMarkWithoutAMatte:
    """An engine whose first cleaning leaves the mark, and whose second (no fitted matte) only
    dims it a little: what a blurrier fill does to a measure whose floor is the picture's texture."""

    def inpaint(self, frames, masks, first, last, mattes=None):
        out = frames[first : last + 1].copy()
        if mattes is not None and mattes.animated:
            out = cv2.convertScaleAbs(out, alpha=0.9, beta=10.0)  # 10 % less contrast
        return out


def test_a_second_cleaning_that_is_not_clearly_better_is_not_kept(clips):
    frames, masks, _ = crop_problem(clips("pan_jump"))
    frames, masks = frames[:12], masks[:12]
    result = clean_segment(_DimsTheMarkWithoutAMatte(), _segment(frames), frames, masks, feather=2)
    assert result.cleaned_again  # it was tried
    assert np.array_equal(result.masks, masks)  # and the first cleaning kept, with its own masks
    assert result.residual == 1.0


def test_the_mark_s_own_edges_are_held_by_its_ghost_not_by_the_picture_or_a_blur(clips):
    """`ghost` is what decides whether a second cleaning is kept: the mark left as it was, or half
    unblended, holds its edges; the clean picture and a blurred copy of it hold almost none, so
    a blurrier fill is not taken for a better one."""
    frames, masks, clean = crop_problem(clips("pan_jump"))
    assert check.ghost(frames, frames, masks) == 1.0
    half = ((frames.astype(np.float32) + clean) / 2).astype(np.uint8)
    assert 0.3 < check.ghost(frames, half, masks) < 0.7
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in clean])
    assert check.ghost(frames, clean, masks) < check.LIMIT and check.ghost(frames, blurred, masks) < check.LIMIT
    assert check.clearly_better(frames, half, clean, masks) and not check.clearly_better(frames, clean, blurred, masks)
