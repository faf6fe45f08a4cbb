"""Quality benchmark on the synthetic suite: waterz's engines against ffmpeg's `delogo` and
per-frame Telea.

Rows per clip:
  delogo (box)          ffmpeg's delogo filter on the true boxes
  telea (box)           waterz, `telea` engine, the same boxes
  temporal (box)        waterz, `temporal` engine, the same boxes
  telea (exact mask)    per-frame OpenCV Telea given the exact matte support, no re-encode (a reference)
  temporal (detected)   waterz defaults: its own `static` detection and `temporal`

Columns: in-mask PSNR against the clean clip (over the mark's pixels), PSNR outside the mark
against the clean clip, flicker (mean frame-to-frame change inside the mark, as a ratio of the
clean clip's own), and seconds.

    python bench/quality.py [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.run import remove_watermark  # noqa: E402
from synth import ClipSpec, MarkSpec, make_clip  # noqa: E402
from video import iter_frames  # noqa: E402

SUITE = {
    "pan, jumping white 60%": ClipSpec(frames=72, motion="pan", mark=MarkSpec(positions=((0, 20, 20), (36, 180, 160)))),
    "zoom, faint 35%, 29.97": ClipSpec(frames=72, fps=Fraction(30000, 1001), motion="zoom", source="coffee",
                                       mark=MarkSpec(opacity=0.35, positions=((0, 20, 20), (36, 180, 160)))),
    "shake, opaque colour": ClipSpec(frames=60, motion="shake", source="chelsea",
                                     mark=MarkSpec(opacity=1.0, color=(40, 60, 220), positions=((0, 200, 30),))),
    "locked-off, movers": ClipSpec(frames=60, motion="locked", source="astronaut", movers=2,
                                   mark=MarkSpec(opacity=0.5, positions=((0, 180, 190),))),
    "pan, Sora-like jumps": ClipSpec(frames=96, motion="pan", source="immunohistochemistry",
                                     mark=MarkSpec(text="Sora", scale=0.8, opacity=0.55, positions=(
                                         (0, 24, 24), (24, 200, 40), (48, 40, 180), (72, 190, 170)))),
}  # fmt: skip


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    d = (a.astype(np.float64) - b.astype(np.float64))[where]
    mse = float(np.mean(d**2)) if d.size else 0.0
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def flicker(frames: np.ndarray, where: np.ndarray) -> float:
    both = where[1:] & where[:-1]
    diff = np.abs(frames[1:].astype(np.float32) - frames[:-1].astype(np.float32)).mean(axis=-1)
    return float(diff[both].mean())


def true_ranges(clip, grow: int = 4):
    """(x, y, w, h, start, end) per mark position, boxes grown by `grow` pixels."""
    boxes = clip.mark_boxes()
    out, cur = [], None
    for i, b in enumerate(boxes):
        key = tuple(b[0]) if b else None
        if cur and key == cur[0]:
            cur[2] = i
        else:
            if cur and cur[0]:
                out.append(cur)
            cur = [key, i, i]
    if cur and cur[0]:
        out.append(cur)
    W, H = clip.spec.width, clip.spec.height
    ranges = []
    for (x, y, w, h), s, e in out:
        x0, y0 = max(1, x - grow), max(1, y - grow)
        ranges.append((x0, y0, min(W - 2, x + w + grow) - x0, min(H - 2, y + h + grow) - y0, s, e))
    return ranges


def run_delogo(src: Path, dst: Path, ranges) -> None:
    filters = ",".join(f"delogo=x={x}:y={y}:w={w}:h={h}:enable='between(n,{s},{e})'" for x, y, w, h, s, e in ranges)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(src), "-vf", filters,
           "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "copy", str(dst)]  # fmt: skip
    subprocess.run(cmd, check=True)


def telea_exact(frames: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = frames.copy()
    for i, (f, a) in enumerate(zip(frames, alpha)):
        m = (a > 0).astype(np.uint8)
        if m.any():
            out[i] = cv2.inpaint(f, m, 5, cv2.INPAINT_TELEA)
    return out


def evaluate(name: str, spec: ClipSpec, work: Path) -> list[tuple]:
    clip = make_clip(work / "clip.mp4", spec)
    marked = np.stack(list(iter_frames(clip.path)))
    inside = clip.alpha > 0.05
    outside = cv2.dilate(inside.astype(np.uint8).reshape(-1, spec.width), np.ones((15, 15), np.uint8)) == 0
    outside = outside.reshape(inside.shape)
    clean_flicker = flicker(clip.clean, inside)
    ranges = true_ranges(clip)
    box_args = [f"{x},{y},{w},{h}@{s}-{e}" for x, y, w, h, s, e in ranges]
    rows = []

    def score(label: str, result: np.ndarray, seconds: float) -> None:
        rows.append((name, label, psnr(result, clip.clean, inside), psnr(result, clip.clean, outside),
                     flicker(result, inside) / clean_flicker, seconds / spec.frames))  # fmt: skip

    t0 = time.perf_counter()
    run_delogo(clip.path, work / "delogo.mp4", ranges)
    score("delogo (box)", np.stack(list(iter_frames(work / "delogo.mp4"))), time.perf_counter() - t0)
    for engine in ("telea", "temporal"):
        t0 = time.perf_counter()
        remove_watermark(clip.path, work / f"{engine}.mp4", inpainter=engine, boxes=box_args)
        score(f"{engine} (box)", np.stack(list(iter_frames(work / f"{engine}.mp4"))), time.perf_counter() - t0)
    t0 = time.perf_counter()
    score("telea (exact mask)", telea_exact(marked, clip.alpha), time.perf_counter() - t0)
    t0 = time.perf_counter()
    remove_watermark(clip.path, work / "auto.mp4")
    score("temporal (detected)", np.stack(list(iter_frames(work / "auto.mp4"))), time.perf_counter() - t0)
    rows.append((name, "input (marked)", psnr(marked, clip.clean, inside), psnr(marked, clip.clean, outside),
                 flicker(marked, inside) / clean_flicker, 0.0))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the clips and results here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or Path(tmp)
        for i, (name, spec) in enumerate(SUITE.items()):
            work = base / f"clip{i}"
            work.mkdir(parents=True, exist_ok=True)
            rows.extend(evaluate(name, spec, work))
    print("| clip | engine | in-mask PSNR dB | outside PSNR dB | flicker x clean | s/frame |")
    print("|---|---|---|---|---|---|")
    for clip, label, pin, pout, fl, spf in rows:
        print(f"| {clip} | {label} | {pin:.2f} | {pout:.2f} | {fl:.2f} | {spf:.3f} |")
    print()
    labels = sorted({r[1] for r in rows}, key=[r[1] for r in rows].index)
    print("| engine | mean in-mask PSNR dB | mean outside PSNR dB | mean flicker x clean |")
    print("|---|---|---|---|")
    for label in labels:
        sel = [r for r in rows if r[1] == label]
        print(f"| {label} | {np.mean([r[2] for r in sel]):.2f} | {np.mean([r[3] for r in sel]):.2f} | "
              f"{np.mean([r[4] for r in sel]):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
