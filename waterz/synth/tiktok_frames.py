"""The labelled real TikTok frames of `../shared/footage/tiktok_frames`, as the videos they came from.

The frames were saved at 576x576 from videos of other shapes: most were portrait 9:16 (the mark's
box sits at the left middle, y about 0.5, or lower right, y about 0.8, and is about 0.09 of the
frame high), two landscape 16:9 (box at the top left or bottom right, about 0.16 high: the same
92 px of a 576-px short side; the icon looks twice as tall as wide there, as the frames squeezed
1024 px of width into 576). A frame is stretched back to its video's shape, 576x1024 or
1024x576, before anything is measured on it. The file name is the video's id (32
characters) and the frame's number.

The 30 videos are split in two halves by their order of id: `half(v) == 0` builds the preset
(`scripts/make_presets.py`), `1` is kept for measuring it (`bench/real.py --tiktok`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from waterz.core.geometry import Box

WIDTH = 576
ID_CHARS = 32


@dataclass
class TikTokVideo:
    id: str
    portrait: bool  # 9:16; else 16:9
    frames: list[Path] = field(default_factory=list)  # in frame order
    boxes: list[Box | None] = field(default_factory=list)  # the labelled mark per frame, in the video's shape

    @property
    def size(self) -> tuple[int, int]:
        long = WIDTH * 16 // 9
        return (WIDTH, long) if self.portrait else (long, WIDTH)

    def image(self, k: int) -> np.ndarray:
        """Frame `k`, BGR, stretched back to the video's shape."""
        return cv2.resize(cv2.imread(str(self.frames[k])), self.size, interpolation=cv2.INTER_CUBIC)


def tiktok_videos(root: Path) -> list[TikTokVideo]:
    """Every video of `root` (the `tiktok_frames` folder), sorted by id."""
    rows: dict[str, list[tuple[int, Path, list[float] | None]]] = defaultdict(list)
    for image in root.glob("*/images/*.jpg"):
        name = image.stem
        number = re.fullmatch(r"\d+", name[ID_CHARS:])
        if number is None:
            raise ValueError(f"{image}: not a video id followed by a frame number")
        label = image.parent.parent / "labels" / f"{name}.txt"
        lines = [line.split() for line in label.read_text().splitlines() if line.strip()] if label.exists() else []
        rows[name[:ID_CHARS]].append((int(number.group()), image, [float(v) for v in lines[0][1:]] if lines else None))
    videos = []
    for vid, items in sorted(rows.items()):
        items.sort(key=lambda r: r[0])
        ys = [r[2][1] for r in items if r[2]]
        portrait = bool(ys) and float(np.median([0.3 < y < 0.87 for y in ys])) >= 0.5
        video = TikTokVideo(vid, portrait)
        w, h = video.size
        for _, image, box in items:
            video.frames.append(image)
            if box is None:
                video.boxes.append(None)
                continue
            cx, cy, bw, bh = box
            video.boxes.append(Box(round((cx - bw / 2) * w), round((cy - bh / 2) * h), round(bw * w), round(bh * h)))
        videos.append(video)
    return videos


def half(videos: list[TikTokVideo], which: int) -> list[TikTokVideo]:
    """Every other video (by id order): 0 builds the preset, 1 measures it."""
    return videos[which::2]
