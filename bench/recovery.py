"""Crash recovery with the default settings (LEASE_S, REAPER_INTERVAL_S): the same job twice
through the real service (a private redis-server, the API, 3 Celery workers as subprocesses, so a
free worker is there to take over), the second time with the worker of a running segment
SIGKILLed halfway through it. Prints how long the segment took to be taken up again and what the
crash cost the job, and checks the result.

    python bench/recovery.py [--broker redis|amqp://127.0.0.1:5672//]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from kombu import Connection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.service import Service  # noqa: E402
from waterz.core.settings import Settings  # noqa: E402
from waterz.synth import ClipSpec, MarkSpec, make_clip  # noqa: E402
from waterz.video import iter_frames, probe  # noqa: E402

SPEC = ClipSpec(width=480, height=272, frames=200, motion="pan", source="chelsea",
                mark=MarkSpec(scale=1.6, opacity=0.6, positions=((0, 40, 40),)))  # fmt: skip


def start_job(service: Service, path: Path) -> tuple[str, float]:
    task_id = service.upload(path).raise_for_status().json()["task_id"]
    service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
    return task_id, time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="redis", help="redis (the default) or an amqp:// URL")
    args = parser.parse_args()
    defaults = Settings()
    env = {"MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12"}
    if args.broker != "redis":
        env |= {"BROKER_URL": args.broker, "TASK_QUEUE": f"waterz-bench-{uuid.uuid4().hex[:8]}"}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        clip = make_clip(base / "clip.mp4", SPEC)
        service = Service(base / "service", workers=3, env=env)
        try:
            task_id, t0 = start_job(service, clip.path)
            calm = service.wait(task_id, timeout=900)
            calm_s = time.time() - t0
            segs = calm["metadata"]["segments"]
            print(f"clip {SPEC.width}x{SPEC.height}, {SPEC.frames} frames; broker {args.broker}; "
                  f"LEASE_S={defaults.lease_s:g}, REAPER_INTERVAL_S={defaults.reaper_interval_s:g}, 3 workers")
            print(f"without a crash: {calm['state']} in {calm_s:.1f} s; segments took "
                  + ", ".join(f"{s['finished_at'] - s['started_at']:.1f} s" for s in segs))

            task_id, t0 = start_job(service, clip.path)
            victim = None
            while victim is None:
                for seg in service.http.get(f"/api/status/{task_id}").json()["metadata"]["segments"]:
                    if seg["started_at"] and not seg["finished_at"]:
                        victim = seg
                time.sleep(0.05)
            typical = max(s["finished_at"] - s["started_at"] for s in segs)
            time.sleep(max(0.0, victim["started_at"] + typical / 2 - time.time()))  # halfway through it
            name = victim["worker"].split("@")[0]
            proc = service.workers[int(name.removeprefix("worker")) - 1]
            os.killpg(proc.pid, signal.SIGKILL)
            killed = time.time()
            print(f"SIGKILL {name} {killed - victim['started_at']:.1f} s into segment {victim['index']}")
            status = service.wait(task_id, timeout=900)
            done = time.time()
        finally:
            service.close()
            if "TASK_QUEUE" in env:  # leave nothing behind in the operator's RabbitMQ
                with Connection(env["BROKER_URL"]) as conn:
                    conn.default_channel.queue_delete(env["TASK_QUEUE"])
        seg = next(s for s in status["metadata"]["segments"] if s["index"] == victim["index"])
        print(f"state {status['state']}; segment {seg['index']}: attempts {seg['attempts']}, "
              f"recorded attempt {seg['result_attempt']}, now on {seg['worker'].split('@')[0]}")
        print(f"taken up again {seg['started_at'] - killed:.1f} s after the kill; job done {done - killed:.1f} s "
              f"after it; whole job {done - t0:.1f} s vs {calm_s:.1f} s without a crash; "
              f"finalize runs {status['metadata']['finalize_runs']}")  # fmt: skip
        out = base / "service" / "storage" / "results" / f"{task_id}.mp4"  # file:// storage, read directly
        info = probe(out)
        before = np.stack(list(iter_frames(clip.path)))
        after = np.stack(list(iter_frames(out)))
        marked = clip.alpha > 0.05
        away = np.ones_like(marked)
        away[:, :140, :300] = False  # beyond every crop around the mark
        mse = lambda a, b, m: float(np.mean((a.astype(float) - b.astype(float))[m] ** 2))  # noqa: E731
        print(f"result: {info.frames}/{SPEC.frames} frames, {info.fps} fps, audio {info.has_audio}; "
              f"PSNR away from the mark vs the input {10 * np.log10(255**2 / mse(after, before, away)):.2f} dB; "
              f"in-mark PSNR vs clean {10 * np.log10(255**2 / mse(before, clip.clean, marked)):.2f} dB before, "
              f"{10 * np.log10(255**2 / mse(after, clip.clean, marked)):.2f} dB after")  # fmt: skip


if __name__ == "__main__":
    main()
