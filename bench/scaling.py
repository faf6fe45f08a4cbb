"""Scaling: the same job on 1 and on 2 Celery workers, through the real service (a private
redis-server, the API and the workers as subprocesses, `CPU_THREADS=1` so a worker stands for one
device). Prints the wall time of each run (from `POST /api/process` to SUCCESS), where that time
went, and the speed-up.

    python bench/scaling.py [--frames 240] [--segments 4] [--inpainter temporal]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from synth import ClipSpec, MarkSpec, make_clip  # noqa: E402
from tests.service import Service  # noqa: E402


def run(clip_path: Path, workers: int, segments: int, inpainter: str, workdir: Path) -> dict:
    env = {"MIN_SEGMENTS": str(segments), "MIN_CHUNK_FRAMES": "12", "CPU_THREADS": "1"}
    service = Service(workdir, workers=workers, env=env)
    try:
        task_id = service.upload(clip_path).raise_for_status().json()["task_id"]
        start = time.time()
        service.http.post("/api/process", json={"task_id": task_id, "inpainter": inpainter}).raise_for_status()
        status = service.wait(task_id, timeout=1800)
        wall = time.time() - start
    finally:
        service.close()
    if status["state"] != "SUCCESS":
        raise SystemExit(f"job failed: {status.get('error')}")
    segs = status["metadata"]["segments"]
    first_start = min(s["started_at"] for s in segs)
    last_end = max(s["finished_at"] for s in segs)
    return {
        "workers": workers,
        "wall": wall,
        "segments": len(segs),
        "until_first_segment": first_start - start,
        "segment_seconds": sum(s["finished_at"] - s["started_at"] for s in segs),
        "median_segment": statistics.median(s["finished_at"] - s["started_at"] for s in segs),
        "after_last_segment": status["metadata"]["finished_at"] - last_end,
        "by_worker": sorted({s["worker"].split("@")[0] for s in segs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--inpainter", default="temporal")
    args = parser.parse_args()
    spec = ClipSpec(width=480, height=272, frames=args.frames, motion="pan", source="chelsea",
                    mark=MarkSpec(text="waterz", scale=1.6, opacity=0.6, positions=((0, 40, 40),)))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        clip = make_clip(base / "clip.mp4", spec)
        rows = [run(clip.path, n, args.segments, args.inpainter, base / f"run{n}") for n in (1, 2)]
    print(f"clip: {spec.width}x{spec.height}, {spec.frames} frames, inpainter {args.inpainter}, "
          f"MIN_SEGMENTS={args.segments}, CPU_THREADS=1 per worker")  # fmt: skip
    print("| workers | wall s | segments | s until first segment starts | segment s (sum) | median segment s |"
          " s after last segment | workers used |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['wall']:.1f} | {r['segments']} | {r['until_first_segment']:.1f} | "
              f"{r['segment_seconds']:.1f} | {r['median_segment']:.1f} | {r['after_last_segment']:.1f} | "
              f"{', '.join(r['by_worker'])} |")  # fmt: skip
    print(f"speed-up, 2 workers vs 1: {rows[0]['wall'] / rows[1]['wall']:.2f}x")


if __name__ == "__main__":
    main()
