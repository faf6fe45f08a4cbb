"""`auto`: the `yolo` detector when YOLO weights are configured, else the weights-free `static`."""

from __future__ import annotations

from waterz.settings import get_settings


def choose_detector(weights: str | None = None, **kwargs):
    if weights or get_settings().yolo_weights:
        from detector.yolo import YoloDetector

        return YoloDetector(weights=weights, **kwargs)
    from detector.static import StaticDetector

    return StaticDetector(**kwargs)
