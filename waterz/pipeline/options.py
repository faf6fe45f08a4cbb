"""A job's choice of engines and boxes, checked before any work: the same answer for the API and
the CLI. Every check raises the user's error (`waterz.core.errors`) with a sentence."""

from __future__ import annotations

from detector import DETECTORS
from detector.box import BoxDetector
from propainter import INPAINTERS
from waterz.core.settings import Settings


def chosen_engines(settings: Settings, detector: str | None = None, inpainter: str | None = None,
                   boxes: list | None = None) -> tuple[str, str]:  # fmt: skip
    """The detector and the inpainter a job runs: `box` where boxes are given, else the one named,
    else `DETECTOR`; the inpainter named, else `INPAINTER`."""
    return ("box" if boxes else detector or settings.detector), (inpainter or settings.inpainter)


def detector_names() -> list[str]:
    """The detectors a job may name (`box` is chosen by giving boxes)."""
    return [n for n in DETECTORS.names() if n != "box"]


def inpainter_names() -> list[str]:
    return INPAINTERS.names()


def check_options(detector: str | None = None, inpainter: str | None = None, boxes: list | None = None,
                  frames: int | None = None, size: tuple[int, int] | None = None) -> None:  # fmt: skip
    """Refuse an unknown detector or inpainter, and a malformed box; with the video's `frames` and
    `size` (width, height), also a box that lies outside the picture."""
    if detector:
        DETECTORS.get(detector)
    if inpainter:
        INPAINTERS.get(inpainter)
    if boxes:
        found = BoxDetector(boxes)
        if frames is not None and size is not None:
            found.detect(None, frames, size)
