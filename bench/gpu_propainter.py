"""ProPainter engine throughput: frames per second and peak device memory for crops of 208x176,
432x240 and 864x480 (80-frame segments by default), fp32 and fp16, plus one whole job through the
engine. Runs on a GPU, or on the CPU for a quick check:

    python bench/gpu_propainter.py                       # CUDA, weights from WEIGHTS_DIR
    python bench/gpu_propainter.py --device cpu --frames 12

Without the published weights (`waterz weights download`), `--random-weights` (or their absence)
uses freshly initialised models: the arithmetic, and so the speed and memory, are the same; the
pictures are not.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from propainter.propainter_cv import ProPainterInpainter  # noqa: E402
from propainter.weights import PROPAINTER_MODELS, WeightStore, fresh_weights, published  # noqa: E402
from waterz.core.errors import WeightsMissing  # noqa: E402
from waterz.core.settings import get_settings  # noqa: E402
from waterz.pipeline.run import remove_watermark  # noqa: E402
from waterz.synth import ClipSpec, MarkSpec, make_clip  # noqa: E402

SIZES = ((208, 176), (432, 240), (864, 480))


def segment(frames: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """A moving texture with a mark-sized hole in the middle."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h + frames, w + frames, 3), np.uint8)
    video = np.stack([base[t : t + h, t : t + w] for t in range(frames)])
    masks = np.zeros((frames, h, w), bool)
    masks[:, h // 3 : h // 3 + h // 4, w // 4 : w // 4 + w // 2] = True
    return video, masks


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--random-weights", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="waterz-gpu-bench-"))
    store, kind = None, "published"
    if not args.random_weights:
        try:
            store = WeightStore(get_settings().weights_dir, published(PROPAINTER_MODELS))
            store.require()
        except WeightsMissing:
            store = None
    if store is None:
        store, kind = fresh_weights(tmp), "random (same speed, not the same pictures)"
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"device: {args.device} ({name}), torch {torch.__version__}, weights: {kind}, {args.frames} frames/segment")
    print("| crop | precision | frames/s | s/frame | peak memory MB |")
    print("|---|---|---|---|---|")
    precisions = (False, True) if args.device == "cuda" else (False,)
    for fp16 in precisions:
        engine = ProPainterInpainter(device=args.device, fp16=fp16, weights=store)
        for w, h in SIZES:
            if args.device == "cpu" and w > 432:
                print(f"| {w}x{h} | fp32 | skipped on the CPU | | |")
                continue
            video, masks = segment(args.frames, w, h)
            engine.inpaint(video[:8], masks[:8], 0, 7)  # warm-up (kernels, allocator)
            if args.device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            engine.inpaint(video, masks, 0, args.frames - 1)
            if args.device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            print(f"| {w}x{h} | {'fp16' if fp16 else 'fp32'} | {args.frames / seconds:.2f} | "
                  f"{seconds / args.frames:.3f} | {peak_memory_mb(args.device):.0f} |")  # fmt: skip
    jump = max(12, args.frames // 2)
    spec = ClipSpec(width=640, height=360, frames=2 * jump, motion="pan",
                    mark=MarkSpec(text="Sora", scale=1.0, positions=((0, 40, 40), (jump, 400, 250))))  # fmt: skip
    clip = make_clip(tmp / "job.mp4", spec)
    boxes = [f"{x},{y},{w},{h}@{s}-{s + jump - 1}" for s in (0, jump) for x, y, w, h in [clip.mark_boxes()[s][0]]]
    engine = ProPainterInpainter(device=args.device, weights=store, fp16=get_settings().propainter_fp16)
    start = time.perf_counter()
    summary = remove_watermark(clip.path, tmp / "clean.mp4", inpainter="propainter", boxes=boxes, engine=engine)
    wall = time.perf_counter() - start
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary["seconds"].items())
    print(f"whole job (given boxes), {spec.width}x{spec.height}, {spec.frames} frames, "
          f"{len(summary['segments'])} segments: "
          f"{wall:.1f} s ({stages}); frames written {summary['frames_written']}/{spec.frames}")  # fmt: skip


if __name__ == "__main__":
    main()
