"""Segment planning edge cases (pure functions)."""

from fractions import Fraction

from waterz.core.geometry import Box, Mark
from waterz.core.settings import Settings
from waterz.pipeline.plan import PlanConfig, crop_for, plan_segments
from waterz.pipeline.run import plan as plan_video
from waterz.video import VideoInfo

A = Box(20, 20, 100, 30)
B = Box(180, 160, 100, 30)
W, H = 320, 240


def plan(boxes, **kw):
    return plan_segments([[b] if b else [] for b in boxes], W, H, PlanConfig(**kw))


def covered(segments):
    return sorted({f for s in segments for f in range(s.start_frame, s.end_frame + 1)})


def test_no_mark_means_no_segment_and_nothing_dropped():
    assert plan([None] * 50) == []


def test_mark_in_every_frame_is_one_run_split_to_min_segments():
    segs = plan([A] * 100, min_segments=2, min_chunk_frames=20, overlap_frames=4)
    assert len(segs) == 2
    assert covered(segs) == list(range(100))
    first, second = segs
    assert first.end_frame - second.start_frame + 1 == 4  # overlap for the cross-fade
    assert first.fade_out == second.fade_in == 4
    assert min(s.start_frame for s in segs) == 0 and max(s.end_frame for s in segs) == 99


def test_mark_appearing_mid_video_leaves_the_start_untouched():
    segs = plan([None] * 30 + [A] * 40, min_segments=1)
    assert len(segs) == 1
    assert (segs[0].start_frame, segs[0].end_frame) == (30, 69)
    assert segs[0].context_start == 30 - PlanConfig().context_frames


def test_detector_flicker_is_bridged():
    boxes = [A] * 20 + [None] + [A] * 20 + [None, None] + [A] * 20
    segs = plan(boxes, min_segments=1)
    assert len(segs) == 1 and (segs[0].start_frame, segs[0].end_frame) == (0, 62)


def test_three_missing_frames_are_a_real_gap():
    segs = plan([A] * 20 + [None] * 3 + [A] * 20, min_segments=1)
    assert [(s.start_frame, s.end_frame) for s in segs] == [(0, 19), (23, 42)]


def test_jump_starts_a_new_segment_with_its_own_crop():
    segs = plan([A] * 30 + [B] * 30, min_segments=1)
    assert [(s.start_frame, s.end_frame) for s in segs] == [(0, 29), (30, 59)]
    assert segs[0].crop != segs[1].crop
    for seg, box in zip(segs, (A, B)):
        assert seg.crop.intersection(box) == box  # crop holds the mark


def test_min_segments_larger_than_frames_allow():
    segs = plan([A] * 50, min_segments=10, min_chunk_frames=20)
    assert len(segs) == 2  # 50 frames give at most two chunks of >= 20
    assert all(s.end_frame - s.start_frame + 1 - s.fade_out >= 20 for s in segs)
    assert covered(segs) == list(range(50))


def test_short_run_is_never_split_below_min_chunk():
    segs = plan([A] * 30, min_segments=4, min_chunk_frames=20)
    assert len(segs) == 1


def test_max_chunk_frames_bounds_every_segment():
    segs = plan([A] * 1000, min_segments=1, max_chunk_frames=300, overlap_frames=4)
    assert len(segs) == 4
    assert all(s.end_frame - s.start_frame + 1 <= 304 for s in segs)
    assert covered(segs) == list(range(1000))


def test_more_workers_ask_for_more_segments_not_shorter_ones():
    # One position over 132 frames: with MIN_SEGMENTS=auto, one segment per worker, each as long as
    # the run allows (a short segment over a slow picture sees too little of it to fit the mark).
    info = VideoInfo("clip.mp4", W, H, 132, Fraction(24), Fraction(1, 24), 5.5, 0, "yuv420p", (), False)
    marks = [[Mark.rectangle(A)] for _ in range(132)]
    settings = Settings(min_segments="auto", min_chunk_frames=20, max_chunk_frames=300)
    for workers, count in ((1, 1), (2, 2), (4, 4)):
        segs = plan_video(marks, info, settings, online_workers=workers)
        assert len(segs) == count
        assert covered(segs) == list(range(132))
        assert min(s.end_frame - s.start_frame + 1 for s in segs) >= 132 // count


def test_crop_is_padded_aligned_min_size_and_inside_the_frame():
    crop = crop_for(Box(3, 5, 20, 10), W, H, padding=24, min_size=128, align=8)
    assert crop.w >= 128 and crop.h >= 128
    assert crop.x % 8 == 0 and crop.y % 8 == 0 and crop.w % 8 == 0 and crop.h % 8 == 0
    assert crop.x >= 0 and crop.y >= 0 and crop.x1 <= W and crop.y1 <= H
    assert crop.intersection(Box(3, 5, 20, 10)) == Box(3, 5, 20, 10)
    edge = crop_for(Box(300, 220, 20, 20), W, H, padding=24, min_size=128, align=8)
    assert edge.x1 == W and edge.y1 == H and edge.w >= 128


def test_crop_of_a_frame_smaller_than_min_crop_is_the_frame():
    assert crop_for(Box(10, 10, 20, 20), 100, 90, padding=24, min_size=128, align=8) == Box(0, 0, 100, 90)


def test_a_pinhole_in_a_marks_mask_is_closed_but_the_inside_of_a_ring_stays():
    """An unmasked pixel inside a mark's solid part still shows the mark, and spatial filling
    spread it over the whole part (a white disc where the logo's dot was, on real footage)."""
    import cv2
    import numpy as np

    from waterz.core.geometry import Mark
    from waterz.pipeline.composite import segment_masks
    from waterz.pipeline.plan import Segment

    shape = np.zeros((60, 100), np.uint8)
    cv2.circle(shape, (30, 30), 25, 1, 5)  # a ring, its inside is picture
    cv2.circle(shape, (30, 30), 7, 1, -1)  # and a solid dot in it
    shape[30, 30] = 0  # the detector missed one pixel of the dot
    cv2.rectangle(shape, (65, 15), (95, 45), 1, -1)
    shape[20:22, 70:72] = 0  # and four of the solid square
    mark = Mark(Box(10, 10, 100, 60), shape.astype(bool))
    seg = Segment(0, 0, 2, Box(0, 0, 128, 80), 0, 2)
    masks = segment_masks([[mark]] * 3, seg)
    inside = masks[:, 10:70, 10:110]
    assert inside[:, 30, 30].all() and inside[:, 20:22, 70:72].all()  # the holes are closed
    assert not inside[:, 30, 45].any()  # between dot and ring: picture, left alone
    assert (inside[0] & ~shape.astype(bool)).sum() == 5  # nothing else was added
