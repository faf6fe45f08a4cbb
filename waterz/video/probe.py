"""Read what a video is, exactly, without decoding more than its first frame."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av

from waterz.core.errors import InvalidVideo

log = logging.getLogger(__name__)

# Demuxers that read a single picture; a still image is not a video to clean.
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif")
# Largest frame we accept; beyond it a declared size is absurd or memory would explode.
MAX_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class VideoInfo:
    """What downstream stages need to know about an input video.

    `frames` is the exact number of video frames; `fps` the exact rational rate (30000/1001 stays
    30000/1001); `rotation` the display rotation in degrees counter-clockwise; `vfr` whether the
    frame timestamps are irregular (they are passed through to the output unchanged).
    """

    path: str
    width: int
    height: int
    frames: int
    fps: Fraction
    time_base: Fraction
    duration: float
    rotation: int
    pix_fmt: str
    audio_codecs: tuple[str, ...]
    vfr: bool
    colour: tuple[int, int, int, int] = (2, 2, 2, 0)
    """The video's colour description as FFmpeg's codes: primaries, transfer, matrix, range
    (2, 2, 2, 0: unspecified)."""
    subtitle_codecs: tuple[str, ...] = ()

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codecs)

    @property
    def bit_depth(self) -> int:
        """Bits per sample of the decoded picture: 8 for most videos, 10 or 12 for HDR and
        professional ones."""
        try:
            return max(c.bits for c in av.VideoFormat(self.pix_fmt).components)
        except (ValueError, av.FFmpegError):
            return 8

    def to_dict(self) -> dict:
        """Everything but `path`, as JSON-able values (`from_dict` reads it back)."""
        data = {k: v for k, v in asdict(self).items() if k != "path"}
        return {**data, "fps": str(self.fps), "time_base": str(self.time_base)}

    @classmethod
    def from_dict(cls, data: dict, path: str | Path) -> VideoInfo:
        """What `to_dict` wrote, for the video at `path`: probed once, read by every step."""
        tuples = {k: tuple(data[k]) for k in ("audio_codecs", "colour", "subtitle_codecs")}
        return cls(**{**data, **tuples, "path": str(path), "fps": Fraction(data["fps"]),
                      "time_base": Fraction(data["time_base"])})  # fmt: skip

    def summary(self) -> dict:
        return {
            "frames": self.frames,
            "fps": float(self.fps),
            "fps_exact": f"{self.fps.numerator}/{self.fps.denominator}",
            "width": self.width,
            "height": self.height,
            "duration": round(self.duration, 3),
            "audio": self.has_audio,
            "bit_depth": self.bit_depth,
        }


def probe(path: str | Path, name: str | None = None) -> VideoInfo:
    """Inspect `path`; raise `InvalidVideo` with a readable sentence when it cannot be processed.
    `name` is how messages call the file (default: its own name)."""
    path = Path(path)
    name = name or path.name
    if not path.exists():
        raise InvalidVideo(f"Input file '{path}' does not exist.")
    if not path.is_file():
        raise InvalidVideo(f"Input '{path}' is not a file.")
    if path.stat().st_size == 0:
        raise InvalidVideo(f"'{name}' is empty (0 bytes).")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise InvalidVideo(f"'{name}' is not a video file that can be decoded ({_reason(exc)}).") from exc
    with container:
        return _probe_open(container, path, name)


def _probe_open(container: av.container.InputContainer, path: Path, name: str) -> VideoInfo:
    if container.format.name.split(",")[0] in _IMAGE_FORMATS:
        raise InvalidVideo(f"'{name}' is a still image, not a video.")
    if not container.streams.video:
        raise InvalidVideo(f"'{name}' has no video stream (is it audio only?).")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise InvalidVideo(f"'{name}' declares an unusable frame size {width}x{height}.")
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not fps or fps <= 0 or fps > 1000:
        raise InvalidVideo(f"'{name}' has no usable frame rate ({fps}).")
    time_base = stream.time_base or Fraction(1, 90000)

    pts = _demux_pts(container, stream, name)
    rotation, pix_fmt = _first_frame_facts(path, name)
    frames = len(pts)
    # what the packets span, not what the header claims (a header can say 3 s of a 5781 s stream)
    duration = float((pts[-1] - pts[0]) * time_base) + 1 / float(fps) if frames > 1 else 1 / float(fps)
    return VideoInfo(
        path=str(path),
        width=width,
        height=height,
        frames=frames,
        fps=Fraction(fps),
        time_base=Fraction(time_base),
        duration=duration,
        rotation=rotation,
        pix_fmt=pix_fmt,
        audio_codecs=tuple(s.codec_context.name for s in container.streams.audio),
        vfr=_is_vfr(pts, fps, time_base),
        colour=_colour(stream.codec_context),
        subtitle_codecs=tuple(s.codec_context.name for s in container.streams.subtitles),
    )


def _colour(cc) -> tuple[int, int, int, int]:
    return int(cc.color_primaries), int(cc.color_trc), int(cc.colorspace), int(cc.color_range)


def _demux_pts(container, stream, name: str) -> list[int]:
    """Presentation timestamps of every video packet, sorted (packets, not decoded frames: cheap)."""
    pts: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            pts.append(packet.pts if packet.pts is not None else (pts[-1] + 1 if pts else 0))
    except av.FFmpegError as exc:
        raise InvalidVideo(f"'{name}' is damaged or truncated ({_reason(exc)}).") from exc
    if not pts:
        raise InvalidVideo(f"'{name}' contains no video frames.")
    return sorted(pts)


def _first_frame_facts(path: Path, name: str) -> tuple[int, str]:
    """Decode the first frame: proves the stream decodes, and reads rotation and pixel format."""
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                return int(frame.rotation or 0), frame.format.name
    except av.FFmpegError as exc:
        raise InvalidVideo(f"'{name}' cannot be decoded ({_reason(exc)}).") from exc
    raise InvalidVideo(f"'{name}' contains no decodable video frame.")


def _is_vfr(pts: list[int], fps: Fraction, time_base: Fraction) -> bool:
    if len(pts) < 3:
        return False
    expected = 1 / (fps * time_base)
    deltas = [b - a for a, b in zip(pts, pts[1:])]
    off = sum(1 for d in deltas if abs(d - expected) > max(1.0, 0.25 * float(expected)))
    return off > 0.02 * len(deltas)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[-1].strip() or type(exc).__name__


def frame_timestamps(path: str | Path) -> list[int]:
    """Every video frame's presentation timestamp (stream time base), in order: frame `i` of
    `iter_frames` shows at `frame_timestamps(path)[i]`. From the packets alone (no decoding)."""
    path = Path(path)
    with av.open(str(path)) as container:
        return _demux_pts(container, container.streams.video[0], path.name)
