"""Load: N videos uploaded at once (default 20) through the real service (a private redis-server,
the API and 2 Celery workers as subprocesses), each processed; every job must end in SUCCESS with
every frame, finalize run once, and nothing lost. Prints upload and job latencies, how long the
API took to answer status calls under load, and the figures per job.

    python bench/load.py [--jobs 20] [--workers 2] [--frames 48]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.service import Service  # noqa: E402
from waterz.synth import ClipSpec, MarkSpec, make_clip  # noqa: E402
from waterz.video import probe  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        clips = []
        for i in range(args.jobs):  # different pictures and mark places, so no two jobs are alike
            spec = ClipSpec(frames=args.frames, motion=("pan", "shake", "zoom")[i % 3], seed=i,
                            mark=MarkSpec(positions=((0, 16 + 7 * i, 16 + 5 * i),)))  # fmt: skip
            clips.append(make_clip(base / f"clip{i:02d}.mp4", spec))
        service = Service(base / "service", workers=args.workers, env={"MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12"})
        try:
            run(service, clips, args, base)
        finally:
            service.close()


def run(service: Service, clips, args, base: Path) -> None:
    def upload_and_process(clip):
        t0 = time.time()
        r = service.upload(clip.path)
        uploaded = time.time()
        if r.status_code != 200:
            return {"clip": clip, "upload_status": r.status_code, "detail": r.text}
        task_id = r.json()["task_id"]
        p = service.http.post("/api/process", json={"task_id": task_id})
        return {"clip": clip, "upload_status": r.status_code, "process_status": p.status_code, "task_id": task_id,
                "upload_s": uploaded - t0, "queued_at": time.time()}  # fmt: skip

    start = time.time()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # all at once
        jobs = list(pool.map(upload_and_process, clips))
    uploads_done = time.time() - start
    refused = [j for j in jobs if j["upload_status"] != 200 or j.get("process_status") != 202]
    if refused:
        raise SystemExit(f"{len(refused)} uploads refused: {refused[0]}")

    status_latency: list[float] = []
    pending = {j["task_id"]: j for j in jobs}
    deadline = time.time() + 1800
    while pending and time.time() < deadline:
        for task_id, job in list(pending.items()):
            t0 = time.perf_counter()
            status = service.http.get(f"/api/status/{task_id}").json()
            status_latency.append(time.perf_counter() - t0)
            if status["state"] in ("SUCCESS", "FAILURE"):
                job["status"], job["done_at"] = status, time.time()
                del pending[task_id]
        time.sleep(0.5)
    wall = time.time() - start

    ok, lines = 0, []
    for k, job in enumerate(jobs):
        status = job.get("status")
        if status is None:
            lines.append(f"| {k} | still running | | | | |")
            continue
        frames = "-"
        if status["state"] == "SUCCESS":
            out = service.download(status, base / f"out{k}.mp4")
            frames = probe(out).frames
            ok += frames == job["clip"].spec.frames and status["metadata"]["finalize_runs"] == 1
        meta = status["metadata"]
        seconds = job["done_at"] - job["queued_at"]
        lines.append(f"| {k} | {status['state']} | {seconds:.1f} | {meta['total_segments']} | "
                     f"{frames}/{job['clip'].spec.frames} | {meta['finalize_runs']} |")  # fmt: skip
    latencies = [j["done_at"] - j["queued_at"] for j in jobs if "done_at" in j]
    uploads = [j["upload_s"] for j in jobs]
    print(f"{args.jobs} jobs uploaded at once, {args.workers} workers (threads pool, concurrency 1), "
          f"320x240 clips of {args.frames} frames")  # fmt: skip
    print("| job | state | s from process to end | segments | frames out/in | finalize runs |")
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))
    print()
    print(f"all {args.jobs} uploads answered in {uploads_done:.1f} s "
          f"(per upload: median {statistics.median(uploads):.2f} s, max {max(uploads):.2f} s)")  # fmt: skip
    print(f"jobs complete and correct: {ok} of {args.jobs}; lost: {len(pending)}; wall {wall:.1f} s "
          f"({args.jobs * args.frames / wall:.1f} frames/s overall)")  # fmt: skip
    if latencies:
        print(f"job latency s: min {min(latencies):.1f}, median {statistics.median(latencies):.1f}, "
              f"max {max(latencies):.1f}")  # fmt: skip
    ms = [1000 * s for s in status_latency]
    print(f"GET /api/status under load ({len(ms)} calls): median {statistics.median(ms):.1f} ms, "
          f"p95 {pct(ms, 95):.1f} ms, max {max(ms):.1f} ms")  # fmt: skip
    if ok != args.jobs:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
