"""Known marks: the Sora and TikTok presets' mattes (measured on real downloads) composited over
clips made here, placed as the real marks are, found frame by frame; unmarked clips get no box."""

from __future__ import annotations

import numpy as np
import pytest

from bench.real import coverage, mark_left
from detector import create_detector
from detector.auto import DECIDE_FRAMES
from detector.preset import PresetConfig, load_preset
from tests.conftest import PORTRAIT, TIKTOK, TIKTOK_END, sora_over, tiktok_over
from waterz.core.settings import Settings
from waterz.pipeline.run import detect, remove_watermark
from waterz.synth.clips import render_clean, write_video
from waterz.video import iter_frames, probe


@pytest.mark.parametrize("detector", ["sora", "auto"])
def test_the_sora_mark_is_found_in_every_frame_it_is_in_and_nowhere_else(tmp_path, detector):
    path, truth = sora_over(tmp_path, PORTRAIT)
    engine = create_detector(detector)
    marks = engine.detect(iter_frames(path), PORTRAIT.frames, (PORTRAIT.width, PORTRAIT.height))
    for f, (want, got) in enumerate(zip(truth, marks, strict=True)):
        if not want:
            assert got == [], f"frame {f} has no mark but got {[m.box for m in got]}"
            continue
        assert len(got) == 1 and coverage([got[0].box], want[0]) >= 0.99, (f, want, [m.box for m in got])
        assert got[0].box.area < 2.2 * want[0].area  # the mark's box, not a region around it
        assert got[0].mask.shape == (got[0].box.h, got[0].box.w) and got[0].mask.mean() > 0.3
    if detector == "auto":
        assert engine.matched == "sora"


@pytest.mark.parametrize(("opacity", "light"), [(1.0, 1.0), (0.75, 0.35)], ids=["opaque", "faint-at-night"])
def test_a_username_line_under_the_sora_mark_is_taken_in(tmp_path, opacity, light):
    """The Sora preset gives no line geometry: the line's rows are found as the first run of
    rows under the mark whose letters lift the picture around them evenly in all three channels
    while the picture moves, as high as a line of text. Real Sora draws the line about as opaque
    as the mark (75 %): over a dark picture its thin letters stay far from white (a fixed grey
    level missed them)."""
    path, truth = sora_over(tmp_path, PORTRAIT, user="@waterz_qa", user_opacity=opacity, light=light)
    found = create_detector("sora").detect(iter_frames(path), PORTRAIT.frames, (PORTRAIT.width, PORTRAIT.height))
    for f, (want, got) in enumerate(zip(truth, found, strict=True)):
        if want:
            assert len(got) == 1 and coverage([got[0].box], want[0]) >= 0.8, (f, want, [m.box for m in got])


def test_a_username_line_over_white_is_lent_by_the_other_places(tmp_path):
    """Over a white picture a white line lifts nothing and is not seen; it is the same line at
    every place of the video, so the places where it was seen lend it."""
    path, truth = sora_over(tmp_path, PORTRAIT, user="@waterz_qa", white_under_line=(250,))
    found = create_detector("sora").detect(iter_frames(path), PORTRAIT.frames, (PORTRAIT.width, PORTRAIT.height))
    for f, (want, got) in enumerate(zip(truth, found, strict=True)):
        if want:
            assert len(got) == 1 and coverage([got[0].box], want[0]) >= 0.8, (f, want, [m.box for m in got])


@pytest.mark.parametrize("name", ["locked_nomark", "sora_jumps"])
def test_other_marks_and_none_get_no_sora_box_and_auto_answers_as_static(clips, name):
    """Our synthetic mark that spells "Sora" in another font, without the icon, is not Sora's, and
    a clip without a mark has none: the preset finds nothing, and `auto` gives the generic
    detector's answer."""
    clip = clips(name)
    size = (clip.spec.width, clip.spec.height)
    assert not any(create_detector("sora").detect(iter_frames(clip.path), clip.spec.frames, size))
    auto = create_detector("auto")
    found = auto.detect(iter_frames(clip.path), clip.spec.frames, size)
    static = create_detector("static").detect(iter_frames(clip.path), clip.spec.frames, size)
    assert auto.matched is None
    assert [[m.box for m in f] for f in found] == [[m.box for m in f] for f in static]


def test_the_default_detector_says_it_found_the_sora_preset(tmp_path):
    path, truth = sora_over(tmp_path, PORTRAIT)
    found: dict = {}
    marks = detect(probe(path), report=found, settings=Settings())
    assert found == {"preset": "sora"}
    assert sum(1 for m in marks if m) == sum(1 for t in truth if t)


def test_the_animated_sora_mark_is_removed_and_each_segment_says_how_much_is_left(tmp_path):
    """The preset says the mark animates: no fixed matte is inverted (its ghost would stay), the
    picture is filled. At every position what is left is within 5 points of what the clean picture
    itself scores (its own texture's edges count too), and each segment reports its own check."""
    path, truth = sora_over(tmp_path, PORTRAIT)
    clean = tmp_path / "truth.mp4"
    write_video(clean, render_clean(PORTRAIT), PORTRAIT.fps, PORTRAIT.crf, audio=False)
    out = tmp_path / "clean.mp4"
    summary = remove_watermark(path, out, settings=Settings())
    assert summary["preset"] == "sora" and summary["inpainter"] == "auto"
    left, floor = mark_left(path, out, truth), mark_left(path, clean, truth)
    assert len(left) == 3 and all(a <= b + 0.05 for a, b in zip(left, floor, strict=True)), (left, floor)
    for seg in summary["segments"]:
        assert 0 <= seg["residual"] <= 1


def test_the_tiktok_mark_and_its_username_line_are_found_and_the_end_card_is_left_alone(tmp_path):
    """The real TikTok matte with a `@username` line under it, at the left middle and then lower
    right, then TikTok's end card (the same mark 2.5 times as large on a flat frame): every frame
    with the mark gets one box over at least 80 % of mark and line (bench/real.py's rule), none
    of the end card's frames gets one, and `auto` says it found `tiktok`, as soon as it is clear."""
    path, truth = tiktok_over(tmp_path)
    size = (TIKTOK.width, TIKTOK.height)
    auto = create_detector("auto")
    generic, seen = auto.generic.scan, []

    def counted(frames, *args):
        return generic((seen.append(f) or f for f in frames), *args)

    auto.generic.scan = counted
    found = auto.detect(iter_frames(path), TIKTOK.frames, size)
    assert auto.matched == "tiktok"
    assert len(seen) == DECIDE_FRAMES < TIKTOK.frames  # clearly TikTok's: the generic search stopped there
    for f, (want, got) in enumerate(zip(truth, found, strict=True)):
        if not want:
            assert got == [], f"end card frame {f} got {[m.box for m in got]}"
            continue
        assert len(got) == 1 and coverage([got[0].box], want[0]) >= 0.8, (f, want, [m.box for m in got])
        assert got[0].box.area < 2 * want[0].area
    alone = create_detector("tiktok").detect(iter_frames(path), TIKTOK.frames, size)
    assert [[m.box for m in f] for f in alone] == [[m.box for m in f] for f in found]
    assert not any(create_detector("sora").detect(iter_frames(path), TIKTOK.frames, size))


def test_without_the_line_only_the_mark_is_boxed(tmp_path):
    """No text under the mark: nothing under it stays bright while the picture moves, so the box
    is the mark's own (the line is found, not assumed)."""
    path, truth = tiktok_over(tmp_path, user="")
    found = create_detector("tiktok").detect(iter_frames(path), TIKTOK.frames, (TIKTOK.width, TIKTOK.height))
    preset = load_preset("tiktok")
    h = preset.matte_for(TIKTOK.width, TIKTOK.height).shape[0]
    for want, got in zip(truth, found, strict=True):
        if want:
            assert len(got) == 1 and coverage([got[0].box], want[0]) >= 0.95
            assert got[0].box.h < h * (1 + 2 * PresetConfig().margin) + 2, (want, got[0].box)


def test_the_tiktok_mark_is_removed_and_the_end_card_comes_through(tmp_path):
    path, truth = tiktok_over(tmp_path)
    out = tmp_path / "clean.mp4"
    summary = remove_watermark(path, out, settings=Settings())
    assert summary["preset"] == "tiktok"
    left = mark_left(path, out, truth)
    assert len(left) == 2 and max(left) <= 0.1, left
    before, after = list(iter_frames(path)), list(iter_frames(out))
    for f in range(TIKTOK_END, TIKTOK.frames):
        mse = np.mean((before[f].astype(float) - after[f]) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-9)) >= 38, f
