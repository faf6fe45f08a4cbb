"""A mark's blend estimated by one segment, reused by the segments where the same mark sits
elsewhere.

A jumping mark has the same matte at every position, but not every position lets its blend be
fitted well: over a still picture, or where an object crossed the spot in the frames the sources
came from, the fit is poor or impossible. A segment that fitted its blend well leaves it in the
video's `MatteBook`; a later segment finds where that matte sits in its own crop (by the mark's
edges, which stay put in every frame while the picture moves or not), and combines it with its own
estimate, each pixel weighted by the inverse of its error.

What a segment learned (`Learned`) goes into the video's `MatteLedger`, which gives each segment
its book and, once all have run, says which to clean again (`second_looks`): in memory for one
process, where segments run in order (`MemoryLedger`), and kept with the job in Redis for the
service (`waterz.jobs.mattes.RedisLedger`), where a segment uses those recorded by the time it runs.
"""

from __future__ import annotations

import base64
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import cv2
import numpy as np

UNKNOWN = 1.0
"""The standard error given to alpha where a matte does not know it: no weight beside any estimate."""

MARKED = 0.1
"""The alpha above which a matte's pixel counts as clearly part of the mark."""


@dataclass
class Matte:
    """`alpha` and its standard error `error`, `(h, w) float32` over the mark's box, and the mark's
    colour `(3,) float32` BGR."""

    alpha: np.ndarray
    error: np.ndarray
    colour: np.ndarray

    def to_text(self) -> str:
        """The matte as ASCII (base64 of a compressed npz), small enough for a Redis field."""
        buf = io.BytesIO()
        np.savez_compressed(buf, alpha=self.alpha.astype(np.float16), error=self.error.astype(np.float16),
                            colour=self.colour.astype(np.float32))  # fmt: skip
        return base64.b64encode(buf.getvalue()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Matte:
        with np.load(io.BytesIO(base64.b64decode(text))) as data:
            return cls(data["alpha"].astype(np.float32), data["error"].astype(np.float32),
                       data["colour"].astype(np.float32))  # fmt: skip

    def edges(self) -> np.ndarray:
        return gradient(self.alpha)

    def same_colour(self, colour: np.ndarray, max_gap: float = 40.0) -> bool:
        return bool(np.abs(self.colour - colour).max() <= max_gap)


@dataclass
class Learned:
    """What cleaning one segment learned of the mark's blend: the matte it fitted for the others
    (`kept`, None when none), and, when it found no matte of the others to use, how many pixels of
    the mark its own fit saw (`unmatched`; None when it found one or needs none)."""

    kept: Matte | None = None
    unmatched: int | None = None


class MatteBook:
    """The mattes other segments of one video estimated, for one segment to use (read only);
    `sources`: the segments they came from, in the same order. `min_score`: the least correlation
    of a matte's edges with a segment's persistent edges for it to be placed there; over a still
    picture the picture's own edges persist as well and lower it; `min_inside`: the share of the
    matte's marked pixels that must lie inside the segment's mask; `weak_share`: a segment's own
    colour fitted on under this share of the pixels a matte of another colour covers is a guess
    (see `place`); `animated`: the mark is known to change from frame to frame (a preset says
    so), so no matte fitted over a segment holds for its frames and none is fitted or used."""

    def __init__(self, mattes: list[Matte] | None = None, min_score: float = 0.35, min_inside: float = 0.9,
                 weak_share: float = 0.5, animated: bool = False,
                 sources: list[int] | None = None) -> None:  # fmt: skip
        self.animated = animated
        self.mattes = list(mattes or [])
        self.sources = list(sources or [])
        self.min_score, self.min_inside = min_score, min_inside
        self.weak_share = weak_share

    def place(self, edges: np.ndarray, mask: np.ndarray, colour: np.ndarray | None = None, seen: int | None = None,
              max_colour_gap: float = 40.0) -> tuple[Matte, int, int] | None:  # fmt: skip
        """The matte that best matches a segment's mark, and its top-left corner `(x, y)` in the
        segment's crop; None when none does. `edges`: `(h, w)` the segment's persistent edge
        strength (e.g. the mean gradient magnitude over its frames); `mask`: `(h, w) bool` where
        its mark can be; `colour`: the segment's own estimate of the mark's colour, if any (a
        matte of another colour is another mark), and `seen`: how many pixels of the mark that
        own fit saw. A colour fitted on under `weak_share` of the pixels a matte covers is a guess
        (over a still picture the sources are few): a matte of another colour is then placed
        too, after any of the segment's own colour."""
        best = None
        h, w = edges.shape
        image = edges.astype(np.float32)
        for matte in self.mattes:
            mh, mw = matte.alpha.shape
            if mh > h or mw > w or mh < 4 or mw < 4:
                continue
            same = colour is None or matte.same_colour(colour, max_colour_gap)
            if not same and (seen is None or seen >= self.weak_share * marked_pixels(matte.alpha)):
                continue
            scores = cv2.matchTemplate(image, matte.edges(), cv2.TM_CCOEFF_NORMED)
            _, score, _, (x, y) = cv2.minMaxLoc(scores)
            marked = matte.alpha > MARKED
            inside = mask[y : y + mh, x : x + mw][marked].mean() if marked.any() else 0.0
            if score >= self.min_score and inside >= self.min_inside and (best is None or (same, score) > best[0]):
                best = ((same, score), matte, x, y)
        return None if best is None else best[1:]


def second_look(seen: int, later: list[Matte], others: list[Matte], own: Matte | None = None,
                factor: float = 2.0) -> MatteBook | None:  # fmt: skip
    """For a segment that found no matte to use, whose own fit saw `seen` pixels of the mark (and
    left the matte `own`, if any): the book to clean it again with (`others`, every matte but its
    own) when a matte estimated after it (`later`) covers at least `factor` times as much, or
    more than it and in another colour; None when none does. Over a still picture a segment may
    fit little of the mark, and a later one all of it; and from scarce sources a segment may fit
    much of the mark in the wrong colour, where a mark has one. In that book a matte that covers
    more than the own fit saw outweighs the own colour (`MatteBook.weak_share` 1)."""

    def better(m: Matte) -> bool:
        covers = marked_pixels(m.alpha)
        return covers >= factor * max(seen, 1) or (own is not None and not m.same_colour(own.colour) and covers > seen)

    if any(better(m) for m in later):
        return MatteBook(others, weak_share=1.0)
    return None


def second_looks(kept: dict[int, Matte], unmatched: dict[int, tuple[int, list[int]]]) -> dict[int, MatteBook]:
    """The segments to clean again, each with its book (`second_look`). `kept`: the matte each
    segment left, by segment index; `unmatched`: for each segment that found no matte to use,
    how many pixels of the mark its own fit saw and the segments whose mattes it had when it ran
    (those it did not have count as later)."""
    again = {}
    for index, (seen, had) in unmatched.items():
        others = {i: m for i, m in kept.items() if i != index}
        later = [m for i, m in others.items() if i not in had]
        book = second_look(seen, later, list(others.values()), kept.get(index))
        if book is not None:
            again[index] = book
    return again


class MatteLedger(ABC):
    """The mattes the segments of one video kept, and those that found none to use: what gives each
    segment its book (`book`), takes what it learned (`record`) and, once every segment has run,
    says which to clean again (`second_looks`)."""

    @abstractmethod
    def kept(self, but: int | None = None) -> dict[int, Matte]:
        """The matte each segment kept, by index, in the order they were recorded (all but `but`)."""

    @abstractmethod
    def unmatched(self) -> dict[int, tuple[int, list[int]]]:
        """For each segment that found no matte to use: the pixels of the mark its own fit saw, and
        the segments whose mattes its book held."""

    @abstractmethod
    def _record(self, index: int, learned: Learned, had: list[int]) -> None: ...

    def book(self, index: int, animated: bool = False) -> MatteBook:
        """Segment `index`'s book: the mattes the others kept so far."""
        kept = self.kept(but=index)
        return MatteBook(list(kept.values()), animated=animated, sources=list(kept))

    def record(self, index: int, learned: Learned, book: MatteBook) -> None:
        """What segment `index` learned, cleaned with `book`."""
        self._record(index, learned, sorted(book.sources))

    def second_looks(self) -> dict[int, MatteBook]:
        return second_looks(self.kept(), self.unmatched())


@dataclass
class MemoryLedger(MatteLedger):
    """The ledger of one process, whose segments run one after the other."""

    _kept: dict[int, Matte] = field(default_factory=dict)
    _unmatched: dict[int, tuple[int, list[int]]] = field(default_factory=dict)

    def kept(self, but: int | None = None) -> dict[int, Matte]:
        return {i: m for i, m in self._kept.items() if i != but}

    def unmatched(self) -> dict[int, tuple[int, list[int]]]:
        return dict(self._unmatched)

    def _record(self, index: int, learned: Learned, had: list[int]) -> None:
        if learned.kept is not None:
            self._kept[index] = learned.kept
        if learned.unmatched is not None:
            self._unmatched[index] = (learned.unmatched, had)
        else:
            self._unmatched.pop(index, None)


def marked_pixels(alpha: np.ndarray, known: np.ndarray | None = None) -> int:
    """How many pixels a matte says the mark clearly covers (of those `known`)."""
    marked = alpha > MARKED
    return int((marked if known is None else marked & known).sum())


def persistent_edges(frames: np.ndarray, targets: list[int]) -> np.ndarray:
    """The mean gradient magnitude of the grey crops of the frames `targets`: a mark's edges are
    in every frame at the same place; a moving picture's average out."""
    total = None
    for t in targets:
        edges = gradient(cv2.cvtColor(frames[t], cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0)
        total = edges if total is None else total + edges
    return total / max(len(targets), 1)


def gradient(image: np.ndarray) -> np.ndarray:
    """The Sobel gradient's magnitude of a one-channel `image`, float32."""
    image = image.astype(np.float32, copy=False)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)
