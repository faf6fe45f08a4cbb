"""Inpainting engines on generated crops with ground truth."""

import cv2
import numpy as np
import pytest

from propainter import create_inpainter
from tests.conftest import psnr
from video import iter_frames


def crop_slices(clip):
    masks = np.stack([cv2.dilate((a > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0 for a in clip.alpha])
    ys, xs = np.nonzero(masks.any(axis=0))
    sl = (slice(None), slice(max(0, ys.min() - 24), ys.max() + 24), slice(max(0, xs.min() - 24), xs.max() + 24))
    return sl, masks[sl]


def crop_problem(clip):
    sl, masks = crop_slices(clip)
    return np.stack(list(iter_frames(clip.path)))[sl], masks, clip.clean[sl]


def crop_alpha(clip):
    return clip.alpha[crop_slices(clip)[0]]


@pytest.mark.parametrize("name", ["telea", "temporal", "unblend", "auto"])
def test_pixels_outside_the_mask_are_untouched(clips, name):
    frames, masks, _ = crop_problem(clips("shake_opaque"))
    out = create_inpainter(name).inpaint(frames, masks, 5, 20)
    assert out.shape == frames[5:21].shape and out.dtype == np.uint8
    assert np.array_equal(out[~masks[5:21]], frames[5:21][~masks[5:21]])
    assert not np.array_equal(out[masks[5:21]], frames[5:21][masks[5:21]])


def test_temporal_beats_telea_inside_the_mask_under_camera_motion(clips):
    clip = clips("shake_opaque")
    frames, masks, clean = crop_problem(clip)
    n = len(frames)
    scores = {
        name: psnr(create_inpainter(name).inpaint(frames, masks, 0, n - 1), clean, masks)
        for name in ("telea", "temporal")
    }
    assert scores["temporal"] > scores["telea"] + 1.0, scores


def test_unblending_recovers_what_passed_under_a_semi_transparent_mark(clips):
    clip = clips("pan_jump")
    frames, masks, clean = crop_problem(clip)
    first = slice(0, 24)  # the mark's first position; an object passes under it
    frames, masks, clean = frames[first], masks[first], clean[first]
    n = len(frames)
    plain = create_inpainter("temporal").inpaint(frames, masks, 0, n - 1)
    unblended = create_inpainter("unblend").inpaint(frames, masks, 0, n - 1)
    assert psnr(unblended, clean, masks) > psnr(plain, clean, masks) + 1.0


def test_an_opaque_mark_is_not_unblended(clips):
    """Nothing lies under an opaque mark: the blend model may only keep the mask's untouched pixels."""
    clip = clips("shake_opaque")
    frames, masks, clean = crop_problem(clip)
    n = len(frames)
    plain = create_inpainter("temporal").inpaint(frames, masks, 0, n - 1)
    unblended = create_inpainter("unblend").inpaint(frames, masks, 0, n - 1)
    mark = masks & (crop_alpha(clip) > 0.5)
    assert psnr(unblended, clean, mark) >= psnr(plain, clean, mark) - 0.1
