"""Procedural test clips: natural images under camera motion, moving objects, and a watermark with
a known alpha matte (static or jumping, semi-transparent or opaque, white or coloured), plus a tone.

Frames: `(H, W, 3) uint8 BGR`. Mattes: `(H, W) float32` in [0, 1].
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


@dataclass(frozen=True)
class MarkSpec:
    """A watermark: `text` (and a logo ring when `logo`), its colour (BGR), opacity and scale.

    `positions` lists `(start_frame, x, y)`: the mark sits at (x, y) from start_frame on, so a list
    of several entries is a mark that jumps. `x` or `y` of None hides the mark from that frame on.
    """

    text: str = "waterz"
    logo: bool = True
    color: tuple[int, int, int] = (255, 255, 255)
    opacity: float = 0.6
    scale: float = 0.7
    positions: tuple[tuple[int, int | None, int | None], ...] = ((0, 16, 16),)


@dataclass(frozen=True)
class ClipSpec:
    """A clip: `motion` is `pan`, `zoom`, `shake` or `locked` (locked-off camera). With `cut_to`,
    a hard cut at frame `cut_at` to another source image, the same camera motion going on."""

    width: int = 320
    height: int = 240
    frames: int = 48
    fps: Fraction = Fraction(25)
    motion: str = "pan"
    source: str = "astronaut"
    movers: int = 1
    noise: float = 1.5
    mark: MarkSpec | None = field(default_factory=MarkSpec)
    audio: bool = True
    crf: int = 20
    seed: int = 0
    cut_to: str | None = None
    cut_at: int = 0


@dataclass
class SyntheticClip:
    """A generated clip on disk and its ground truth in memory."""

    path: Path
    spec: ClipSpec
    clean: np.ndarray  # (N, H, W, 3) uint8 BGR, before the mark and before encoding
    alpha: np.ndarray  # (N, H, W) float32 matte of the mark in each frame (0 where absent)

    def mark_boxes(self, threshold: float = 0.05) -> list[list[tuple[int, int, int, int]]]:
        """The true box `(x, y, w, h)` of the mark in each frame (empty list where absent)."""
        boxes = []
        for a in self.alpha:
            ys, xs = np.nonzero(a > threshold)
            boxes.append(
                [] if len(xs) == 0 else [(int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1))]
            )
        return boxes


def load_source(name: str) -> np.ndarray:
    """A natural image from scikit-image's sample data, as BGR uint8."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3][..., ::-1])


def render_mark_matte(mark: MarkSpec) -> np.ndarray:
    """The mark's own matte `(h, w) float32` in [0, 1], antialiased, before opacity."""
    font, thick = cv2.FONT_HERSHEY_DUPLEX, max(1, int(round(2 * mark.scale)))
    (tw, th), base = cv2.getTextSize(mark.text, font, mark.scale, thick)
    ring = int(th * 1.4) if mark.logo else 0
    h, w = max(th + base, ring) + 6, tw + ring + (8 if ring else 0) + 6
    canvas = np.zeros((h, w), np.uint8)
    x0 = 3
    if ring:
        c = (3 + ring // 2, h // 2)
        cv2.circle(canvas, c, ring // 2 - 1, 255, max(2, thick), cv2.LINE_AA)
        cv2.circle(canvas, c, max(2, ring // 6), 255, -1, cv2.LINE_AA)
        x0 += ring + 8
    cv2.putText(canvas, mark.text, (x0, h // 2 + th // 2), font, mark.scale, 255, thick, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def _camera(spec: ClipSpec, source: np.ndarray, rng: np.random.Generator):
    """Per-frame affine warps of the (upscaled) source that produce the requested camera motion."""
    H, W = spec.height, spec.width
    scale = max(W * 1.6 / source.shape[1], H * 1.6 / source.shape[0])
    big = cv2.resize(source, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    span_x, span_y = big.shape[1] - W, big.shape[0] - H
    n = max(1, spec.frames - 1)
    mats = []
    for i in range(spec.frames):
        t = i / n
        if spec.motion == "pan":
            tx, ty, s = 0.1 * span_x + 0.8 * span_x * t, 0.3 * span_y + 0.3 * span_y * t, 1.0
        elif spec.motion == "zoom":
            s = 1.0 + 0.35 * t
            tx, ty = span_x / 2 - (s - 1) * W / 2, span_y / 2 - (s - 1) * H / 2
        elif spec.motion == "shake":
            tx = span_x / 2 + 6 * np.sin(i * 0.9) + rng.normal(0, 1.5)
            ty = span_y / 2 + 5 * np.cos(i * 0.7) + rng.normal(0, 1.5)
            s = 1.0
        elif spec.motion == "locked":
            tx, ty, s = span_x / 2, span_y / 2, 1.0
        else:
            raise ValueError(f"unknown motion {spec.motion!r}")
        # output pixel p samples big at (p + t) / s ... expressed as the inverse map big -> frame
        mats.append(np.array([[s, 0, -tx * s], [0, s, -ty * s]], np.float32))
    return big, mats


def _movers(spec: ClipSpec, rng: np.random.Generator):
    sprites = []
    for k in range(spec.movers):
        other = load_source(_SOURCES[(k + 3) % len(_SOURCES)])
        r = int(min(spec.width, spec.height) * rng.uniform(0.12, 0.2))
        y0 = int(rng.integers(0, other.shape[0] - 2 * r))
        x0 = int(rng.integers(0, other.shape[1] - 2 * r))
        patch = other[y0 : y0 + 2 * r, x0 : x0 + 2 * r]
        disk = np.zeros((2 * r, 2 * r), np.float32)
        cv2.circle(disk, (r, r), r - 1, 1.0, -1, cv2.LINE_AA)
        start = rng.uniform([0, 0], [spec.width, spec.height])
        vel = rng.uniform(-1, 1, 2) * min(spec.width, spec.height) / max(spec.frames, 1) * 1.5
        sprites.append((patch, disk, start, vel))
    return sprites


def render_clean(spec: ClipSpec) -> np.ndarray:
    """The clean clip `(N, H, W, 3) uint8 BGR`."""
    rng = np.random.default_rng(spec.seed)
    source = load_source(spec.source)
    big, mats = _camera(spec, source, rng)
    after_cut = _camera(spec, load_source(spec.cut_to), rng)[0] if spec.cut_to else big
    sprites = _movers(spec, rng)
    out = np.empty((spec.frames, spec.height, spec.width, 3), np.uint8)
    for i, m in enumerate(mats):
        scene = after_cut if spec.cut_to and i >= spec.cut_at else big
        frame = cv2.warpAffine(scene, m, (spec.width, spec.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        frame = frame.astype(np.float32)
        for patch, disk, start, vel in sprites:
            cx, cy = (start + vel * i) % [spec.width, spec.height]
            _paste(frame, patch, disk, int(cx) - disk.shape[1] // 2, int(cy) - disk.shape[0] // 2)
        if spec.noise:
            frame += rng.normal(0, spec.noise, frame.shape).astype(np.float32)
        out[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def _paste(frame: np.ndarray, patch: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    H, W = frame.shape[:2]
    h, w = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    region = frame[y0:y1, x0:x1]
    region[:] = region * (1 - a) + patch[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32) * a


def mark_alpha(spec: ClipSpec) -> np.ndarray:
    """The mark's matte in every frame `(N, H, W) float32` (opacity applied)."""
    alpha = np.zeros((spec.frames, spec.height, spec.width), np.float32)
    if spec.mark is None:
        return alpha
    matte = render_mark_matte(spec.mark) * spec.mark.opacity
    h, w = matte.shape
    positions = sorted(spec.mark.positions)
    for k, (start, x, y) in enumerate(positions):
        end = positions[k + 1][0] if k + 1 < len(positions) else spec.frames
        if x is None or y is None:
            continue
        x, y = min(max(0, x), spec.width - w), min(max(0, y), spec.height - h)
        alpha[start:end, y : y + h, x : x + w] = matte
    return alpha


def make_clip(path: str | Path, spec: ClipSpec) -> SyntheticClip:
    """Render, watermark and encode a clip (H.264 at `spec.crf`, AAC tone when `spec.audio`)."""
    path = Path(path)
    clean = render_clean(spec)
    alpha = mark_alpha(spec)
    color = np.array(spec.mark.color if spec.mark else (255, 255, 255), np.float32)
    marked = clean.astype(np.float32) * (1 - alpha[..., None]) + color * alpha[..., None]
    write_video(path, np.clip(marked + 0.5, 0, 255).astype(np.uint8), spec.fps, spec.crf, spec.audio)
    return SyntheticClip(path=path, spec=spec, clean=clean, alpha=alpha)


def write_video(path: Path, frames: np.ndarray, fps: Fraction, crf: int = 20, audio: bool = True,
                audio_from: Path | None = None) -> None:
    """Encode `(N, H, W, 3) uint8 BGR` frames with the bundled ffmpeg (libx264, yuv420p), with an AAC
    tone when `audio`, or the audio of `audio_from` (copied, where it has any)."""
    n, h, w = frames.shape[:3]
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [ffmpeg, "-nostdin", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "-"]  # fmt: skip
        if audio_from is not None:
            cmd += ["-i", str(audio_from), "-map", "0:v", "-map", "1:a?", "-c:a", "copy", "-shortest"]
        elif audio:
            tone = Path(tmp) / "tone.wav"
            _write_tone(tone, n / float(fps))
            cmd += ["-i", str(tone), "-c:a", "aac", "-b:a", "96k"]
        pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        cmd += ["-c:v", "libx264", "-crf", str(crf), "-preset", "veryfast", "-pix_fmt", pix, str(path)]
        subprocess.run(cmd, input=frames.tobytes(), check=True, capture_output=True)


def _write_tone(path: Path, seconds: float, rate: int = 44100, freq: float = 440.0) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
