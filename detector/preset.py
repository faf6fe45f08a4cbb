"""Known marks: a mark whose look was measured on real footage (`detector/presets/<name>.png`, its
alpha matte, and `.json`), found in every frame wherever it is.

Why it works: a white mark of opacity a over a picture B shows a*255 + (1-a)*B, so its outline is
an edge whose direction is fixed by the matte (brighter inside) wherever the picture under it is
not white itself. Each frame's gradient field is correlated with the matte's (the sum of
gx*tx + gy*ty over the window, divided by both fields' energy there): 1 where the frame's edges
are exactly the mark's, near 0 on picture unrelated to it, whatever the picture's brightness.
That alone can also favour picture with edges of a similar shape, so a candidate must also pass
the blend's own test: where the matte is dense, the pixels are at least nearly as bright as the
mark alone would make them (over black), because a*255 + (1-a)*B >= a*255 for any B.

A frame's candidates are joined over the video: a place where the mark was clearly seen in
several frames is a position; in every frame the mark is taken where a candidate near a position
passes the weaker score, and short gaps between detections at one position (a fade, a frame where
the picture behind is as bright as the mark) are filled. A frame without the mark (around a
jump) stays empty.

The search runs on a picture reduced so the matte is `match_width` px wide, at a few scales
around the size the preset predicts from the picture's short side; the box is then the matte's
extent at full resolution, grown by `margin` of its height for the icon's wiggle.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.base import FrameMarks
from waterz.core.geometry import Box, Mark

PRESETS = Path(__file__).resolve().parent / "presets"


@dataclass(frozen=True)
class Preset:
    """`matte`: alpha in [0, 1] as measured; `short_side`: the picture short side the matte's size
    belongs to (the mark scales with the video); `colour`: the mark's grey level; `animated`: the
    mark changes shape from frame to frame, so `matte` is its mean look and no fixed matte
    removes it (the inpainters are told, see `waterz.core.matte.MatteBook`)."""

    name: str
    matte: np.ndarray
    short_side: int
    colour: float
    animated: bool = False
    line: tuple[float, float] | None = None  # under the mark, a text line's gap and height over its height

    def scale_for(self, width: int, height: int) -> float:
        """How much larger than `matte` the mark is in a picture of `width` x `height`."""
        return min(width, height) / self.short_side

    def matte_for(self, width: int, height: int) -> np.ndarray:
        """The matte at the size the mark has in a picture of `width` x `height`."""
        scale = self.scale_for(width, height)
        return cv2.resize(self.matte, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    @property
    def first_part(self) -> np.ndarray | None:
        """The matte's columns before its first gap (Sora's icon, which stays alone on screen for
        a few frames around each jump while the word fades), or None for a mark in one piece."""
        empty = self.matte.max(axis=0) < 0.05
        gap = max(3, self.matte.shape[1] // 20)
        for x in range(1, len(empty) - gap):
            if not empty[x - 1] and empty[x : x + gap].all():
                return self.matte[:, :x]
        return None


@functools.cache
def load_preset(name: str) -> Preset:
    """The preset `name`, read once per process (a service worker asks for it per segment)."""
    meta = json.loads((PRESETS / f"{name}.json").read_text())
    matte = cv2.imread(str(PRESETS / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    if matte is None:
        raise FileNotFoundError(f"preset '{name}': {PRESETS / name}.png is missing or not an image")
    matte = matte.astype(np.float32) / 255
    matte.setflags(write=False)  # shared by every caller
    line = (float(meta["line"]["gap"]), float(meta["line"]["height"])) if "line" in meta else None
    return Preset(name, matte, int(meta["short_side"]), float(meta["colour"]), bool(meta.get("animated", False)), line)


def animates(name: str | None) -> bool:
    """Whether the preset `name` (None: no preset, the generic detector's mark) is known to animate."""
    return name is not None and load_preset(name).animated


@dataclass(frozen=True)
class PresetConfig:
    match_width: int = 64  # px of the matte's width in the reduced picture searched
    # narrower than this, the letters are under a pixel wide: what is left is a blob that chance
    # patches of picture match as well as the mark does (a 19-px matte scored 0.55 on night-street
    # lights, the mark itself 0.77 at 35 px); such sizes are not searched
    min_width: int = 32
    # around the size predicted from the frame's short side; the small ones for a picture inside
    # black bars, whose own short side the mark may follow. Once `min_sightings` strong ones agree
    # on a scale, only it and its neighbours are searched.
    scales: tuple[float, ...] = (0.55, 0.65, 0.75, 0.87, 1.0, 1.12, 1.25)
    strong: float = 0.5  # score of a clear sighting; positions need `min_sightings` of them
    weak: float = 0.3  # score that places the mark at a known position
    min_sightings: int = 3
    bright_share: float = 0.7  # of the dense matte pixels that must be at least `bright_floor` of a*colour
    bright_floor: float = 0.8
    max_gap: int = 4  # frames filled between two detections at one position
    part_frames: int = 8  # frames before and after a stay where the first part alone is looked for
    candidates: int = 4  # peaks kept per frame
    # the icon alone is a small round blob that round things anywhere match about as well (0.69 on
    # a toy plane's windows, the icon itself 0.67): only those near a stay are used, so keep more
    part_candidates: int = 16
    margin: float = 0.12  # of the mark's height, around its box
    # a line of text of its own content under the mark (TikTok's `@username`, newer Sora's): looked
    # for in the `line_below` x (1 + 2 `line_side`) mark-sized region under each clear sighting
    line_below: float = 1.0
    line_side: float = 3.0
    # a pixel of the line's letters: over the picture next to it (its grey opening, `line_stroke` of
    # the mark's height wide, wider than a letter's stroke), it shows the mark's colour at an
    # opacity of at least `line_alpha` of the mark's own peak, and lifts the picture by `line_lift`
    # grey levels at least (a compression ripple over white is not a letter)
    line_stroke: float = 0.25
    line_alpha: float = 0.4
    line_lift: float = 12.0
    line_even: float = 0.25  # the most the three channels' opacities may differ, of the mark's peak
    line_share: float = 0.5  # of a stay's sightings in which a pixel is a letter's, to be the line's
    line_sightings: int = 3


@dataclass(frozen=True)
class _Candidate:
    x: float  # top-left, in full-resolution px
    y: float
    scale: int  # index into the config's scales
    score: float


@dataclass
class _Under:
    """Over the clear sightings at one place (one cell of a few px, at one size): how often each
    pixel of the region under them looked like a letter of the mark's (`PresetSearch._letters`). A
    running count, so its memory is per place, not per frame."""

    letters: np.ndarray  # (rows, cols) uint32, the region (`PresetSearch._region`) relative to each sighting
    sightings: int = 0
    x: float = 0.0  # sums of the sightings' full-resolution places
    y: float = 0.0


class PresetDetector:
    needs_frames = True

    def __init__(self, preset: str = "sora", mask_dilation: int = 0, config: PresetConfig | None = None):
        self.preset = load_preset(preset)
        self.cfg = config or PresetConfig()
        self.mask_dilation = mask_dilation
        self.matched: str | None = None  # the preset's name after a `detect` that found it

    def detect(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> FrameMarks:
        search = self.start(size)
        for frame in frames:
            search.push(frame)
        marks = search.finish(total)
        self.matched = self.preset.name if any(marks) else None
        return marks

    def start(self, size: tuple[int, int]) -> PresetSearch:
        """A search over frames of `size` pushed one by one (for callers that feed several detectors)."""
        return PresetSearch(self, size)


def sora(mask_dilation: int = 0, **_ignored) -> PresetDetector:
    """The `sora` detector: the Sora mark's preset alone."""
    return PresetDetector("sora", mask_dilation=mask_dilation)


def tiktok(mask_dilation: int = 0, **_ignored) -> PresetDetector:
    """The `tiktok` detector: the TikTok mark's preset alone."""
    return PresetDetector("tiktok", mask_dilation=mask_dilation)


class PresetSearch:
    """Stages: `push` reduces each frame and keeps its best candidates (`_candidates`); `finish`
    finds the positions (`_positions`) and places the mark frame by frame (`_place`)."""

    def __init__(self, detector: PresetDetector, size: tuple[int, int]):
        self.det, self.cfg, self.size = detector, detector.cfg, size
        preset = detector.preset
        w, h = size
        full = preset.scale_for(w, h)  # the matte's predicted size at full resolution
        self.reduce = min(1.0, self.cfg.match_width / (preset.matte.shape[1] * full))
        self.sizes = [full * s for s in self.cfg.scales]
        self.templates = [_Template(preset.matte, f * self.reduce, preset.colour) for f in self.sizes]
        part = preset.first_part
        self.parts = [_Template(part, f * self.reduce, preset.colour) for f in self.sizes] if part is not None else []
        self.found: list[list[_Candidate]] = []
        self.found_parts: list[list[_Candidate]] = []
        self.strong_at = np.zeros(len(self.sizes), int)  # strong sightings per scale so far
        self.unders: dict[tuple[int, int, int], _Under] = {}  # what lay under the clear sightings, by place
        self.searched = [k for k, t in enumerate(self.templates) if t.matte.shape[1] >= self.cfg.min_width]

    def push(self, frame: np.ndarray) -> None:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.reduce < 1.0:
            grey = cv2.resize(grey, None, fx=self.reduce, fy=self.reduce, interpolation=cv2.INTER_AREA)
        grey = grey.astype(np.float32)
        gx, gy = _gradients(grey)
        field = _Field(gx, gy)
        wanted, part_scales = self.searched, []
        best = int(self.strong_at.argmax())
        if self.strong_at[best] >= self.cfg.min_sightings:  # the mark's size is known: the icon is looked
            wanted = [k for k in self.searched if abs(k - best) <= 1]  # for at it alone from now on
            part_scales = [best]
        found = self._candidates(self.templates, wanted, grey, field, frame=frame)
        for c in found:
            self.strong_at[c.scale] += c.score >= self.cfg.strong
        self.found.append(found)
        self.found_parts.append(self._candidates(self.parts, part_scales, grey, field, self.cfg.part_candidates))

    def clearly_present(self) -> bool:
        """Whether, over the frames pushed so far, the mark was seen clearly at some position
        (`_positions`) in at least half of them: it will be placed in those frames, whatever follows."""
        positions = self._positions(self.found)
        clear = sum(any(c.score >= self.cfg.strong and any(self._near(c, p) for p in positions) for c in frame)
                    for frame in self.found)  # fmt: skip
        return bool(positions) and clear >= len(self.found) / 2

    def seen_clearly(self) -> bool:
        """Whether the mark was seen clearly (a strong sighting) in any frame pushed so far."""
        return bool(self.strong_at.any())

    def _candidates(self, templates: list[_Template], wanted: list[int], grey: np.ndarray, field: _Field,
                    keep: int | None = None, frame: np.ndarray | None = None) -> list[_Candidate]:  # fmt: skip
        """The best `keep` (default `candidates`) peaks of the templates `wanted` in one frame;
        with `frame` (the full picture), what lies under each clear sighting is counted for the
        text line (`_count_under`)."""
        keep = keep or self.cfg.candidates
        out = []
        for k in wanted if templates else ():
            t = templates[k]
            if t.matte.shape[0] >= grey.shape[0] or t.matte.shape[1] >= grey.shape[1]:
                continue
            scores = t.scores(field)
            th, tw = t.matte.shape
            for _ in range(keep):
                _, best, _, (x, y) = cv2.minMaxLoc(scores)
                if best < self.cfg.weak:
                    break
                scores[max(0, y - th // 2) : y + th // 2 + 1, max(0, x - tw // 2) : x + tw // 2 + 1] = -1
                if t.bright_enough(grey, x, y, self.cfg):
                    if best >= self.cfg.strong and frame is not None:
                        self._count_under(t, k, grey, frame, x, y)
                    out.append(_Candidate(x / self.reduce, y / self.reduce, k, float(best)))
        out.sort(key=lambda c: -c.score)
        return out[:keep]

    def _region(self, t: _Template) -> tuple[int, int, int]:
        """The region under a sighting of template `t` where a text line is looked for: how far it
        reaches out on either side of the mark, its rows and its columns, in reduced px."""
        th, tw = t.matte.shape
        side = int(np.ceil(self.cfg.line_side * tw))
        return side, int(np.ceil(self.cfg.line_below * th)), tw + 2 * side

    def _count_under(self, t: _Template, k: int, grey: np.ndarray, frame: np.ndarray, x: int, y: int) -> None:
        """Count the letter pixels of the region under the mark seen clearly at `(x, y)` (px of the
        reduced picture `grey`, template `k`) of `frame` (the full picture) into its place's
        `_Under`; off-picture pixels count as none."""
        th, _ = t.matte.shape
        side, rows, cols = self._region(t)
        cell = max(2, th // 4)
        under = self.unders.get((k, x // cell, y // cell))
        if under is None:
            under = self.unders[k, x // cell, y // cell] = _Under(np.zeros((rows, cols), np.uint32))
        H, W = grey.shape
        y0, x0 = y + th, x - side
        ya, xa, yb, xb = max(0, y0), max(0, x0), min(H, y0 + rows), min(W, x0 + cols)
        if ya < yb and xa < xb:
            under.letters[ya - y0 : yb - y0, xa - x0 : xb - x0] += self._letters(t, frame, (xa, ya, xb, yb))
        under.sightings += 1
        under.x += x / self.reduce
        under.y += y / self.reduce

    def _letters(self, t: _Template, frame: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
        """Which pixels of `region` (x0, y0, x1, y1 in reduced px) of `frame` show a letter of the mark's
        colour, judged on the full picture: a letter's pixel v over the picture b next to it shows
        v = a*colour + (1-a)*b in each of its three channels, so a = (v - b) / (colour - b) is the
        same in all three, with b each channel's grey-level opening (a stroke is narrower than the
        opening's window, the picture around it is not). This holds over dark and bright picture
        alike, where a fixed grey level would count a pale picture as letters and miss a faint line
        over a dark one; coloured picture that is merely brighter than its surroundings lifts its
        channels unevenly. A letter one full pixel wide still counts where the reduced picture
        would have blurred it away: a reduced pixel is a letter's where any full pixel in it is."""
        xa, ya, xb, yb = region
        r = self.reduce
        H, W = frame.shape[:2]
        k = max(3, int(self.cfg.line_stroke * t.matte.shape[0] / r) | 1)
        X0, Y0 = int(xa / r), int(ya / r)
        X1, Y1 = min(W, int(np.ceil(xb / r))), min(H, int(np.ceil(yb / r)))
        P0, Q0, P1, Q1 = max(0, X0 - k), max(0, Y0 - k), min(W, X1 + k), min(H, Y1 + k)
        v = frame[Q0:Q1, P0:P1].astype(np.float32)
        b = cv2.morphologyEx(v, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
        lift = v - b
        alpha = lift / np.maximum(t.colour - b, 1)
        peak = float(self.det.preset.matte.max())
        letters = ((lift.min(axis=2) >= self.cfg.line_lift) & (alpha.min(axis=2) >= self.cfg.line_alpha * peak)
                   & (alpha.max(axis=2) - alpha.min(axis=2) <= self.cfg.line_even * peak))  # fmt: skip
        letters = letters[Y0 - Q0 : Y1 - Q0, X0 - P0 : X1 - P0]
        if r < 1.0:
            letters = cv2.resize(letters.astype(np.float32), (xb - xa, yb - ya), interpolation=cv2.INTER_AREA) > 0
        return letters[: yb - ya, : xb - xa]

    def _line(self, p: _Candidate) -> Box | None:
        """The text line under the mark at `p`, as a full-resolution box, or None where there is
        none: pixels that were a letter's in at least `line_share` of the clear sightings there
        (letters stay where they are while the picture behind them changes); the preset's rows of
        the line, or else the first run of such rows under the mark that holds some of them within the mark's
        columns and is as high as a line of text; along it the runs of such columns chained to
        those by gaps of at most the line's height."""
        unders = [u for (k, _, _), u in self.unders.items() if k == p.scale
                  and self._near(_Candidate(u.x / u.sightings, u.y / u.sightings, k, 0.0), p)]  # fmt: skip
        sightings = sum(u.sightings for u in unders)
        if sightings < self.cfg.line_sightings:
            return None
        share = np.sum([u.letters for u in unders], axis=0) / sightings
        text = share >= self.cfg.line_share
        t = self.templates[p.scale]
        th, tw = t.matte.shape
        left, _, _ = self._region(t)
        if (known := self.det.preset.line) is not None:  # the line's rows, as measured on real footage
            r0, r1 = int(known[0] * th), int(np.ceil((known[0] + known[1]) * th)) + 1
        else:
            rows = [(a, b) for a, b in runs(text[:, left : left + tw].any(axis=1))
                    if a <= 0.5 * th and 0.1 * th <= b - a <= 0.6 * th]  # fmt: skip
            if not rows:
                return None  # no line of text that belongs to the mark
            r0, r1 = rows[0]
        cols = runs(text[r0:r1].any(axis=0))
        start = [i for i, (a, b) in enumerate(cols) if a < left + tw and b > left]
        if not start:
            return None
        i, j = start[0], start[-1]
        while i > 0 and cols[i][0] - cols[i - 1][1] <= r1 - r0:
            i -= 1
        while j < len(cols) - 1 and cols[j + 1][0] - cols[j][1] <= r1 - r0:
            j += 1
        c0, c1 = cols[i][0] - left, cols[j][1] - left  # reduced px from the mark's left
        k = 1 / self.reduce
        box = Box(round(p.x + c0 * k), round(p.y + (th + r0) * k), round((c1 - c0) * k), round((r1 - r0) * k))
        return box.intersection(Box(0, 0, *self.size))

    def finish(self, total: int) -> FrameMarks:
        found = self.found + [[] for _ in range(total - len(self.found))]
        self.found_parts += [[] for _ in range(total - len(self.found_parts))]
        positions = self._positions(found)
        return self._place(found[:total], positions)

    def _near(self, c: _Candidate, p: _Candidate, dx: float = 0.2, dy: float = 0.3, matte=None) -> bool:
        h, w = (self.det.preset.matte if matte is None else matte).shape
        s = self.sizes[p.scale]
        return abs(c.x - p.x) < dx * w * s and abs(c.y - p.y) < dy * h * s

    def _positions(self, found: list[list[_Candidate]]) -> list[_Candidate]:
        """Places with at least `min_sightings` strong candidates; each at its sightings' median."""
        groups: list[list[_Candidate]] = []
        for frame in found:
            for c in frame:
                if c.score < self.cfg.strong:
                    continue
                group = next((g for g in groups if self._near(c, g[0])), None)
                if group is None:
                    groups.append([c])
                else:
                    group.append(c)
        out = []
        for g in groups:
            if len(g) >= self.cfg.min_sightings:
                scale = int(np.bincount([c.scale for c in g]).argmax())
                out.append(_Candidate(float(np.median([c.x for c in g])), float(np.median([c.y for c in g])),
                                      scale, float(np.median([c.score for c in g]))))  # fmt: skip
        return out

    def _place(self, found: list[list[_Candidate]], positions: list[_Candidate]) -> FrameMarks:
        """Hysteresis in time: at each position, runs of frames with a weak sighting (gaps of up to
        `max_gap` frames filled: a fade, a frame as bright as the mark) that hold at least one
        strong sighting; then the frames next to each run where the icon is seen alone."""
        seen = np.zeros((len(positions), len(found)), bool)
        for i, p in enumerate(positions):
            weak = np.array([any(self._near(c, p) for c in frame) for frame in found], bool)
            strong = np.array([any(self._near(c, p) and c.score >= self.cfg.strong for c in frame) for frame in found])
            hits = np.flatnonzero(weak)
            for a, b in zip(hits[:-1], hits[1:], strict=True):
                if 1 < b - a <= self.cfg.max_gap + 1:
                    weak[a:b] = True
            for a, b in runs(weak):
                seen[i, a:b] = strong[a:b].any()
            if self.parts:
                self._first_part_alone(seen[i], p)
        lines = self._lent_lines(positions, [self._line(p) for p in positions])
        marks = [self._mark(p, self._parts_at(p, seen[i]), line) for i, (p, line) in enumerate(zip(positions, lines))]
        return [[marks[i] for i in range(len(positions)) if seen[i, f]] for f in range(len(found))]

    def _lent_lines(self, positions: list[_Candidate], lines: list[Box | None]) -> list[Box | None]:
        """Each place's text line, and where none was seen, the widest one seen at another place,
        at the same offset from the mark's top-left corner (scaled with the mark). The line is the
        creator's name, the same at every place of a video; over a white picture its white
        letters lift nothing and cannot be seen. Only where the preset does not place the line
        itself (TikTok's is left-aligned at one place and right-aligned at the other)."""
        seen = [(p, line) for p, line in zip(positions, lines) if line is not None]
        if not seen or self.det.preset.line is not None:
            return lines
        p, line = max(seen, key=lambda pair: pair[1].w / self.sizes[pair[0].scale])
        s = self.sizes[p.scale]
        dx, dy, w, h = (line.x - p.x) / s, (line.y - p.y) / s, line.w / s, line.h / s
        frame = Box(0, 0, *self.size)
        out = []
        for q, own in zip(positions, lines):
            k = self.sizes[q.scale]
            lent = Box(round(q.x + dx * k), round(q.y + dy * k), max(1, round(w * k)), max(1, round(h * k)))
            out.append(own if own is not None else lent.intersection(frame))
        return out

    def _parts_at(self, p: _Candidate, row: np.ndarray) -> list[_Candidate]:
        """Where the first part was seen near `p` in the stay's frames: the icon slides in and out
        by a few px while the word fades, and the stay's box must hold it there too."""
        part = self.det.preset.first_part
        if part is None:
            return []
        return [c for f in np.flatnonzero(row) for c in self.found_parts[f] if self._near(c, p, 0.3, 0.5, part)]

    def _first_part_alone(self, row: np.ndarray, p: _Candidate) -> None:
        """Frames next to a stay at `p` where the first part (the icon) is seen alone at its place
        there, sliding by up to half its height, join the stay."""
        part = self.det.preset.first_part
        hits = np.flatnonzero(row)
        if not len(hits):
            return
        starts = hits[np.r_[True, np.diff(hits) > 1]]
        ends = hits[np.r_[np.diff(hits) > 1, True]]
        for edge, step in [(a, -1) for a in starts] + [(b, 1) for b in ends]:
            f = edge + step
            while 0 <= f < len(row) and abs(f - edge) <= self.cfg.part_frames and not row[f]:
                if not any(self._near(c, p, 0.3, 0.5, part) for c in self.found_parts[f]):
                    break
                row[f] = True
                f += step

    def _mark(self, p: _Candidate, parts: list[_Candidate], line: Box | None = None) -> Mark:
        """The whole matte at `p`, the first part at each of `parts` and the text `line` under it
        (whole), in one box grown by `margin`."""
        preset = self.det.preset
        placed = [(preset.matte, p)] + [(preset.first_part, c) for c in parts]
        shapes = []
        for matte, c in placed:
            s = self.sizes[c.scale]
            size = (max(1, round(matte.shape[1] * s)), max(1, round(matte.shape[0] * s)))
            shapes.append((cv2.resize(matte, size, interpolation=cv2.INTER_AREA) > 0.02, round(c.x), round(c.y)))
        if line is not None:
            shapes.append((np.ones((line.h, line.w), bool), line.x, line.y))
        m = self.cfg.margin * preset.matte.shape[0] * self.sizes[p.scale]
        W, H = self.size
        x0 = max(0, int(np.floor(min(x for _, x, _ in shapes) - m)))
        y0 = max(0, int(np.floor(min(y for _, _, y in shapes) - m)))
        x1 = min(W, int(np.ceil(max(x + sh.shape[1] for sh, x, _ in shapes) + m)))
        y1 = min(H, int(np.ceil(max(y + sh.shape[0] for sh, _, y in shapes) + m)))
        box = Box(x0, y0, x1 - x0, y1 - y0)
        mask = np.zeros((box.h, box.w), np.uint8)
        for shape, x, y in shapes:
            cut = shape[: max(0, y1 - y), : max(0, x1 - x)]
            mask[y - y0 : y - y0 + cut.shape[0], x - x0 : x - x0 + cut.shape[1]] |= cut
        grow = int(round(m)) + self.det.mask_dilation
        if grow:
            mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        return Mark(box, mask.astype(bool))


class _Template:
    """The matte at one size of the reduced picture: its gradient field, and its dense pixels."""

    def __init__(self, matte: np.ndarray, factor: float, colour: float):
        size = (max(3, round(matte.shape[1] * factor)), max(3, round(matte.shape[0] * factor)))
        self.matte = cv2.resize(matte, size, interpolation=cv2.INTER_AREA)
        self.colour = colour
        self.tx, self.ty = _gradients(self.matte * colour)
        self.norm = float(np.sqrt((self.tx**2 + self.ty**2).sum())) or 1.0
        self.dense = self.matte >= 0.5 * self.matte.max()
        self.lift = self.matte[self.dense] * colour
        self.spectra: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # by transform size

    def scores(self, field: _Field) -> np.ndarray:
        """The correlation of the frame's gradient field with the template's at every place the
        template fits whole (`cv2.matchTemplate`'s TM_CCORR, summed over both fields), over both
        fields' energy there."""
        th, tw = self.matte.shape
        H, W = field.shape
        spectra = self.spectra.get(field.size)
        if spectra is None:
            spectra = self.spectra[field.size] = (_spectrum(self.tx, field.size), _spectrum(self.ty, field.size))
        product = (cv2.mulSpectrums(field.fx, spectra[0], 0, conjB=True)
                   + cv2.mulSpectrums(field.fy, spectra[1], 0, conjB=True))  # fmt: skip
        num = cv2.idft(product, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)[: H - th + 1, : W - tw + 1]
        window = cv2.boxFilter(field.energy, -1, (tw, th), normalize=False, anchor=(0, 0),
                               borderType=cv2.BORDER_CONSTANT)[: num.shape[0], : num.shape[1]]  # fmt: skip
        return num / (np.sqrt(np.maximum(window, 1e-6)) * self.norm)

    def bright_enough(self, grey: np.ndarray, x: int, y: int, cfg: PresetConfig) -> bool:
        th, tw = self.matte.shape
        under = grey[y : y + th, x : x + tw][self.dense]
        return float(np.mean(under >= cfg.bright_floor * self.lift)) >= cfg.bright_share


def runs(row: np.ndarray) -> list[tuple[int, int]]:
    """`(start, end)` (end excluded) of each run of True in `row`."""
    edges = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2], strict=True))


class _Field:
    """A frame's gradient field, with its transforms, shared by every template searched in the
    frame: a correlation is then one product and one inverse transform per template, where
    `cv2.matchTemplate` transforms the frame again for each template and each field."""

    def __init__(self, gx: np.ndarray, gy: np.ndarray):
        self.shape = gx.shape
        self.energy = gx * gx + gy * gy
        # the frame's own size suffices: a place where the template fits whole never wraps around
        self.size = (cv2.getOptimalDFTSize(gx.shape[0]), cv2.getOptimalDFTSize(gx.shape[1]))
        self.fx, self.fy = _spectrum(gx, self.size), _spectrum(gy, self.size)


def _spectrum(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` zero-padded to `size` (rows, columns), transformed (`cv2.dft`'s packed form)."""
    padded = np.zeros(size, np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    return cv2.dft(padded)


def _gradients(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
