"""Stream decoded frames one at a time: memory does not grow with the video's length."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from waterz.core.errors import InvalidVideo

log = logging.getLogger(__name__)


def iter_frames(path: str | Path, with_pts: bool = False, fmt: str = "bgr24", start: int = 0,
                stop: int | None = None, timestamps: Sequence[int] | None = None) -> Iterator:  # fmt: skip
    """Yield every frame in presentation order as `(H, W, 3) uint8 BGR`, in coded orientation.

    With `with_pts=True` yield `(image, pts)` where `pts` is in the stream's time base. With
    `fmt="yuv420p"` yield the I420 planes as one `(H * 3 // 2, W) uint8` array instead (no colour
    conversion: what is not changed is re-encoded without a round trip through RGB).

    `start`, `stop`: only frames `start <= index < stop` (indexes as a decode from the first
    frame counts them). With `timestamps`, every frame's pts in order (`probe.frame_timestamps`),
    decoding starts at the keyframe before `start` instead of at the first frame; where the
    container cannot seek there exactly, it decodes from the first frame and skips.
    """
    if start > 0 and timestamps is not None:
        seeked = _seeked(path, with_pts, fmt, start, stop, timestamps)
        if seeked is not None:
            yield from seeked
            return
    for index, item in enumerate(_decode(path, with_pts, fmt)):
        if stop is not None and index >= stop:
            return
        if index >= start:
            yield item


class _CannotSeek(Exception):
    """The container cannot seek (a raw stream)."""


def _decode(path: str | Path, with_pts: bool, fmt: str, seek_to: int | None = None) -> Iterator:
    """Frames from the first (or from the keyframe at or before `seek_to`, a pts) to the last."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads: decoding is the hot loop
            if seek_to is not None:
                try:
                    container.seek(seek_to, stream=stream, backward=True, any_frame=False)
                except av.FFmpegError as exc:  # a raw stream: nothing to seek by
                    raise _CannotSeek(str(exc)) from exc
            last_pts, size = None, None
            for index, frame in enumerate(container.decode(stream)):
                size = size or (frame.width, frame.height)
                if (frame.width, frame.height) != size:
                    raise InvalidVideo(f"'{Path(path).name}' changes its frame size from {size[0]}x{size[1]} to "
                                       f"{frame.width}x{frame.height} at frame {index}; waterz takes videos whose "
                                       "frames all have one size.")  # fmt: skip
                image: np.ndarray = frame.to_ndarray(format=fmt)
                if not with_pts:
                    yield image
                    continue
                pts = frame.pts if frame.pts is not None else (0 if last_pts is None else last_pts + 1)
                last_pts = pts
                yield image, pts
    except av.FFmpegError as exc:
        raise InvalidVideo(f"Decoding '{Path(path).name}' failed part-way ({exc}).") from exc


def _seeked(path, with_pts: bool, fmt: str, start: int, stop: int | None,
            timestamps: Sequence[int]) -> Iterator | None:  # fmt: skip
    """Frames `start <= index < stop` decoded from the keyframe before frame `start`, or None
    where the decoder does not land on frame `start` exactly (a stream without usable timestamps,
    a container that seeks past it)."""
    stop = len(timestamps) if stop is None else min(stop, len(timestamps))
    if start >= stop or len(set(timestamps)) != len(timestamps):
        return None
    target = timestamps[start]
    frames = _decode(path, True, fmt, seek_to=target)
    try:
        for image, pts in frames:
            if pts < target:
                continue
            if pts == target:
                return _from_landed(frames, (image, pts), with_pts, start, stop, timestamps)
            break
    except _CannotSeek:
        pass
    frames.close()
    log.info("'%s': no exact seek to frame %d; decoding from the first frame", Path(path).name, start)
    return None


def _from_landed(frames: Iterator, first, with_pts: bool, start: int, stop: int, timestamps: Sequence[int]) -> Iterator:
    """The frames from `first` (frame `start`, just decoded) up to `stop`, each checked against
    its expected timestamp."""
    index, item = start, first
    while True:
        image, pts = item
        if pts != timestamps[index]:
            raise InvalidVideo(f"Frame {index} decoded with timestamp {pts} where the packets said "
                               f"{timestamps[index]}; the video's timestamps are inconsistent.")  # fmt: skip
        yield (image, pts) if with_pts else image
        index += 1
        if index >= stop:
            frames.close()
            return
        item = next(frames, None)
        if item is None:
            raise InvalidVideo(f"The video ended at frame {index} where its packets promised {len(timestamps)}.")
