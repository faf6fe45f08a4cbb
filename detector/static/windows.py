"""Stage 2: frames grouped into windows as they stream by. Consecutive windows of `window` frames
every `stride` frames, and slow windows of `window` frames taken every `slow_step` frames (a slow
camera move changes the picture enough over those for it to come apart from a mark). Frames are
kept until every window that can reveal a mark on them has run; then they are handed out to be
scored (`scored`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from detector.static.config import StaticConfig
from detector.static.features import Features


@dataclass
class Window:
    feats: list[Features]
    span: tuple[int, int]  # first frame, and the frame after the last
    consecutive: bool  # only consecutive frames can show a mark popping up between two of them


class Windows:
    def __init__(self, cfg: StaticConfig) -> None:
        self.cfg = cfg
        self.buffer: dict[int, Features] = {}
        self.next_window = 0
        self.sparse: dict[int, Features] = {}  # the frames slow windows take
        self.next_slow = 0
        self.slow_until = 0
        self.last_index = -1
        self.scored_until = 0  # frames below this were handed out

    def before(self, index: int) -> Features | None:
        """The frame before `index`, while it is still kept."""
        return self.buffer.get(index - 1)

    def push(self, index: int, feats: Features) -> Iterator[Window]:
        """Keep frame `index`; the windows it completes."""
        self.buffer[index] = feats
        self.last_index = index
        cfg = self.cfg
        while self.next_window + cfg.window <= index + 1:
            start = self.next_window
            yield Window([self.buffer[i] for i in range(start, start + cfg.window)], (start, start + cfg.window), True)
            self.next_window += cfg.stride
        if cfg.slow_step > 1:
            if index % cfg.slow_step == 0:
                self.sparse[index] = feats
            span = cfg.window * cfg.slow_step
            while self.next_slow + span <= index + 1:
                start = self.next_slow
                yield Window([self.sparse[i] for i in range(start, start + span, cfg.slow_step)],
                             (start, start + span), False)  # fmt: skip
                self.slow_until = start + span
                self.next_slow += cfg.stride * cfg.slow_step
            for old in [i for i in self.sparse if i < self.next_slow - span]:
                del self.sparse[old]
        for i, old in self.buffer.items():
            if i < self.next_window:
                old.since = old.step = None  # only the frames of windows still to come need them

    def ready(self) -> int:
        """The frames below this have been in every window that can reveal a mark on them."""
        cfg = self.cfg
        done = self.next_window - cfg.window
        if cfg.slow_step > 1:
            done = min(done, self.next_slow - cfg.window * cfg.slow_step)
        return done

    def finish(self) -> Iterator[Window]:
        """The last windows, over the frames no full window reached."""
        cfg = self.cfg
        n = self.last_index + 1
        covered = self.next_window - cfg.stride + cfg.window if self.next_window else 0
        if n >= 3 and covered < n:
            start = max(0, n - cfg.window)
            yield Window([self.buffer[i] for i in range(start, n)], (start, n), True)
        tail = sorted(i for i in self.sparse if i >= n - cfg.window * cfg.slow_step)
        if cfg.slow_step > 1 and self.slow_until and self.slow_until < n and len(tail) == cfg.window:
            yield Window([self.sparse[i] for i in tail], (tail[0], n), False)

    def scored(self, end: int) -> Iterator[tuple[int, Features]]:
        """Hands out (and forgets) the frames not handed out yet below `end`."""
        stop = min(end, self.last_index + 1)
        for index in range(self.scored_until, stop):
            yield index, self.buffer.pop(index)
        self.scored_until = max(self.scored_until, stop)
