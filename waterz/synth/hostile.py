"""Videos that lie or overreach, for the tests and `bench/abuse.py`: one colour per frame, H.264,
with the sizes and timestamps asked for."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

Size = tuple[int, int]


def flat_video(path: Path, sizes_and_pts: list[tuple[Size, int]], fmt: str | None = None, rate: int = 25,
               preset: str = "medium") -> Path:  # fmt: skip
    """Frames of the given `(w, h)` at the given pts (in 1/rate s), one grey each."""
    with av.open(str(path), "w", format=fmt) as container:
        w, h = sizes_and_pts[0][0]
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, rate)
        stream.options = {"preset": preset}
        frames: dict[Size, av.VideoFrame] = {}
        for (w, h), pts in sizes_and_pts:
            if (w, h) not in frames:
                frames[w, h] = av.VideoFrame.from_ndarray(np.full((h, w, 3), 90, np.uint8), format="rgb24")
            frame = frames[w, h]
            frame.pts = pts
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def long_mkv_claiming(path: Path, span_s: int, claimed_s: float) -> Path:
    """Four frames of 64x48, the last `span_s` after the first, in a Matroska file whose header
    claims the whole lasts `claimed_s`."""
    flat_video(path, [((64, 48), pts) for pts in (0, 1, 2, span_s * 25)])
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # the Segment's Duration element (8-byte float, in milliseconds)
    if at < 0:
        raise RuntimeError(f"{path}: no Duration element to rewrite")
    data[at + 3 : at + 11] = struct.pack(">d", claimed_s * 1000)
    path.write_bytes(bytes(data))
    return path


def size_switching_stream(path: Path, first: Size, then: Size, frames_each: int = 5) -> Path:
    """A raw H.264 stream of `frames_each` frames at `first`, then as many at `then`."""
    parts = [flat_video(path.with_name(f"{path.stem}-{w}x{h}.h264"), [((w, h), pts) for pts in range(frames_each)],
                        fmt="h264") for w, h in (first, then)]  # fmt: skip
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


def looped(source: Path, path: Path, times: int) -> Path:
    """`source` played `times` times over, by copying its packets with shifted timestamps: a long
    clip for the price of encoding a short one. `source` must start with a key frame and have
    no B-frames reaching across its end (`flat_video` with one GOP)."""
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        template = src.streams.video[0]
        packets = [(bytes(p), p.pts, p.dts, p.duration, p.is_keyframe) for p in src.demux(template) if p.size]
        stream = out.add_stream_from_template(template)
        span = max(p[1] for p in packets) + packets[-1][3] - min(p[1] for p in packets)
        for k in range(times):
            for data, pts, dts, duration, key in packets:
                packet = av.Packet(data)
                packet.pts, packet.dts, packet.duration = pts + k * span, dts + k * span, duration
                packet.is_keyframe, packet.stream, packet.time_base = key, stream, template.time_base
                out.mux(packet)
    return path
