"""The insides of a mark's thick strokes, told by the direction of the edges around them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.strokes import fill_stroke_insides


def _mark(bright: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A thick "O" and a thick bar, 12 px strokes, over a flat picture: the mark's pixels, its
    gradient `tx, ty` and the outline a detector sees (its edges, grown)."""
    mark = np.zeros((90, 160), np.uint8)
    cv2.circle(mark, (45, 45), 28, 1, 12)  # a ring: its counter is picture
    cv2.rectangle(mark, (100, 15), (140, 75), 1, -1)  # a solid block: its inside has no edge
    image = np.where(mark > 0, 200.0 if bright else 30.0, 110.0).astype(np.float32)
    tx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    ty = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    outline = cv2.dilate((np.hypot(tx, ty) > 1).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return mark.astype(bool), tx, ty, outline


@pytest.mark.parametrize("bright", [True, False])
def test_a_stroke_with_gaps_in_its_outline_is_filled_and_a_counter_is_not(bright: bool) -> None:
    mark, tx, ty, outline = _mark(bright)
    broken = outline.copy()
    broken[:45, 118:123] = False  # a gap through the block's outline at its top
    broken[40:50, :80] = False  # and through the ring's, left and right
    filled = fill_stroke_insides(broken, tx, ty)
    block = np.zeros_like(mark)
    block[22:69, 107:134] = True  # the block's inside, away from its edges
    assert not (broken & block).all()  # the outline alone leaves it open
    assert filled[block].mean() > 0.95
    counter = np.zeros_like(mark)
    cv2.circle(counter.view(np.uint8), (45, 45), 16, 1, -1)
    assert filled[counter.astype(bool) & ~outline].mean() < 0.02  # the picture in the "O" stays
    around = ~cv2.dilate(mark.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert filled[around].mean() < 0.02  # and the picture around the mark


def test_edges_that_agree_on_no_direction_fill_nothing() -> None:
    """Where the outline's gradient points both ways (a picture's own edges, not a mark's), no
    pixel is taken for a stroke's inside."""
    mark, tx, ty, outline = _mark()
    flip = np.zeros_like(mark)
    flip[:, ::2] = True  # every other column's gradient reversed
    tx, ty = np.where(flip, -tx, tx), np.where(flip, -ty, ty)
    broken = outline.copy()
    broken[:45, 118:123] = False
    filled = fill_stroke_insides(broken, tx, ty)
    assert (filled & ~broken).sum() == 0


def test_a_mid_grey_mark_lighter_than_the_picture_here_and_darker_there_is_filled_part_by_part() -> None:
    """A grey mark over a picture that is darker under one letter and brighter under another: the
    edges of the two point opposite ways, and each letter's inside is told by its own."""
    mark = np.zeros((90, 200), np.uint8)
    cv2.rectangle(mark, (20, 15), (60, 75), 1, -1)  # over a dark picture: lighter than it
    cv2.rectangle(mark, (130, 15), (170, 75), 1, -1)  # over a bright one: darker
    picture = np.full(mark.shape, 40.0, np.float32)
    picture[:, 100:] = 200.0
    image = np.where(mark > 0, 0.6 * picture + 0.4 * 120, picture).astype(np.float32)
    image[:, 95:105] = 120.0  # the picture's own step between them, away from the letters
    tx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    ty = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    outline = cv2.dilate((np.hypot(tx, ty) > 1).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    outline[:, 90:110] = False  # only the letters' outlines are the mark's
    filled = fill_stroke_insides(outline, tx, ty)
    for x0, x1 in ((27, 54), (137, 164)):
        assert filled[22:69, x0:x1].mean() > 0.95, (x0, x1)
    around = ~cv2.dilate(mark, np.ones((9, 9), np.uint8)).astype(bool)
    assert filled[around].mean() < 0.02
