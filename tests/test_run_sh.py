"""`./run.sh` on this checkout: it brings the service up without REDIS_URL, a job goes through it
with curl-like calls, and SIGTERM stops every process it started. Also the worker scripts' guard."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.service import descendants
from waterz.service import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_run_sh_serves_a_job_and_stops_every_child(clips, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(PORT=str(port), WORKERS="2", STORAGE_URL=f"file://{tmp_path / 'data'}")
    proc = subprocess.Popen([str(ROOT / "run.sh")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if f"http://127.0.0.1:{port}/" in line:
                break
        else:
            pytest.fail("run.sh never printed its URL:\n" + "".join(lines))
        assert any("private Redis" in line for line in lines)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            deadline = time.monotonic() + 60
            while http.get("/api/health").json()["workers"] < 2 and time.monotonic() < deadline:
                time.sleep(0.5)
            with open(clips("pan_jump").path, "rb") as f:
                task_id = http.post("/api/upload", files={"file": ("clip.mp4", f)}).json()["task_id"]
            assert http.post("/api/process", json={"task_id": task_id}).status_code == 202
            while (status := http.get(f"/api/status/{task_id}").json())["state"] not in ("SUCCESS", "FAILURE"):
                assert time.monotonic() < deadline + 120
                time.sleep(0.5)
            assert status["state"] == "SUCCESS", status.get("error")
            assert http.get(status["result"]["result_url"]).content[4:8] == b"ftyp"
        children = descendants(proc.pid)
        assert len(children) >= 4  # redis, api, two workers (and their own children)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    time.sleep(0.5)
    assert [pid for pid in children if _alive(pid)] == []


def test_worker_scripts_refuse_to_start_without_redis_url():
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    for script in ("start_worker1.sh", "start_worker2.sh"):
        done = subprocess.run([str(ROOT / script)], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 2
        assert "REDIS_URL is not set" in done.stderr and len(done.stderr.strip().splitlines()) == 1
