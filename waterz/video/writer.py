"""Encode frames to H.264 and put the original audio back beside them."""

from __future__ import annotations

import logging
import subprocess
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np

from waterz.core import heap
from waterz.video.probe import VideoInfo

log = logging.getLogger(__name__)

# Audio codecs the mp4 muxer takes as they are; anything else is re-encoded to AAC.
_MP4_AUDIO_COPY = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
# Text subtitles, which mp4 carries as mov_text; picture subtitles (DVD, Blu-ray) it cannot.
_TEXT_SUBTITLES = {"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"}


class VideoWriter:
    """Encode frames to a video-only H.264 mp4, keeping the input's timestamps exactly.

    Timestamps are taken from the input (in its time base), so a constant rate such as
    30000/1001 is kept exactly and a variable-rate input keeps its timing. Odd frame sizes cannot
    be 4:2:0, so they are encoded 4:4:4 at the same size rather than resized. The input's colour
    description is written as it was: the picture outside the marks keeps its own YUV values
    (`waterz.pipeline.composite.paste_planar`), so the same tags describe it. An input of more than 8
    bits is encoded with 10 (H.264 High 10, the most x264 takes; `frame_format` says what to
    give `write`).
    """

    def __init__(self, path: str | Path, info: VideoInfo, crf: int = 18, preset: str = "medium",
                 origin: int | None = None, until: int | None = None) -> None:  # fmt: skip
        """`origin`: the pts that becomes time zero (default: the first frame written's). `until`:
        for a chunk of a longer video, the pts of the first frame after it; frames from there on
        are only read ahead (the encoder sees them, a keyframe starts at the first, nothing of
        them is written), so that the chunk ends as it would inside one whole encode."""
        self.path = str(path)
        # the encoder's buffers filled before it reads them (`heap.filled`): the same bytes every time
        self._filled = ExitStack()
        self._filled.enter_context(heap.filled())
        try:
            self._open(info, crf, preset, origin, until)
        except BaseException:
            self._filled.close()
            raise

    def _open(self, info: VideoInfo, crf: int, preset: str, origin: int | None, until: int | None) -> None:
        self._container = av.open(self.path, mode="w", format="mp4")
        odd = info.width % 2 or info.height % 2
        if odd:
            log.warning("frame size %dx%d is odd: encoding 4:4:4 to keep the size", info.width, info.height)
        stream = self._container.add_stream("libx264", rate=info.fps)
        stream.width, stream.height = info.width, info.height
        stream.pix_fmt = ("yuv444p" if odd else "yuv420p") + ("10le" if info.bit_depth > 8 else "")
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.options = {"crf": str(crf), "preset": preset}
        cc = stream.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = info.colour  # as the input (class docstring)
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        self._stream = stream
        self._time_base = info.time_base
        self._first_pts: int | None = origin
        self._last_pts: int | None = None
        self._until = until
        if until is not None:
            stream.options = {**stream.options, "forced-idr": "1"}  # the next chunk's first frame: an IDR
        self._ahead = False  # writing frames past `until`
        self.frames_written = 0

    def write(self, image: np.ndarray, pts: int, fmt: str = "bgr24") -> None:
        """Encode one frame shown at `pts` (input time base): `(H, W, 3) uint8 BGR` by default,
        or as `fmt` says (see `frame_format`)."""
        if self._first_pts is None:
            self._first_pts = pts
        rel = pts - self._first_pts
        if self._last_pts is not None and rel <= self._last_pts:
            rel = self._last_pts + 1  # broken inputs repeat timestamps; the muxer needs them rising
        self._last_pts = rel
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        frame.pts = rel
        frame.time_base = self._time_base
        if self._until is not None and pts >= self._until:
            if not self._ahead:
                frame.pict_type = av.video.frame.PictureType.I
            self._ahead = True
        self._mux(self._stream.encode(frame))
        self.frames_written += not self._ahead

    def _mux(self, packets) -> None:
        for packet in packets:
            if self._until is None or packet.pts is None or packet.pts + self._first_pts < self._until:
                self._container.mux(packet)

    def close(self) -> None:
        try:
            self._mux(self._stream.encode(None))
            self._container.close()
        finally:
            self._filled.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def frame_format(info: VideoInfo) -> str:
    """The form in which the input's frames are decoded, changed and encoded again without
    leaving its colour space or losing bits: I420 planes (`(H * 3 // 2, W)`, uint8, or uint16
    holding 10 bits for an input of more than 8), or BGR (`(H, W, 3)`, uint8, or uint16 over the
    full 16 bits) where an odd size rules 4:2:0 out."""
    deep = info.bit_depth > 8
    if info.width % 2 == 0 and info.height % 2 == 0:
        return "yuv420p10le" if deep else "yuv420p"
    return "bgr48le" if deep else "bgr24"


def mux_audio(video_only: str | Path, source: VideoInfo, output: str | Path) -> None:
    """Write `output`: the video of `video_only` (copied) with every audio stream of `source`,
    its text subtitles (as mov_text), its container metadata (title, creation_time, ...) and its
    chapters.

    Audio is copied where mp4 allows it and re-encoded to AAC otherwise; picture subtitles and
    data tracks are dropped (mp4 has no place for the first; the second are not carried yet);
    `+faststart` puts the index first so browsers can play while downloading.
    """
    audio_args: list[str] = []
    if source.has_audio:
        copyable = all(codec in _MP4_AUDIO_COPY for codec in source.audio_codecs)
        audio_args = ["-map", "1:a", "-c:a", "copy" if copyable else "aac"]
        if not copyable:
            audio_args += ["-b:a", "192k"]
    subtitle_args: list[str] = []
    for k, codec in enumerate(source.subtitle_codecs):
        if codec in _TEXT_SUBTITLES:
            subtitle_args += ["-map", f"1:s:{k}"]
        else:
            log.warning("subtitle track %d (%s) is pictures, which mp4 cannot carry: dropped", k, codec)
    if subtitle_args:
        subtitle_args += ["-c:s", "mov_text"]
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-v", "error",
        "-i", str(video_only), "-i", source.path,
        "-map", "0:v:0", "-c:v", "copy", *audio_args, *subtitle_args,
        "-map_metadata", "1", "-map_chapters", "1",
        "-movflags", "+faststart", str(output),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not mux the result: {result.stderr.strip()[-500:]}")


def fps_string(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def join_chunks(chunks: list[str | Path], output: str | Path) -> int:
    """Write `output`: the video packets of `chunks` (video-only mp4s made by `VideoWriter` with
    one `origin`, each ending where the next begins) one after the other, copied, timestamps as
    they are. Returns the number of frames. Every chunk's encoder must have made the same stream
    headers (the same settings make the same ones); a decoding timestamp that would not rise
    across a join (never seen with x264) is raised to the one before plus one."""
    frames = 0
    with av.open(str(chunks[0])) as first, av.open(str(output), mode="w", format="mp4") as out:
        template = first.streams.video[0]
        stream = out.add_stream_from_template(template)
        headers = bytes(template.codec_context.extradata or b"")
        last_dts = None
        for path in chunks:
            with av.open(str(path)) as chunk:
                source = chunk.streams.video[0]
                if bytes(source.codec_context.extradata or b"") != headers:
                    raise RuntimeError(f"chunk {Path(path).name} was encoded with other stream headers")
                for packet in chunk.demux(source):
                    if packet.size == 0:
                        continue
                    if last_dts is not None and packet.dts is not None and packet.dts <= last_dts:
                        packet.dts = last_dts + 1
                    last_dts = packet.dts
                    packet.stream = stream
                    out.mux(packet)
                    frames += 1
    return frames
