"""Inpainting engines behind one protocol, picked by name from a lazy registry.

Only engines that need torch import it, and only when picked.
"""

from __future__ import annotations

from propainter.base import Inpainter
from waterz.core.registry import LazyRegistry

INPAINTERS = LazyRegistry(
    "inpainter",
    {
        "telea": "propainter.telea:TeleaInpainter",
        "temporal": "propainter.temporal:TemporalInpainter",
        "unblend": "propainter.temporal:unblend_inpainter",
        "propainter": "propainter.propainter_cv:ProPainterInpainter",
        "auto": "propainter.auto:AutoInpainter",
    },
)


def create_inpainter(name: str, **kwargs) -> Inpainter:
    """Build the inpainter registered as `name`; unknown names raise `UnknownEngine` listing the known ones."""
    return INPAINTERS.create(name, **kwargs)


__all__ = ["INPAINTERS", "Inpainter", "create_inpainter"]
