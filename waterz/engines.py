"""Every detector and inpainter a job may name: what it needs, whether it can run here, and the
licences of its code and of its weights (`waterz engines`, `GET /api/engines`).

Availability is found without importing torch (about 470 MB): installed packages by their
import spec, a CUDA device by the NVIDIA driver's library, ProPainter's weights by their files
in `WEIGHTS_DIR` (each file's SHA-1 against the prefix its published name carries).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from waterz.settings import Settings

OWN = "waterz (this project)"
PROPAINTER_WEIGHTS = "NTU S-Lab License 1.0: non-commercial use only"
ULTRALYTICS = "AGPL-3.0 (Ultralytics; commercial use beyond it needs an Ultralytics Enterprise licence)"


@dataclass(frozen=True)
class Engine:
    """One engine's fixed facts. `packages`: the Python packages it imports; `weights`: what
    model weights it loads (None: none); `ready`: whether what else it needs is here, and why
    (None: nothing else)."""

    kind: str
    name: str
    does: str
    device: str
    code_licence: str
    weights: str | None = None
    weights_licence: str | None = None
    packages: tuple[str, ...] = ()
    ready: Callable[[Settings], tuple[bool, str]] | None = None


def _yolo_ready(settings: Settings) -> tuple[bool, str]:
    path = settings.yolo_weights
    if path is None:
        return False, "needs weights: set YOLO_WEIGHTS (waterz train-detector makes them)"
    if not Path(path).expanduser().is_file():
        return False, f"YOLO_WEIGHTS '{path}' does not exist"
    return True, f"weights {path}"


def _propainter_missing(settings: Settings) -> list[str]:
    """What ProPainter lacks here (nothing: it can run)."""
    from propainter.auto import nvidia_driver
    from propainter.weights import PROPAINTER_MODELS, named_weights

    reasons = []
    if any(importlib.util.find_spec(p) is None for p in ("torch", "pytorchcv")):
        reasons.append("the ML extras are not installed")
    if not nvidia_driver():
        reasons.append("no CUDA device (no NVIDIA driver)")
    bad = [f"{m} {s}" for m, s in named_weights(settings.weights_dir, PROPAINTER_MODELS).items() if s != "ok"]
    if bad:
        reasons.append(f"weights in {Path(settings.weights_dir).expanduser()}: {', '.join(bad)}")
    return reasons


def _propainter_ready(settings: Settings) -> tuple[bool, str]:
    missing = _propainter_missing(settings)
    return not missing, "; ".join(missing) or "CUDA and weights present"


def _auto_inpainter_ready(settings: Settings) -> tuple[bool, str]:
    """Always: only which engine its opaque and animated marks get depends on ProPainter."""
    missing = _propainter_missing(settings)
    return True, "opaque and animated marks go to " + (f"unblend ({'; '.join(missing)})" if missing else "propainter")


CATALOGUE = (
    Engine("detector", "auto", "the known marks' presets (Sora, TikTok), then the generic static detector",
           "CPU", OWN, "the presets' mattes, measured from real downloads (detector/presets)", OWN),
    Engine("detector", "sora", "the Sora mark, by its matte's edges", "CPU", OWN,
           "detector/presets/sora.png", OWN),
    Engine("detector", "tiktok", "the TikTok mark and the @username line under it", "CPU", OWN,
           "detector/presets/tiktok.png", OWN),
    Engine("detector", "static", "any mark that stays put while the picture changes", "CPU", OWN),
    Engine("detector", "box", "the boxes the job gives (no detection)", "CPU", OWN),
    Engine("detector", "yolo", "a logo a model was trained for (waterz train-detector)", "CPU or GPU",
           ULTRALYTICS, "yours, from YOLO_WEIGHTS", "those of your training data; Ultralytics holds that "
           "models trained with it fall under AGPL-3.0", ("ultralytics",), _yolo_ready),
    Engine("inpainter", "auto", "unblend for a semi-transparent mark; propainter for an opaque or animated "
           "one where CUDA and its weights are present, else unblend", "CPU; GPU where present", OWN,
           "ProPainter's, where it runs", PROPAINTER_WEIGHTS, ready=_auto_inpainter_ready),
    Engine("inpainter", "unblend", "temporal fill plus the mark's blend inverted", "CPU", OWN),
    Engine("inpainter", "temporal", "the picture taken from other frames where the spot was visible", "CPU", OWN),
    Engine("inpainter", "telea", "OpenCV's spatial inpainting, frame by frame", "CPU", "Apache-2.0 (OpenCV)"),
    Engine("inpainter", "propainter", "ProPainter video inpainting (pytorchcv)", "GPU (CUDA)",
           "MIT (pytorchcv); ProPainter's model code NTU S-Lab License 1.0",
           "raft_things, propainter_rfc, propainter in WEIGHTS_DIR", PROPAINTER_WEIGHTS, ("torch", "pytorchcv"),
           _propainter_ready),
)  # fmt: skip


def engines(settings: Settings) -> dict[str, list[dict]]:
    """The catalogue as JSON-able rows by kind, each with `default` and `available` (and `why`)."""
    defaults = {"detector": settings.detector, "inpainter": settings.inpainter}
    out: dict[str, list[dict]] = {"detectors": [], "inpainters": []}
    for e in CATALOGUE:
        available, why = _availability(e, settings)
        out[f"{e.kind}s"].append({
            "name": e.name, "does": e.does, "default": defaults[e.kind] == e.name, "device": e.device,
            "available": available, "why": why, "code_licence": e.code_licence, "weights": e.weights,
            "weights_licence": e.weights_licence,
        })  # fmt: skip
    return out


def as_text(listing: dict[str, list[dict]]) -> str:
    """What `waterz engines` prints: one block per engine."""
    lines = []
    for kind, rows in listing.items():
        lines.append(f"{kind}:")
        for r in rows:
            flags = (["default"] if r["default"] else []) + ["available" if r["available"] else "not available"]
            lines.append(f"  {r['name']} ({', '.join(flags)}): {r['does']}")
            lines.append(f"    runs on: {r['device']}; {r['why']}")
            lines.append(f"    code licence: {r['code_licence']}")
            if r["weights"]:
                lines.append(f"    weights: {r['weights']}; licence: {r['weights_licence']}")
    return "\n".join(lines)


def _availability(e: Engine, settings: Settings) -> tuple[bool, str]:
    missing = [p for p in e.packages if importlib.util.find_spec(p) is None]
    if missing:
        return False, f"needs the ML extras ({', '.join(missing)}): pip install -e '.[ml]'"
    return e.ready(settings) if e.ready else (True, "nothing to install")
