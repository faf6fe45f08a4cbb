"""Crash recovery through the real service: a worker SIGKILLed in the middle of a segment."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest
from kombu import Connection

from tests.service import Service
from waterz.service import free_port, start_redis, stop
from waterz.synth import ClipSpec, MarkSpec, make_clip
from waterz.video import probe

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


AMQP_URL = os.environ.get("WATERZ_TEST_AMQP_URL", "amqp://127.0.0.1:5672//")  # kombu logs in as guest


def _broker_env(broker: str) -> dict:
    """Redis as the broker (the default), or RabbitMQ on loopback in a queue of this test's own."""
    if broker == "redis":
        return {}
    host, port = urlsplit(AMQP_URL).hostname, urlsplit(AMQP_URL).port or 5672
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        pytest.skip(f"no RabbitMQ answers on {host}:{port} (set WATERZ_TEST_AMQP_URL to test one)")
    return {"BROKER_URL": AMQP_URL, "TASK_QUEUE": f"waterz-test-{uuid.uuid4().hex[:8]}"}


def _delete_queue(env: dict) -> None:
    if "TASK_QUEUE" in env:
        with Connection(env["BROKER_URL"]) as conn:
            conn.default_channel.queue_delete(env["TASK_QUEUE"])


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_killed_in_a_segment_is_replaced_within_seconds(tmp_path, broker):
    clip = make_clip(tmp_path / "clip.mp4", SPEC)
    env = {"MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12", "LEASE_S": "6", "REAPER_INTERVAL_S": "1",
           "WEIGHTS_DIR": str(tmp_path / "no-weights"), **_broker_env(broker)}  # fmt: skip
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
        print(f"{broker}: segment {seg['index']} taken up again {seg['started_at'] - killed_at:.1f} s after the kill")
    finally:
        service.close()
        _delete_queue(env)


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


def test_a_redis_restart_mid_job(tmp_path):
    """Redis goes away while a segment runs: the API answers 503 with a sentence meanwhile, the
    workers reconnect by themselves, the job completes, and a new job still succeeds."""
    clip = make_clip(tmp_path / "clip.mp4", SPEC)
    port = free_port()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis_proc = start_redis(port, redis_dir, redis_dir / "redis.log", persist=True)
    env = {"MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12", "LEASE_S": "6", "REAPER_INTERVAL_S": "1",
           "WEIGHTS_DIR": str(tmp_path / "no-weights")}  # fmt: skip
    service = Service(tmp_path / "service", workers=2, env=env, redis_url=f"redis://127.0.0.1:{port}/0")
    try:
        task_id = service.upload(clip.path).raise_for_status().json()["task_id"]
        service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
        _running_segment(service, task_id)
        stop([redis_proc])
        down = service.http.get(f"/api/status/{task_id}")
        assert down.status_code == 503 and "Redis" in down.json()["detail"]
        assert service.http.get("/api/health").status_code == 503
        time.sleep(4)
        redis_proc = start_redis(port, redis_dir, redis_dir / "redis.log", persist=True)

        status = service.wait(task_id, timeout=240)
        assert status["state"] == "SUCCESS", status.get("error")
        assert probe(service.download(status, tmp_path / "clean.mp4")).frames == SPEC.frames
        assert status["metadata"]["finalize_runs"] == 1
        again = service.run_job(clip.path, timeout=240)
        assert again["state"] == "SUCCESS", again.get("error")
    finally:
        service.close()
        stop([redis_proc])


def test_cancel_stops_a_running_segment_at_its_next_frame(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", SPEC)
    env = {"MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12", "LEASE_S": "3", "WEIGHTS_DIR": str(tmp_path / "w")}
    service = Service(tmp_path / "service", workers=1, env=env)
    try:
        task_id = service.upload(clip.path).raise_for_status().json()["task_id"]
        service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
        victim = _running_segment(service, task_id)
        log = service.workdir / "worker1.log"
        deadline = time.monotonic() + 60
        started = f"segment {task_id}/{victim['index']} (attempt 1): "
        while f"{started}AutoInpainter on" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # until it has read its input and handed it to the engine
        time.sleep(0.5)  # into the engine's frames
        assert service.http.delete(f"/api/jobs/{task_id}").status_code == 200
        deadline = time.monotonic() + 60
        while "the job ended, stopped after" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        line = next(x for x in log.read_text().splitlines() if "the job ended, stopped after" in x)
        assert f"segment {task_id}/{victim['index']} (attempt 1)" in line
        done, total = map(int, line.split("stopped after ")[1].split(",")[0].split(" of "))
        assert done < total  # it did not run to the end
        status = service.http.get(f"/api/status/{task_id}").json()
        assert (status["state"], status["error"]) == ("FAILURE", "cancelled by request")
        assert not any((service.workdir / "storage" / "jobs").glob(f"{task_id}/segment_*_a*.npy"))
    finally:
        service.close()
