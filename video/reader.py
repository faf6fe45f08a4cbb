"""Stream decoded frames one at a time: memory does not grow with the video's length."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from waterz.errors import InvalidVideo


def iter_frames(path: str | Path, with_pts: bool = False, fmt: str = "bgr24") -> Iterator:
    """Yield every frame in presentation order as `(H, W, 3) uint8 BGR`, in coded orientation.

    With `with_pts=True` yield `(image, pts)` where `pts` is in the stream's time base. With
    `fmt="yuv420p"` yield the I420 planes as one `(H * 3 // 2, W) uint8` array instead (no colour
    conversion: what is not changed is re-encoded without a round trip through RGB).
    """
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads: decoding is the hot loop
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
