"""`auto`: ProPainter where it can run well (CUDA and its weights present), `temporal` elsewhere."""

from __future__ import annotations

import logging

from propainter.weights import PROPAINTER_MODELS, WeightStore, published
from waterz.errors import WeightsMissing
from waterz.settings import get_settings

log = logging.getLogger(__name__)


def propainter_ready() -> tuple[bool, str]:
    """Whether ProPainter can run on a GPU here, and if not, why."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    try:
        WeightStore(get_settings().weights_dir, published(PROPAINTER_MODELS)).require()
    except WeightsMissing as exc:
        return False, str(exc)
    return True, "CUDA and weights present"


def choose_inpainter(**kwargs):
    """The engine `auto` stands for on this machine."""
    ready, why = propainter_ready()
    if ready:
        from propainter.propainter_cv import ProPainterInpainter

        return ProPainterInpainter(**kwargs)
    from propainter.temporal import TemporalInpainter

    log.info("auto inpainter: temporal (%s)", why)
    return TemporalInpainter(**kwargs)
