"""`auto`, the default: chooses per segment. `unblend` for a semi-transparent mark (the picture is
still there under it); for an opaque one, or one known to animate (no fixed matte holds for it),
`propainter` where it can run well (CUDA and its weights present), else `unblend`, which then
keeps the temporal fill and only the mask's pixels the mark does not touch."""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from pathlib import Path

import numpy as np

from propainter.base import Cleaned, Inpainter, Sources
from propainter.weights import PROPAINTER_MODELS, WeightStore, published
from waterz.core.errors import WeightsMissing
from waterz.core.matte import MatteBook
from waterz.core.settings import DEFAULT_WEIGHTS_DIR

log = logging.getLogger(__name__)


def nvidia_driver() -> bool:
    """Whether an NVIDIA driver is installed (its `libcuda` loads). Without one no CUDA device can
    be there, and torch, about 470 MB of memory once imported, need not be imported to ask."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def propainter_ready(weights_dir: Path | None = None) -> tuple[bool, str]:
    """Whether ProPainter can run on a GPU here with the weights in `weights_dir`, and if not, why."""
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    if not nvidia_driver():
        return False, "no CUDA device"
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device"
    try:
        WeightStore(weights_dir or DEFAULT_WEIGHTS_DIR, published(PROPAINTER_MODELS)).require()
    except WeightsMissing as exc:
        return False, str(exc)
    return True, "CUDA and weights present"


class AutoInpainter(Inpainter):
    """`unblend`, and ProPainter (its weights in `weights_dir`, `fp16` on CUDA) for opaque marks
    where it can run."""

    def __init__(self, weights_dir: Path | None = None, fp16: bool = False, **kwargs) -> None:
        from propainter.temporal import unblend_inpainter

        self.unblend = unblend_inpainter(**kwargs)
        ready, why = propainter_ready(weights_dir)
        self.propainter = None
        if ready:
            from propainter.propainter_cv import ProPainterInpainter

            self.propainter = ProPainterInpainter(fp16=fp16, weights_dir=weights_dir)
        log.info("auto inpainter: unblend, and for opaque marks %s", "propainter" if ready else f"unblend ({why})")
        self.last_choice: str | None = None  # the engine the last segment went to, for logs and tests

    def fill(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, mattes: MatteBook | None,
             sources: Sources | None = None) -> Cleaned:  # fmt: skip
        animated = mattes is not None and mattes.animated
        if animated and self.propainter is not None:  # no matte to fit: no analysis needed either
            return Cleaned(self._propainter(frames, masks, first, last))
        analysis = self.unblend.analyse(frames, masks, first, last, mattes, sources)
        if analysis.opaque and self.propainter is not None:
            return Cleaned(self._propainter(frames, masks, first, last), analysis.learned, analysis.sources)
        self.last_choice = "unblend"
        return Cleaned(self.unblend.render(frames, masks, first, last, analysis), analysis.learned, analysis.sources)

    def _propainter(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int) -> np.ndarray:
        self.last_choice = "propainter"
        return self.propainter.inpaint(frames, masks, first, last)
