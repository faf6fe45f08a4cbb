"""`waterz remove` end to end: every frame, exact rate, audio, pixels outside the mark kept, and
clear failures. Runs the real console script in a subprocess."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import psnr
from waterz.core.geometry import Box
from waterz.pipeline.composite import chunk_weight, i420_planes, paste_planar
from waterz.pipeline.plan import Segment
from waterz.video import iter_frames, probe

WATERZ = str(Path(sys.executable).with_name("waterz"))


def run_waterz(*args, **kw):
    return subprocess.run([WATERZ, *map(str, args)], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def removed(clips, tmp_path_factory):
    clip = clips("zoom_faint")
    out = tmp_path_factory.mktemp("out") / "clean.mp4"
    result = run_waterz("remove", clip.path, "-o", out, env={"MIN_SEGMENTS": "3", "MIN_CHUNK_FRAMES": "12", "PATH": ""})
    assert result.returncode == 0, result.stderr
    return clip, out, json.loads(result.stdout.strip().splitlines()[-1])


def test_every_frame_rate_and_audio_are_kept(removed):
    clip, out, summary = removed
    info = probe(out)
    assert info.frames == clip.spec.frames == summary["frames_written"]
    assert info.fps == clip.spec.fps  # 30000/1001 exactly
    assert info.has_audio
    assert (info.width, info.height) == (clip.spec.width, clip.spec.height)
    assert len(summary["segments"]) >= 3  # MIN_SEGMENTS from the environment
    assert set(summary["seconds"]) == {"probe", "detect", "plan", "inpaint", "encode"}


def test_pixels_outside_the_mask_are_unchanged_and_the_mark_is_gone(removed):
    clip, out, summary = removed
    before = np.stack(list(iter_frames(clip.path)))
    after = np.stack(list(iter_frames(out)))
    mask = np.zeros(before.shape[:3], bool)
    for seg in summary["segments"]:
        c = seg["crop"]
        mask[seg["start_frame"] : seg["end_frame"] + 1, c["y"] : c["y"] + c["h"], c["x"] : c["x"] + c["w"]] = True
    assert psnr(after, before, ~mask) >= 38.0  # outside every crop: only the final encode differs
    marked = clip.alpha > 0.05
    # inside the mark, the result is closer to the clean picture than the watermarked input was
    assert psnr(after, clip.clean, marked) > psnr(before, clip.clean, marked) + 2.0


def test_bad_input_exits_2_with_one_line(tmp_path, clips):
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    cases = [
        (["remove", tmp_path / "missing.mp4", "-o", tmp_path / "o.mp4"], "does not exist"),
        (["remove", text, "-o", tmp_path / "o.mp4"], "not a video"),
        (["remove", clips("pan_jump").path, "-o", tmp_path / "o.mp4", "--inpainter", "magic"], "Known inpainters"),
        (["remove", clips("pan_jump").path, "-o", tmp_path / "o.mp4", "--detector", "magic"], "Known detectors"),
        (["detect", text], "not a video"),
    ]
    for args, words in cases:
        result = run_waterz(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr


def test_user_boxes_skip_detection(clips, tmp_path):
    clip = clips("pan_jump")
    out = tmp_path / "boxed.mp4"
    result = run_waterz("remove", clip.path, "-o", out, "--box", "14,14,116,44@0-23", "--inpainter", "telea")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["detector"] == "box" and summary["frames_with_mark"] == 24
    assert probe(out).frames == clip.spec.frames


def test_detect_prints_boxes_for_every_frame(clips):
    clip = clips("pan_jump")
    result = run_waterz("detect", clip.path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total_frames"] == len(data["boxes"]) == clip.spec.frames
    assert all(len(frame) >= 1 for frame in data["boxes"])
    assert len(data["segments"]) >= 3  # the mark sits at three positions


def test_cross_fade_weights_of_overlapping_chunks_sum_to_one():
    a = Segment(0, 0, 23, Box(0, 0, 8, 8), 0, 23, fade_out=4)
    b = Segment(1, 20, 40, Box(0, 0, 8, 8), 8, 40, fade_in=4)
    for f in range(20, 24):
        assert 0 < chunk_weight(a, f) < 1
        assert chunk_weight(a, f) + chunk_weight(b, f) == pytest.approx(1.0)


def test_i420_paste_touches_only_masked_pixels():
    rng = np.random.default_rng(1)
    width, height = 64, 48
    frame = rng.integers(0, 255, (height * 3 // 2, width), np.uint8)
    before = frame.copy()
    crop = Box(16, 8, 32, 24)
    mask = np.zeros((crop.h, crop.w), bool)
    mask[5:9, 6:12] = True
    pixels = np.full((crop.h, crop.w, 3), 200, np.uint8)
    paste_planar(frame, width, height, crop, pixels, mask)
    y0, u0, v0 = i420_planes(before, width, height)
    y1, u1, v1 = i420_planes(frame, width, height)
    changed = y1 != y0
    assert changed[crop.y : crop.y1, crop.x : crop.x1][mask].mean() > 0.9
    changed[crop.y : crop.y1, crop.x : crop.x1][mask] = False
    assert not changed.any()  # luma outside the mask is bit-identical
    chroma = (u1 != u0) | (v1 != v0)
    assert chroma.sum() <= (4 // 2 + 1) * (6 // 2 + 1)  # only the 2x2 blocks under the mask


def test_a_still_logo_over_a_talking_head_beats_telea_given_the_exact_mask(tmp_path):
    """Over the first segment of the talking head the picture hardly changes, so its own blend
    fit sees less of the mark than the second segment's and gets its colour wrong (its frames
    came out worse than Telea's); it is done again with the matte the second segment fitted."""
    from tests.conftest import still_logo_over_a_talking_head
    from waterz.pipeline.run import remove_watermark

    clip, telea = still_logo_over_a_talking_head(tmp_path)
    remove_watermark(clip.path, tmp_path / "out.mp4", inpainter="auto")
    out = np.stack(list(iter_frames(tmp_path / "out.mp4")))
    inside = clip.alpha > 0.05
    first = slice(0, 60)
    assert psnr(out, clip.clean, inside) >= psnr(telea, clip.clean, inside)
    assert psnr(out[first], clip.clean[first], inside[first]) >= psnr(telea[first], clip.clean[first], inside[first])


def test_a_folder_is_cleaned_file_by_file_and_a_bad_file_is_named_and_skipped(clips, tmp_path):
    clip = clips("pan_jump")
    folder = tmp_path / "videos"
    (folder / "more").mkdir(parents=True)
    shutil.copy(clip.path, folder / "a.mp4")
    shutil.copy(clip.path, folder / "a.mov")  # the same name but for the extension
    (folder / "notes.txt").write_text("not a video")
    (folder / ".hidden.mp4").write_text("skipped: hidden")
    shutil.copy(clip.path, folder / "more" / "c.mp4")  # in a subfolder: only with --recursive
    out = tmp_path / "clean"
    result = run_waterz("remove", folder, "-o", out, "--box", "14,14,116,44@0-23", "--inpainter", "telea")
    assert result.returncode == 1, result.stderr  # one file failed
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [Path(r["input"]).name for r in lines] == ["a.mov", "a.mp4", "notes.txt"]
    assert "notes.txt" in result.stderr and "error" in lines[2] and "Traceback" not in result.stderr
    assert lines[2]["error"] in result.stderr  # the same sentence as the job's
    for r in lines[:2]:
        assert r["frames_written"] == clip.spec.frames and probe(r["output"]).frames == clip.spec.frames
    assert sorted(p.name for p in out.iterdir()) == ["a.clean.mp4", "a.mp4.clean.mp4"]
    again = run_waterz("remove", folder / "more", folder / "a.mp4", "-o", tmp_path / "two", "--recursive",
                       "--box", "14,14,116,44@0-23", "--inpainter", "telea")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["a.clean.mp4", "c.clean.mp4"]


def test_a_batch_with_bad_usage_stops_before_any_file(clips, tmp_path):
    clip = clips("pan_jump")
    taken = tmp_path / "result.mp4"
    taken.write_text("a file already")
    for args, words in (((clip.path, clip.path, "-o", taken), "is a file"),
                        ((clip.path, clip.path, "-o", tmp_path / "x", "--inpainter", "nope"), "Unknown inpainter"),
                        ((clip.path, clip.path, "-o", tmp_path / "y", "--box", "1,2"), "x,y,w,h")):  # fmt: skip
        result = run_waterz("remove", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_the_settings_given_are_the_ones_the_engines_use(tmp_path, clips, monkeypatch):
    """A `Settings` handed to `remove_watermark` reaches the engines, whatever the environment says:
    the yolo detector looks for the weights it names, ProPainter in its weights folder."""
    from waterz.core.errors import WeightsMissing
    from waterz.core.settings import Settings
    from waterz.pipeline.run import remove_watermark

    monkeypatch.setenv("YOLO_WEIGHTS", str(tmp_path / "from-the-environment.pt"))
    monkeypatch.setenv("WEIGHTS_DIR", str(tmp_path / "environment-weights"))
    source = clips("pan_jump").path
    given = Settings(yolo_weights=tmp_path / "given.pt", weights_dir=tmp_path / "given-weights")
    with pytest.raises(WeightsMissing, match="given.pt"):
        remove_watermark(source, tmp_path / "a.mp4", detector="yolo", inpainter="telea", settings=given)
    with pytest.raises(WeightsMissing, match="given-weights"):
        remove_watermark(source, tmp_path / "b.mp4", inpainter="propainter", settings=given)
