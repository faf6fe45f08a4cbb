"""Abuse: the rows of issue 20's table sent to the real service (private redis-server, API and
Celery workers as subprocesses, and `waterz up` for the supervisor), printing what each got.

    python bench/abuse.py [--upload-mb 600] [--concurrent 100]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.service import Service, children, chunked_upload  # noqa: E402
from waterz.service import free_port  # noqa: E402
from waterz.synth import ClipSpec, make_clip  # noqa: E402
from waterz.synth.hostile import flat_video, long_mkv_claiming, looped, size_switching_stream  # noqa: E402

WATERZ = str(Path(sys.executable).with_name("waterz"))
KEY = "bench-key-not-a-secret"


def row(number: str, what: str, got: str) -> None:
    print(f"| {number} | {what} | {got} |", flush=True)


def _get(http: httpx.Client, path: str) -> tuple[int, float]:
    start = time.monotonic()
    try:
        code = http.get(path).status_code
    except httpx.HTTPError:
        code = 0
    return code, time.monotonic() - start


def monitoring_flood(svc: Service, job: str, count: int) -> None:
    # one client with a connection per request: the times are the server's, not the making of
    # 100 clients (each builds its own TLS context) on the same two cores
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    with httpx.Client(base_url=str(svc.http.base_url), timeout=30, limits=limits) as http:
        paths = (["/metrics", "/api/health", "/api/workers"] * count)[:count]
        with ThreadPoolExecutor(count + 1) as pool:
            answers = pool.map(_get, [http] * count, paths)
            during = [_get(http, f"/api/status/{job}") for _ in range(5)]
            answers = list(answers)
        after = _get(http, "/api/health")
    codes = sorted({c for c, _ in answers})
    row("1", f"{count} concurrent GET /metrics, /api/health, /api/workers",
        f"codes {codes}, slowest {max(t for _, t in answers):.2f} s, "
        f"median {np.median([t for _, t in answers]):.2f} s; "
        f"/api/status during them: slowest {max(t for _, t in during):.2f} s; "
        f"/api/health after: {after[0]} in {after[1]:.2f} s")  # fmt: skip


def chunked_flood(svc: Service, megabytes: int) -> None:
    peak, done = [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], svc.api_temp_bytes())
            time.sleep(0.02)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    start = time.monotonic()
    answer, sent = chunked_upload(svc.port, megabytes)
    done.set()
    watcher.join()
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    detail = answer.rsplit(b"\r\n\r\n", 1)[-1].decode(errors="replace")
    row("2", f"chunked upload of {megabytes} MB, MAX_UPLOAD_MB 20",
        f"{status} {detail} after {sent / 2**20:.1f} MB sent, {time.monotonic() - start:.1f} s; "
        f"API temp files at most {peak[0] / 2**20:.1f} MB, {svc.api_temp_bytes() / 2**20:.1f} MB after")  # fmt: skip


def _up(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([WATERZ, "up", "--port", str(port), "--workers", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    for line in proc.stdout:
        if f"http://127.0.0.1:{port}/" in line:
            return proc
    raise RuntimeError("waterz up did not start")


def _wait(http: httpx.Client, job: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while (status := http.get(f"/api/status/{job}").json())["state"] not in ("SUCCESS", "FAILURE"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return status


def supervisor(base: Path, clip: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(STORAGE_URL=f"file://{base / 'up-data'}", LEASE_S="3", REAPER_INTERVAL_S="1")
    port = free_port()
    up = _up(env, port)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        while http.get("/api/health").json()["workers"] < 2:
            time.sleep(0.5)
        others = {p: c for p, c in children(up.pid).items() if "celery" not in c}
        with open(clip, "rb") as f:
            job = http.post("/api/upload", files={"file": ("clip.mp4", f)}).json()["task_id"]
        http.post("/api/process", json={"task_id": job}).raise_for_status()
        while http.get(f"/api/status/{job}").json()["state"] == "PENDING":
            time.sleep(0.1)
        victim = min(p for p, c in children(up.pid).items() if "celery" in c)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        while len([p for p, c in children(up.pid).items() if "celery" in c and p != victim]) < 2:
            time.sleep(0.1)
        back = time.monotonic() - killed
        kept = {p: c for p, c in children(up.pid).items() if "celery" not in c} == others
        status = _wait(http, job)
    finally:
        up.send_signal(signal.SIGTERM)
        up.communicate(timeout=60)
    port = free_port()
    up = _up(env, port)
    try:
        again = httpx.get(f"http://127.0.0.1:{port}/api/status/{job}", timeout=30).json()
    finally:
        up.send_signal(signal.SIGTERM)
        up.communicate(timeout=60)
    result = again.get("result", {}).get("result_url")
    row("3", "SIGKILL of a worker mid-job under `waterz up`",
        f"worker back in {back:.1f} s; API and Redis untouched: {kept}; job {status['state']}; "
        f"after a restart of `waterz up`: {again['state']}, result {result}")


def cancel_in_detection(svc: Service, clip: Path) -> None:
    job = svc.upload(clip).json()["task_id"]
    svc.http.post("/api/process", json={"task_id": job}).raise_for_status()
    while svc.http.get(f"/api/status/{job}").json()["stage"] != "detect":
        time.sleep(0.05)
    svc.http.delete(f"/api/jobs/{job}").raise_for_status()
    cancelled = time.monotonic()
    logs = list(svc.workdir.glob("worker*.log"))
    while not any(f"job {job}: stopped while" in p.read_text() for p in logs) and time.monotonic() - cancelled < 60:
        time.sleep(0.05)
    stopped = time.monotonic() - cancelled
    time.sleep(3)
    result = (svc.workdir / "storage" / "results" / f"{job}.mp4").exists()
    row("4", "DELETE /api/jobs/{id} during detection (1280x720, 300 frames)",
        f"detection stopped {stopped:.1f} s after the DELETE; result file written: {result}")


def hostile_media(svc: Service, base: Path, seconds: int) -> None:
    second = flat_video(base / "second.mp4", [((4096, 4096), k) for k in range(60)], rate=60, preset="ultrafast")
    square = looped(second, base / "square.mp4", seconds)
    r = svc.upload(square)
    row("5", f"4096x4096, 60 fps, {seconds} s, one colour ({square.stat().st_size >> 10} KB)",
        f"{r.status_code} {r.json().get('detail')}")
    r = svc.upload(long_mkv_claiming(base / "long.mkv", span_s=5781, claimed_s=3.0))
    row("5", "mkv whose timestamps span 5781 s, header says 3 s", f"{r.status_code} {r.json().get('detail')}")
    r = svc.upload(size_switching_stream(base / "switch.h264", (320, 240), (640, 480), frames_each=25))
    got = f"upload {r.status_code}"
    if r.status_code == 200:
        status = svc.run_job(base / "switch.h264", timeout=120)
        got += f"; job {status['state']}: {status.get('error')}"
    row("10", "a stream that switches from 320x240 to 640x480", got)


def keys_and_ids(keyed: Service, keyed_job: str, open_svc: Service, job: str) -> None:
    anonymous = httpx.Client(base_url=str(keyed.http.base_url), timeout=30)
    health = anonymous.get("/api/health", params={"api_key": KEY}).status_code
    with anonymous.stream("GET", f"/api/events/{keyed_job}", params={"api_key": KEY}) as events:
        stream = events.status_code
    log = (keyed.workdir / "api.log").read_text()
    masked = log.count("api_key=***")
    row("6", "?api_key= on /api/health and on /api/events",
        f"health {health}, events {stream}; key in the access log: {KEY in log}, masked lines: {masked}")
    boxes = json.dumps({"task_id": job, "boxes": [{"x": 1, "y": 1, "w": 8, "h": 8}] * 1_000_000})
    start = time.monotonic()
    r = open_svc.http.post("/api/process", content=boxes, headers={"Content-Type": "application/json"})
    rss = int(Path(f"/proc/{open_svc.procs[-1].pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
    row("7", f"/api/process with {len(boxes) / 2**20:.0f} MB of 1 M boxes",
        f"{r.status_code} {r.json()['detail']} in {time.monotonic() - start:.2f} s; API RSS after {rss:.0f} MB")
    workers = open_svc.http.get("/api/workers").text
    port = open_svc.port
    rebound = open_svc.http.get("/api/health", headers={"Host": f"rebind.example:{port}"}).status_code
    with open(Path(__file__), "rb") as f:
        cross = open_svc.http.post("/api/upload", files={"file": ("x.mp4", f)},
                                   headers={"Origin": "https://other.example"}).status_code  # fmt: skip
    row("8", "no API_KEY: /api/workers, a rebound Host, a cross-site upload",
        f"job ids in /api/workers: {'task_id' in workers}; rebound Host {rebound}; cross-site upload {cross}")
    codes = {}
    for bad in (f"{job}:seg:0", f"{job}:mattes"):
        for method, path in (("GET", f"/api/status/{bad}"), ("GET", f"/api/preview/{bad}"),
                             ("GET", f"/api/source/{bad}"), ("GET", f"/api/events/{bad}"),
                             ("DELETE", f"/api/jobs/{bad}")):  # fmt: skip
            codes.setdefault(open_svc.http.request(method, path).status_code, 0)
        codes.setdefault(open_svc.http.post("/api/process", json={"task_id": bad}).status_code, 0)
    row("9", "ids like <id>:seg:0, <id>:mattes on every route", f"codes {sorted(codes)}")


def redis_down(svc: Service, clip: Path) -> None:
    uploads = svc.workdir / "storage" / "uploads"
    before = {p.name for p in uploads.iterdir() if any(p.iterdir())}
    svc.procs[0].send_signal(signal.SIGKILL)  # the private Redis
    svc.procs[0].wait()
    r = svc.upload(clip)
    after = {p.name for p in uploads.iterdir() if any(p.iterdir())}
    row("11", "an upload while Redis is down", f"{r.status_code} {r.json().get('detail')}; upload folders "
        f"added: {len(after - before)}, earlier ones kept: {before <= after}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upload-mb", type=int, default=600)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--square-s", type=int, default=60, help="length of the 4096x4096 60 fps clip")
    parser.add_argument("--rows", default="1,2,3,4,5,6,7,8,9,10,11",
                        help="which rows of the table to run (5 brings 10, 6 brings 7-9)")
    args = parser.parse_args()
    rows = set(args.rows.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        small = make_clip(base / "small.mp4", ClipSpec(frames=60, motion="shake")).path
        long = make_clip(base / "long.mp4", ClipSpec(width=1280, height=720, frames=300, motion="pan")).path
        print("| # | sent or done | what happened |\n|---|---|---|", flush=True)
        open_svc = Service(base / "open", workers=1, env={"MAX_UPLOAD_MB": "20", "LEASE_S": "3"})
        keyed = Service(base / "keyed", workers=1, env={"API_KEY": KEY})
        try:
            job = open_svc.upload(small).json()["task_id"]
            keyed_job = keyed.upload(small).json()["task_id"]
            for wanted, run in (("1", lambda: monitoring_flood(open_svc, job, args.concurrent)),
                                ("2", lambda: chunked_flood(open_svc, args.upload_mb)),
                                ("4", lambda: cancel_in_detection(open_svc, long)),
                                ("5", lambda: hostile_media(open_svc, base, args.square_s)),
                                ("6", lambda: keys_and_ids(keyed, keyed_job, open_svc, job)),
                                ("11", lambda: redis_down(open_svc, small))):  # fmt: skip
                if wanted in rows:
                    run()
        finally:
            open_svc.close()
            keyed.close()
        if "3" in rows:
            supervisor(base, make_clip(base / "mid.mp4", ClipSpec(frames=160, motion="pan")).path)


if __name__ == "__main__":
    main()
