"""The inpainter contract, and the base every engine builds on."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from waterz.core.matte import Learned, MatteBook


@dataclass
class Sources:
    """What a temporal engine found in the other frames for each masked frame `t` before fitting
    the mark: `fills[t]` `(h, w, 3) float16`, the picture under the mask seen elsewhere (NaN where
    no frame showed it, and outside the mask), and `spreads[t]` `(h, w) float16`, how far those
    sources disagreed. They depend on the frames, the masks and the engine's settings (`made_by`),
    not on the mattes: cleaning the same segment again with other mattes (a second look) reuses
    them, which spares most of the work. `reused`: these were given to the engine, not found.
    `fit`: what the engine fitted of the mark's blend on them alone, as named arrays (empty where
    it fitted none), which depends on nothing else either; None where it was not kept."""

    fills: dict[int, np.ndarray]
    spreads: dict[int, np.ndarray]
    made_by: str
    reused: bool = False
    fit: dict[str, np.ndarray] | None = None

    def save(self, path: Path, frames: np.ndarray, masks: np.ndarray) -> None:
        """To `path` (.npz), only the masked pixels (the rest is NaN), with a digest of the
        `frames` and `masks` they were found for (as given to `clean`)."""
        targets = sorted(self.fills)
        fills = [self.fills[t][masks[t]] for t in targets]
        spreads = [self.spreads[t][masks[t]] for t in targets]
        fit = {} if self.fit is None else {f"fit_{k}": v for k, v in self.fit.items()}
        with open(path, "wb") as f:
            np.savez(f, targets=np.array(targets, np.int64), digest=np.array(_digest(frames, masks)),
                     made_by=np.array(self.made_by), kept_fit=np.array(self.fit is not None),
                     fills=np.concatenate(fills) if fills else np.zeros((0, 3), np.float16),
                     spreads=np.concatenate(spreads) if spreads else np.zeros(0, np.float16), **fit)  # fmt: skip

    @classmethod
    def load(cls, path: Path, frames: np.ndarray, masks: np.ndarray) -> Sources | None:
        """What `save` wrote, for the same `frames` and `masks`; None where it was made for others.
        Raises what `np.load` raises on a file that is not such an archive."""
        with np.load(path) as data:
            if str(data["digest"]) != _digest(frames, masks):
                return None
            targets, made_by = [int(t) for t in data["targets"]], str(data["made_by"])
            packed_fills, packed_spreads = data["fills"], data["spreads"]
            kept = "kept_fit" in data.files and bool(data["kept_fit"])
            fit = {k[4:]: data[k] for k in data.files if k.startswith("fit_")} if kept else None
        fills, spreads, at = {}, {}, 0
        for t in targets:
            n = int(masks[t].sum())
            fill = np.full((*masks.shape[1:], 3), np.nan, np.float16)
            spread = np.full(masks.shape[1:], np.nan, np.float16)
            fill[masks[t]], spread[masks[t]] = packed_fills[at : at + n], packed_spreads[at : at + n]
            fills[t], spreads[t], at = fill, spread, at + n
        return cls(fills, spreads, made_by, fit=fit)


def _digest(frames: np.ndarray, masks: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    for array in (frames, masks):
        h.update(repr((array.shape, array.dtype.str)).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


@dataclass
class Cleaned:
    """Frames first..last cleaned, `(n, h, w, 3) uint8`, what the engine learned of the mark and,
    from an engine that looks for the picture in other frames, what it found (`Sources`)."""

    frames: np.ndarray
    learned: Learned = field(default_factory=Learned)
    sources: Sources | None = None


class Inpainter(ABC):
    """Fills the masked pixels of a crop sequence. An engine supplies `fill`; this base keeps every
    pixel outside the mask the input's, bit for bit."""

    def clean(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int,
              mattes: MatteBook | None = None, sources: Sources | None = None) -> Cleaned:  # fmt: skip
        """`frames`: `(N, h, w, 3) uint8 BGR`; `masks`: `(N, h, w) bool`, True where the mark is.
        Returns frames `first..last` (inclusive), every pixel outside the mask equal to the input;
        frames outside that range are context only. `mattes`: the mark's mattes other segments
        estimated; an engine that fits the mark's blend may use them, and says what it fitted in
        `Cleaned.learned`. Others ignore them. `sources`: what an earlier cleaning of the same
        frames and masks found (`Cleaned.sources`); an engine that looks for them reuses them."""
        filled = self.fill(frames, masks, first, last, mattes, sources)
        inside = masks[first : last + 1, :, :, None]
        return Cleaned(np.where(inside, filled.frames, frames[first : last + 1]), filled.learned, filled.sources)

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int,
                mattes: MatteBook | None = None) -> np.ndarray:  # fmt: skip
        """`clean`'s frames alone."""
        return self.clean(frames, masks, first, last, mattes).frames

    @abstractmethod
    def fill(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, mattes: MatteBook | None,
             sources: Sources | None = None) -> Cleaned:  # fmt: skip
        """Frames first..last with their masked pixels filled (what lies outside the mask is the
        base's), and what was learned of the mark."""
