"""`waterz up` keeps the service up: a dead child is started again with backoff, the others run
on, and the private Redis keeps its jobs across a restart of the whole thing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.service import children
from waterz.service import Child, free_port

WATERZ = str(Path(sys.executable).with_name("waterz"))


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_child_that_dies_is_started_again_with_doubling_backoff():
    child = Child("probe", _sleeper, backoff_s=1.0, max_backoff_s=4.0, steady_s=30.0)
    child.start()
    try:
        first = child.proc
        assert child.watch(time.monotonic()) is None  # running: nothing to do
        waits = []
        for _ in range(4):
            child.proc.kill()
            child.proc.wait()
            now = time.monotonic()
            line = child.watch(now)
            waits.append(child.restart_at - now)
            assert line.startswith("probe exited with status -9; starting it again in ")
            assert child.watch(now + waits[-1] - 0.01) is None  # not before its time
            assert child.watch(now + waits[-1]).startswith("probe started again (pid ")
        assert [round(w) for w in waits] == [1, 2, 4, 4]
        assert child.proc is not first and child.proc.poll() is None
        child.started_at -= 31  # it has now run steadily: the next death waits the first backoff again
        child.proc.kill()
        child.proc.wait()
        assert child.watch(time.monotonic()).endswith("starting it again in 1s")
    finally:
        if child.proc and child.proc.poll() is None:
            child.proc.kill()


def _start_up(env: dict, port: int) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([WATERZ, "up", "--port", str(port), "--workers", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if f"http://127.0.0.1:{port}/" in line:
            return proc, lines
    pytest.fail("waterz up never printed its URL:\n" + "".join(lines))


def _stop_up(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out


@pytest.mark.slow
def test_a_worker_killed_mid_job_comes_back_and_the_jobs_outlive_a_restart(clips, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(STORAGE_URL=f"file://{tmp_path / 'data'}", LEASE_S="3", REAPER_INTERVAL_S="1")
    port = free_port()
    up, _ = _start_up(env, port)
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 60
        while http.get("/api/health").json()["workers"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        others = {pid: cmd for pid, cmd in children(up.pid).items() if "celery" not in cmd}
        assert any("redis-server" in c for c in others.values()) and any("uvicorn" in c for c in others.values())
        with open(clips("slow_pan").path, "rb") as f:
            job = http.post("/api/upload", files={"file": ("clip.mp4", f)}).json()["task_id"]
        http.post("/api/process", json={"task_id": job}).raise_for_status()
        while http.get(f"/api/status/{job}").json()["state"] == "PENDING":
            time.sleep(0.1)
        [worker] = [pid for pid, cmd in children(up.pid).items() if "celery" in cmd]
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        while not [pid for pid, cmd in children(up.pid).items() if "celery" in cmd and pid != worker]:
            assert time.monotonic() - killed < 10, "the worker was not started again within 10 s"
            time.sleep(0.2)
        assert {pid: cmd for pid, cmd in children(up.pid).items() if "celery" not in cmd} == others  # never stopped
        deadline = time.monotonic() + 240
        while (status := http.get(f"/api/status/{job}").json())["state"] not in ("SUCCESS", "FAILURE"):
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        assert status["state"] == "SUCCESS", status.get("error")
    finally:
        out = _stop_up(up)
    assert "worker1 exited with status -9; starting it again in 1s" in out
    assert "worker1 started again" in out

    port = free_port()
    up, _ = _start_up(env, port)  # a new private Redis, reading the old one's append-only file
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        again = http.get(f"/api/status/{job}").json()
        assert again["state"] == "SUCCESS"
        assert http.get(again["result"]["result_url"]).content[4:8] == b"ftyp"
    finally:
        _stop_up(up)


def test_a_second_up_on_the_same_data_is_refused_with_a_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["STORAGE_URL"] = f"file://{tmp_path / 'data'}"
    first, _ = _start_up(env, free_port())
    try:
        second = subprocess.run([WATERZ, "up", "--port", str(free_port()), "--workers", "1"], env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert second.returncode == 2
        assert second.stderr.strip().endswith(f"Another 'waterz up' keeps its Redis in {tmp_path / 'data' / 'redis'}; "
                                              "stop it first, or give this one another STORAGE_URL.")  # fmt: skip
    finally:
        _stop_up(first)
