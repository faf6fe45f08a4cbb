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

from waterz.core.settings import Settings

OWN = "waterz (this project)"
PROPAINTER_WEIGHTS = "NTU S-Lab License 1.0: non-commercial use only"
ULTRALYTICS = "AGPL-3.0 (Ultralytics; commercial use beyond it needs an Ultralytics Enterprise licence)"


@dataclass(frozen=True)
class Engine:
    """One engine's fixed facts. `packages`: the Python packages it imports; `weights`: what
    model weights it loads (None: none); `ready`: whether what else it needs is here, and why
    (None: nothing else); `refused`: why a job naming it cannot run here at all, its weights
    missing (None: it can; see `refusal`)."""

    kind: str
    name: str
    does: str
    device: str
    code_licence: str
    weights: str | None = None
    weights_licence: str | None = None
    packages: tuple[str, ...] = ()
    ready: Callable[[Settings], tuple[bool, str]] | None = None
    refused: Callable[[Settings], str | None] | None = None


def _yolo_ready(settings: Settings) -> tuple[bool, str]:
    path = settings.yolo_weights
    if path is None:
        return False, "needs weights: set YOLO_WEIGHTS (waterz train-detector makes them)"
    if not Path(path).expanduser().is_file():
        return False, f"YOLO_WEIGHTS '{path}' does not exist"
    return True, f"weights {path}"


def _yolo_refused(settings: Settings) -> str | None:
    path = settings.yolo_weights
    if path is None:
        return ("The yolo detector needs weights: set YOLO_WEIGHTS to a model file where the workers run "
                "(waterz train-detector makes one from a logo image).")  # fmt: skip
    if not Path(path).expanduser().is_file():
        return f"YOLO weights '{path}' do not exist (YOLO_WEIGHTS); waterz train-detector makes them from a logo image."
    return None


def _auto_detector_refused(settings: Settings) -> str | None:
    """`auto` runs yolo where YOLO_WEIGHTS is set."""
    return _yolo_refused(settings) if settings.yolo_weights else None


def _propainter_weights(settings: Settings) -> list[str]:
    """ProPainter's weights files that are not usable in WEIGHTS_DIR, each with why."""
    from propainter.weights import PROPAINTER_MODELS, named_weights

    return [f"{m} {s}" for m, s in named_weights(settings.weights_dir, PROPAINTER_MODELS).items() if s != "ok"]


def _propainter_refused(settings: Settings) -> str | None:
    from propainter.weights import missing_weights

    bad = _propainter_weights(settings)
    return missing_weights(Path(settings.weights_dir).expanduser(), bad) if bad else None


def _propainter_missing(settings: Settings) -> list[str]:
    """What ProPainter lacks here (nothing: it can run)."""
    from propainter.auto import nvidia_driver

    reasons = []
    if any(importlib.util.find_spec(p) is None for p in ("torch", "pytorchcv")):
        reasons.append("the ML extras are not installed")
    if not nvidia_driver():
        reasons.append("no CUDA device (no NVIDIA driver)")
    bad = _propainter_weights(settings)
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
           "CPU", OWN, "the presets' mattes, measured from real downloads (detector/presets)", OWN,
           refused=_auto_detector_refused),
    Engine("detector", "sora", "the Sora mark, by its matte's edges", "CPU", OWN,
           "detector/presets/sora.png", OWN),
    Engine("detector", "tiktok", "the TikTok mark and the @username line under it", "CPU", OWN,
           "detector/presets/tiktok.png", OWN),
    Engine("detector", "static", "any mark that stays put while the picture changes", "CPU", OWN),
    Engine("detector", "box", "the boxes the job gives (no detection)", "CPU", OWN),
    Engine("detector", "yolo", "a logo a model was trained for (waterz train-detector)", "CPU or GPU",
           ULTRALYTICS, "yours, from YOLO_WEIGHTS", "those of your training data; Ultralytics holds that "
           "models trained with it fall under AGPL-3.0", ("ultralytics",), _yolo_ready, _yolo_refused),
    Engine("inpainter", "auto", "unblend for a semi-transparent mark; propainter for an opaque or animated "
           "one where CUDA and its weights are present, else unblend", "CPU; GPU where present", OWN,
           "ProPainter's, where it runs", PROPAINTER_WEIGHTS, ready=_auto_inpainter_ready),
    Engine("inpainter", "unblend", "temporal fill plus the mark's blend inverted", "CPU", OWN),
    Engine("inpainter", "temporal", "the picture taken from other frames where the spot was visible", "CPU", OWN),
    Engine("inpainter", "telea", "OpenCV's spatial inpainting, frame by frame", "CPU", "Apache-2.0 (OpenCV)"),
    Engine("inpainter", "propainter", "ProPainter video inpainting (pytorchcv)", "GPU (CUDA)",
           "MIT (pytorchcv); ProPainter's model code NTU S-Lab License 1.0",
           "raft_things, propainter_rfc, propainter in WEIGHTS_DIR", PROPAINTER_WEIGHTS, ("torch", "pytorchcv"),
           _propainter_ready, _propainter_refused),
)  # fmt: skip


def engines(settings: Settings, refused: Callable[[str, str], str | None] | None = None) -> dict[str, list[dict]]:
    """The catalogue as JSON-able rows by kind, each with `default`, `available` (and `why`) and
    `refused` (why a job naming it is refused before it is queued; null: it is taken), by
    `refused(kind, name)` where given (the service asks its workers), else by `refusal` here."""
    defaults = {"detector": settings.detector, "inpainter": settings.inpainter}
    refused = refused or (lambda kind, name: refusal(kind, name, settings))
    out: dict[str, list[dict]] = {"detectors": [], "inpainters": []}
    for e in CATALOGUE:
        available, why = _availability(e, settings)
        out[f"{e.kind}s"].append({
            "name": e.name, "does": e.does, "default": defaults[e.kind] == e.name, "device": e.device,
            "available": available, "why": why, "refused": refused(e.kind, e.name), "code_licence": e.code_licence,
            "weights": e.weights, "weights_licence": e.weights_licence,
        })  # fmt: skip
    return out


def refusal(kind: str, name: str, settings: Settings) -> str | None:
    """Why a job naming this engine cannot run with these settings (its packages or its weights
    missing), as a sentence that says what to do; None where it can (unknown names included: the
    registries refuse those). Needing a GPU is no refusal: ProPainter also runs on the CPU."""
    for e in CATALOGUE:
        if (e.kind, e.name) != (kind, name):
            continue
        missing = [p for p in e.packages if importlib.util.find_spec(p) is None]
        if missing:
            return (f"The {name} {kind} needs the ML extras ({', '.join(missing)}), which are not installed: "
                    "pip install -e '.[ml]' (./run.sh: WATERZ_ML=1).")  # fmt: skip
        return e.refused(settings) if e.refused else None
    return None


def refusals(settings: Settings) -> dict[str, str | None]:
    """`refusal` for every engine, by `kind:name` (what each worker tells the API)."""
    return {f"{e.kind}:{e.name}": refusal(e.kind, e.name, settings) for e in CATALOGUE}


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
            if r["refused"]:
                lines.append(f"    jobs refused: {r['refused']}")
    return "\n".join(lines)


def _availability(e: Engine, settings: Settings) -> tuple[bool, str]:
    missing = [p for p in e.packages if importlib.util.find_spec(p) is None]
    if missing:
        return False, f"needs the ML extras ({', '.join(missing)}): pip install -e '.[ml]'"
    return e.ready(settings) if e.ready else (True, "nothing to install")
