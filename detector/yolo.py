"""The `yolo` detector: an Ultralytics model trained on the operator's mark (see
`waterz train-detector`), weights from `YOLO_WEIGHTS` or `--weights`, never downloaded.

Every `stride`-th frame is predicted, in batches. Between two predicted frames that agree, the
boxes are carried forward; where they differ (the mark jumped, appeared or vanished), every frame
in between is predicted too, so a mark never flashes back on a skipped frame. Boxes that stay put
form one position, and each position's box is refined into a mark-shaped mask. Weights made by
`waterz train-detector` remember the logo's matte: its edges are matched against the edges that
persist around the box (the temporal median of the gradient, per colour channel), which puts a
loose or partial box on the mark, and the logo's matte is the mask. Without the logo, or where
it does not match, the temporal median of the gradient inside the box keeps the mark's strokes
and drops the changing picture.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from detector.base import FrameMarks
from detector.static import clean_presence
from waterz.core.errors import WeightsMissing
from waterz.core.geometry import Box, Mark
from waterz.core.median import median_of_planes

log = logging.getLogger(__name__)

ANALYSIS_SIDE = 640  # frames are kept at this size between predictions (YOLO resizes to it anyway)


@functools.cache
def _load(path: str):
    os.environ["YOLO_OFFLINE"] = "1"  # never reach the network
    from ultralytics import YOLO

    return YOLO(path)


class YoloDetector:
    needs_frames = True

    def __init__(self, weights: str | Path | None = None, conf: float = 0.15, stride: int = 2,
                 batch: int = 8, mask_dilation: int = 2, same_iou: float = 0.6, samples: int = 24) -> None:  # fmt: skip
        path = weights
        if not path:
            raise WeightsMissing("The yolo detector needs weights: set YOLO_WEIGHTS or pass --weights "
                                 "(waterz train-detector makes them from a logo image).")  # fmt: skip
        path = Path(path).expanduser()
        if not path.is_file():
            raise WeightsMissing(f"YOLO weights '{path}' do not exist (YOLO_WEIGHTS or --weights).")
        try:
            self.model = _load(str(path))
        except Exception as exc:  # ultralytics raises many kinds for a file that is not a model
            raise WeightsMissing(f"'{path}' is not a YOLO weights file that can be loaded ({exc}).") from exc
        checkpoint = getattr(self.model, "ckpt", None)
        logo = checkpoint.get("waterz_logo") if isinstance(checkpoint, dict) else None
        # the logo's matte, kept in the weights by `waterz train-detector` (None for other weights)
        self.logo = None if logo is None else np.asarray(logo, np.float32) / 255.0
        self.conf, self.stride = conf, max(1, stride)
        self.batch, self.mask_dilation, self.same_iou, self.samples = batch, mask_dilation, same_iou, samples
        self.predicted = 0  # frames the model actually saw (for tests and logs)

    def detect(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> FrameMarks:
        width, height = size
        scale = min(1.0, ANALYSIS_SIDE / max(width, height))
        boxes: list[list[Box] | None] = [None] * total
        pending: dict[int, np.ndarray] = {}  # small copies of the frames not settled yet
        positions = _Positions(self.same_iou, self.samples, self.logo)
        last_key = None
        for i, frame in enumerate(frames):
            small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
            pending[i] = small
            waiting = sum(1 for k in pending if self._is_key(k, total) and boxes[k] is None)
            if waiting >= self.batch or i == total - 1:
                last_key = self._settle(pending, boxes, total, last_key, positions)
        if pending:  # the stream ended early: its last frame closes the last gap
            self._predict([max(pending)], pending, boxes)
            self._settle(pending, boxes, total, last_key, positions)
        log.info("yolo detector: predicted %d of %d frames, %d position(s)", self.predicted, total, len(positions))
        return positions.marks(boxes, scale, width, height, self.mask_dilation)

    def _is_key(self, k: int, total: int) -> bool:
        return k % self.stride == 0 or k == total - 1

    def _settle(self, pending: dict[int, np.ndarray], boxes: list, total: int, last_key: int | None,
                positions: _Positions) -> int | None:  # fmt: skip
        """Predict the key frames among `pending`, then fill the frames between each pair: carried
        forward where both ends agree, predicted one by one where they do not. Settled frames
        leave `pending` (their crops go to `positions`); returns the last key frame."""
        self._predict([k for k in sorted(pending) if self._is_key(k, total) and boxes[k] is None], pending, boxes)
        keys = sorted({*(k for k in pending if boxes[k] is not None), *([last_key] if last_key is not None else [])})
        for a, b in zip(keys, keys[1:]):
            between = [k for k in range(a + 1, b) if boxes[k] is None]
            if between and _same(boxes[a], boxes[b], self.same_iou):
                for k in between:
                    boxes[k] = list(boxes[a])
            elif between:
                self._predict(between, pending, boxes)
        last = keys[-1] if keys else last_key
        for k in sorted(pending):
            if last is not None and k <= last:
                positions.observe(boxes[k], pending.pop(k))
        return last

    def _predict(self, indices: list[int], pending: dict[int, np.ndarray], boxes: list) -> None:
        for start in range(0, len(indices), self.batch):
            chunk = indices[start : start + self.batch]
            results = self.model.predict([pending[k] for k in chunk], conf=self.conf, verbose=False)
            self.predicted += len(chunk)
            for k, result in zip(chunk, results):
                found = []
                for x0, y0, x1, y1 in result.boxes.xyxy.cpu().numpy().tolist():
                    found.append(Box(int(x0), int(y0), max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))))
                boxes[k] = found


def _same(a: list[Box], b: list[Box], min_iou: float) -> bool:
    """Both frames show the same marks at the same places."""
    return len(a) == len(b) and all(any(x.iou(y) >= min_iou for y in b) for x in a)


class _Positions:
    """Boxes that stay put, grouped into positions, each with sample crops for its mask: crops of
    the position's first box grown by half its larger side, so that a mark the model boxed
    loosely, off-centre or only in part lies inside them whole."""

    def __init__(self, same_iou: float, samples: int, logo: np.ndarray | None = None, min_run: int = 10) -> None:
        self.same_iou, self.samples, self.logo, self.min_run = same_iou, samples, logo, min_run
        self.boxes: list[list[Box]] = []
        self.regions: list[Box] = []
        self.crops: list[list[np.ndarray]] = []
        self.seen: list[int] = []

    def __len__(self) -> int:
        return len(self.boxes)

    def find(self, box: Box, size: tuple[int, int]) -> int:
        """The position of `box`, added if new; `size`: the analysis frame's `(w, h)`."""
        for p, members in enumerate(self.boxes):
            if members[0].iou(box) >= self.same_iou:
                return p
        margin = max(box.w, box.h) // 2
        x0, y0 = max(0, box.x - margin), max(0, box.y - margin)
        x1, y1 = min(size[0], box.x1 + margin), min(size[1], box.y1 + margin)
        self.boxes.append([])
        self.regions.append(Box(x0, y0, x1 - x0, y1 - y0))
        self.crops.append([])
        self.seen.append(0)
        return len(self.boxes) - 1

    def observe(self, frame_boxes: list[Box], small: np.ndarray) -> None:
        for box in frame_boxes:
            p = self.find(box, (small.shape[1], small.shape[0]))
            self.boxes[p].append(box)
            self.seen[p] += 1
            # Keep every n-th crop so the samples spread over the whole time the mark is there.
            if len(self.crops[p]) < self.samples or self.seen[p] % 4 == 0:
                r = self.regions[p]
                crop = small[r.y : r.y1, r.x : r.x1].copy()
                if len(self.crops[p]) >= self.samples:
                    self.crops[p].pop(0)
                self.crops[p].append(crop)

    def marks(self, boxes: list, scale: float, width: int, height: int, dilation: int) -> FrameMarks:
        """Per frame, the refined mark of each position present there. A position's presence is
        cleaned like the static detector's: gaps of a frame or two bridged, runs shorter than
        `min_run` frames dropped (a watermark stays for seconds; a false detection comes and goes)."""
        total = len(boxes)
        size = (int(round(width * scale)), int(round(height * scale)))
        present: dict[int, set[int]] = {}
        for i, frame_boxes in enumerate(boxes):
            for b in frame_boxes or []:
                present.setdefault(self.find(b, size), set()).add(i)
        out: FrameMarks = [[] for _ in range(total)]
        for p, frames in sorted(present.items()):
            kept = clean_presence(frames, total, max_gap=2, min_run=self.min_run)
            mark = self._refine(p, scale, width, height, dilation) if kept.any() else None
            if mark is not None:
                for i in np.flatnonzero(kept):
                    # two of the model's positions can hold one mark (boxes apart but for the same logo)
                    if not any(mark.box.iou(other.box) >= 0.5 for other in out[i]):
                        out[i].append(mark)
        return out

    def _refine(self, p: int, scale: float, width: int, height: int, dilation: int) -> Mark | None:
        """The position's mark at full resolution, or None. Where the logo is known and matches
        inside the region, the box is where it matches and the mask is the logo's own matte; else
        the model's median box, its mask from what persists inside it (`refine_mask`)."""
        region = self.regions[p]
        stacked = np.array([[b.x, b.y, b.x1, b.y1] for b in self.boxes[p]], np.float64)
        x0, y0, x1, y1 = np.median(stacked, axis=0)  # analysis scale
        grow = dilation + 1
        found = None
        if self.logo is not None:
            inside = Box(int(x0) - region.x, int(y0) - region.y, int(round(x1 - x0)), int(round(y1 - y0)))
            found = match_logo(self.crops[p], self.logo, inside)
            log.info("yolo detector: the logo %s around the box at %s (analysis scale)",
                     "matched" if found else "did not match", region)  # fmt: skip
        if found is not None:
            fx, fy, fw, fh = found[0]
            x0, y0, x1, y1 = region.x + fx, region.y + fy, region.x + fx + fw, region.y + fy + fh
        x0, y0, x1, y1 = x0 / scale, y0 / scale, x1 / scale, y1 / scale
        box = Box(max(0, int(x0) - grow), max(0, int(y0) - grow), 0, 0)
        right, bottom = min(width, int(np.ceil(x1)) + grow), min(height, int(np.ceil(y1)) + grow)
        box = Box(box.x, box.y, right - box.x, bottom - box.y)
        if found is not None:
            return Mark(box, logo_mask(self.logo, box, (x0, y0, x1, y1), dilation))
        cut = (slice(max(0, int(y0 * scale) - region.y), int(y1 * scale) - region.y),
               slice(max(0, int(x0 * scale) - region.x), int(x1 * scale) - region.x))  # fmt: skip
        mask = refine_mask([c[cut] for c in self.crops[p]], (box.w, box.h), dilation)
        return None if mask is None else Mark(box, mask)


LOGO_SIZES = np.geomspace(0.6, 2.0, 25)  # logo widths tried, as shares of the model's box width


def match_logo(crops: list[np.ndarray], logo: np.ndarray, box: Box, min_score: float = 0.45,
               sizes: np.ndarray = LOGO_SIZES) -> tuple[tuple[int, int, int, int], float] | None:  # fmt: skip
    """Where the logo's edges (`logo`: its matte, `(h, w)` in [0, 1]) match the edges that persist
    over `crops` best, trying widths from 0.6 to 2 times the model's `box` (in crop
    coordinates): `((x, y, w, h), score)` in crop pixels, None if no size scores `min_score` (the
    normalised correlation of edge strengths)."""
    usable = [c for c in crops if c.size and c.shape[0] > 4 and c.shape[1] > 4]
    if len(usable) < 3:
        return None
    # Per colour channel: a coloured mark can have the grey level of the picture around it.
    edges = persistent_gradient([c.astype(np.float32) for c in usable]).sum(axis=-1)
    best = None
    for size in sizes:
        w = int(round(box.w * size))
        h = int(round(w * logo.shape[0] / logo.shape[1]))
        if h < 4 or w < 4 or h > edges.shape[0] or w > edges.shape[1]:
            continue
        matte = cv2.resize(logo, (w, h), interpolation=cv2.INTER_AREA)
        template = np.hypot(cv2.Sobel(matte, cv2.CV_32F, 1, 0), cv2.Sobel(matte, cv2.CV_32F, 0, 1))
        if template.std() == 0:
            continue
        scores = cv2.matchTemplate(edges, template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (x, y) = cv2.minMaxLoc(scores)
        if best is None or score > best[1]:
            best = ((x, y, w, h), float(score))
    return best if best is not None and best[1] >= min_score else None


def logo_mask(logo: np.ndarray, box: Box, place: tuple[float, float, float, float], dilation: int) -> np.ndarray:
    """The logo's matte drawn at `place` `(x0, y0, x1, y1)` (full resolution) inside `box`, as a
    `(box.h, box.w) bool` mask, dilated by `dilation` pixels."""
    x0, y0, x1, y1 = place
    w, h = max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))
    matte = cv2.resize(logo, (w, h), interpolation=cv2.INTER_LINEAR) > 0.05
    mask = np.zeros((box.h, box.w), bool)
    ox, oy = int(round(x0)) - box.x, int(round(y0)) - box.y
    ys, xs = slice(max(0, oy), min(box.h, oy + h)), slice(max(0, ox), min(box.w, ox + w))
    mask[ys, xs] = matte[ys.start - oy : ys.stop - oy, xs.start - ox : xs.stop - ox]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1, 2 * dilation + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def persistent_gradient(images: list[np.ndarray]) -> np.ndarray:
    """The magnitude of the per-component temporal median of the gradient of same-sized `float32`
    images (per channel where they have several): a mark's edges point the same way in every
    frame, the changing picture's do not and cancel out."""
    gx = median_of_planes([cv2.Sobel(i, cv2.CV_32F, 1, 0) for i in images])
    gy = median_of_planes([cv2.Sobel(i, cv2.CV_32F, 0, 1) for i in images])
    return np.hypot(gx, gy)


def refine_mask(crops: list[np.ndarray], size: tuple[int, int], dilation: int, min_share: float = 0.05,
                min_change: float = 4.0) -> np.ndarray | None:  # fmt: skip
    """The mark's shape inside its box, `(h, w) bool` at `size` `(w, h)`: strokes whose gradient
    persists over the sampled crops (per-component median), closed and dilated. Where too little
    persists: the whole box if the picture there does not change either (a mark over a still
    picture cannot be told from it), None if it does (nothing stays put: not a watermark)."""
    w, h = size
    usable = [c for c in crops if c.size and c.shape[0] > 2 and c.shape[1] > 2]
    if len(usable) < 3:
        return np.ones((h, w), bool)
    ch, cw = usable[0].shape[:2]
    median = persistent_gradient([cv2.cvtColor(cv2.resize(c, (cw, ch)), cv2.COLOR_BGR2GRAY).astype(np.float32)
                                  for c in usable])  # fmt: skip
    strokes = median > max(20.0, 0.25 * float(np.percentile(median, 99)))
    shape = cv2.morphologyEx(strokes.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    shape = cv2.resize(shape * 255, (w, h), interpolation=cv2.INTER_LINEAR) > 64
    if shape.mean() < min_share:
        grays = np.stack([cv2.cvtColor(cv2.resize(c, (cw, ch)), cv2.COLOR_BGR2GRAY) for c in usable]).astype(np.float32)
        changing = float(np.median(np.median(np.abs(grays - np.median(grays, axis=0)), axis=0))) > min_change
        return None if changing else np.ones((h, w), bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 3, 2 * dilation + 3))
    return cv2.dilate(shape.astype(np.uint8), kernel).astype(bool)
