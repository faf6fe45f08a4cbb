"""Crash recovery through the real service: a worker SIGKILLed in the middle of a segment."""

from __future__ import annotations

import os
import signal
import time

import pytest

from synth import ClipSpec, MarkSpec, make_clip
from tests.service import Service
from video import probe

pytestmark = pytest.mark.slow

# Two long segments of a static mark: one for each worker, each long enough to be killed in.
SPEC = ClipSpec(width=480, height=272, frames=120, motion="pan", source="chelsea",
                mark=MarkSpec(scale=1.6, opacity=0.6, positions=((0, 40, 40),)))  # fmt: skip


def _running_segment(service: Service, task_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = service.http.get(f"/api/status/{task_id}").json()
        for seg in status.get("metadata", {}).get("segments", []):
            if seg["started_at"] and not seg["finished_at"]:
                return seg
        time.sleep(0.1)
    raise TimeoutError(f"no segment started; see {service.workdir}")


def test_a_worker_killed_in_a_segment_is_replaced_within_seconds(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", SPEC)
    env = {"MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12", "LEASE_S": "6", "REAPER_INTERVAL_S": "1",
           "WEIGHTS_DIR": str(tmp_path / "no-weights")}  # fmt: skip
    service = Service(tmp_path / "service", workers=2, env=env)
    try:
        task_id = service.upload(clip.path).raise_for_status().json()["task_id"]
        service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
        victim = _running_segment(service, task_id)
        time.sleep(1.0)  # well inside the segment
        name = victim["worker"].split("@")[0]
        proc = service.workers[int(name.removeprefix("worker")) - 1]
        os.killpg(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        proc.wait()

        status = service.wait(task_id, timeout=300)
        assert status["state"] == "SUCCESS", status.get("error")
        meta = status["metadata"]
        seg = next(s for s in meta["segments"] if s["index"] == victim["index"])
        assert seg["attempts"] >= 2 and seg["result_attempt"] == seg["attempts"]
        assert seg["worker"].split("@")[0] != name
        assert seg["started_at"] - killed_at < 60  # taken up again within a minute (lease 6 s here)
        assert meta["finalize_runs"] == 1
        out = service.download(status, tmp_path / "clean.mp4")
        info = probe(out)
        assert info.frames == SPEC.frames and info.fps == SPEC.fps and info.has_audio
        print(f"segment {seg['index']} taken up again {seg['started_at'] - killed_at:.1f} s after the kill")
    finally:
        service.close()


def test_old_jobs_files_are_deleted_and_their_urls_say_so(tmp_path, clips):
    env = {"RESULT_TTL_HOURS": str(2 / 3600), "CLEANUP_INTERVAL_S": "0.5"}  # two seconds
    service = Service(tmp_path / "service", workers=1, env=env)
    try:
        task_id = service.upload(clips("pan_jump").path).raise_for_status().json()["task_id"]
        assert service.http.get(f"/api/source/{task_id}").status_code == 200
        uploads = tmp_path / "service" / "storage" / "uploads" / task_id
        assert uploads.is_dir()
        deadline = time.monotonic() + 30
        while uploads.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not uploads.exists()
        status = service.http.get(f"/api/status/{task_id}").json()
        assert status["metadata"]["files_deleted_at"]  # the record still answers
        gone = service.http.get(f"/api/source/{task_id}")
        assert gone.status_code == 410 and "RESULT_TTL_HOURS" in gone.json()["detail"]
    finally:
        service.close()
