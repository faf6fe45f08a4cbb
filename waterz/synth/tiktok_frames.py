"""The labelled real TikTok frames of `../shared/footage/tiktok_frames`, as the videos they came from.

Each video's frames are at its own shape: most portrait 576x1024 (the mark's box at the left
middle, y about 0.5, or lower right, y about 0.8, about 0.09 of the frame high), one portrait
576x1248, one square 576x576, one small 312x510 and one landscape 1024x576. (An earlier reading
took them all for 576x576 squeezes and stretched each to 9:16 or 16:9, which drew the 576x1248
video's icon 3 px nearer its word and the square one's mark 1.8 times too wide.) The file name is
the video's id (32 characters) and the frame's number.

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

ID_CHARS = 32


@dataclass
class TikTokVideo:
    id: str
    size: tuple[int, int]  # width, height: its frames' own
    frames: list[Path] = field(default_factory=list)  # in frame order
    boxes: list[Box | None] = field(default_factory=list)  # the labelled mark per frame, in pixels

    @property
    def portrait(self) -> bool:
        return self.size[1] > self.size[0]

    @property
    def shape_name(self) -> str:
        w, h = self.size
        return "portrait" if h > w else "landscape" if w > h else "square"

    def image(self, k: int) -> np.ndarray:
        """Frame `k`, BGR, at the video's size (a frame saved at another size is brought to it)."""
        image = cv2.imread(str(self.frames[k]))
        if image.shape[1::-1] != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_CUBIC)
        return image


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
        h, w = cv2.imread(str(items[0][1])).shape[:2]
        video = TikTokVideo(vid, (w, h))
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
