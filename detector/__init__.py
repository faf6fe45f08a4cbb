"""Watermark detectors behind one protocol, picked by name from a lazy registry."""

from __future__ import annotations

from detector.base import Detector, FrameMarks
from waterz.core.registry import LazyRegistry

DETECTORS = LazyRegistry(
    "detector",
    {
        "static": "detector.static:StaticDetector",
        "box": "detector.box:BoxDetector",
        "yolo": "detector.yolo:YoloDetector",
        "sora": "detector.preset:sora",
        "tiktok": "detector.preset:tiktok",
        "auto": "detector.auto:AutoDetector",
    },
)


def create_detector(name: str, **kwargs) -> Detector:
    """Build the detector registered as `name`; unknown names raise `UnknownEngine` listing the known ones."""
    return DETECTORS.create(name, **kwargs)


__all__ = ["DETECTORS", "Detector", "FrameMarks", "create_detector"]
