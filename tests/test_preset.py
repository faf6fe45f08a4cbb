"""Known marks: the Sora preset's matte (measured on real Sora downloads) composited over clips
made here, jumping as Sora's mark does, found frame by frame; unmarked clips get no box."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from bench.real import coverage, mark_left
from detector import create_detector
from detector.preset import load_preset
from pipeline.check import LIMIT
from pipeline.geometry import Box
from pipeline.run import detect, remove_watermark
from synth import ClipSpec
from synth.clips import render_clean, write_video
from video import iter_frames, probe
from waterz.settings import Settings

# (first frame, x, y) of each stay, None: no mark (the blank frame around a jump)
STAYS = ((0, 20, 40), (30, None, None), (31, 250, 300), (62, None, None), (63, 20, 560))


def sora_over(tmp_path, spec: ClipSpec, stays=STAYS):
    """`spec`'s clean clip with the real Sora matte at the preset's size for it, wiggling 1 px
    frame to frame as the animated icon does. Returns the path and the true box per frame."""
    preset = load_preset("sora")
    scale = min(spec.width, spec.height) / preset.short_side
    matte = cv2.resize(preset.matte, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = matte.shape
    frames = render_clean(spec).astype(np.float32)
    truth: list[list[Box]] = []
    for f in range(spec.frames):
        _, x, y = max(s for s in stays if s[0] <= f)
        if x is None:
            truth.append([])
            continue
        x, y = x + (f % 3 == 1), y + (f % 4 == 2)  # the wiggle
        alpha = matte[..., None]
        frames[f, y : y + h, x : x + w] = frames[f, y : y + h, x : x + w] * (1 - alpha) + 255 * alpha
        truth.append([Box(x, y, w, h)])
    path = tmp_path / "sora.mp4"
    write_video(path, np.clip(frames + 0.5, 0, 255).astype(np.uint8), spec.fps, spec.crf, audio=False)
    return path, truth


PORTRAIT = ClipSpec(width=352, height=640, frames=90, fps=Fraction(30), motion="pan", mark=None, crf=23)


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
        assert seg["residual"] <= LIMIT or seg["cleaned_again"], seg  # left above the limit: a second cleaning
