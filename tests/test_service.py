"""The distributed service end to end: a real redis-server, two real Celery workers (threads pool)
and the API (uvicorn), all subprocesses; jobs go through the HTTP API of the contract."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PORTRAIT, psnr, sora_over
from tests.service import Service
from waterz.service import bin_of
from waterz.video import iter_frames, probe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    env = {"MIN_SEGMENTS": "4", "MIN_CHUNK_FRAMES": "12", "WEIGHTS_DIR": str(tmp_path_factory.mktemp("no-weights"))}
    svc = Service(tmp_path_factory.mktemp("service"), workers=2, env=env)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def jumping_job(service, clips, tmp_path_factory):
    clip = clips("sora_jumps")
    status = service.run_job(clip.path)
    assert status["state"] == "SUCCESS", status.get("error")
    return clip, status, service.download(status, tmp_path_factory.mktemp("result") / "clean.mp4")


def _overlap(a: dict, b: dict) -> bool:
    return a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]


def test_segments_run_on_both_workers_at_overlapping_times(jumping_job):
    _, status, _ = jumping_job
    meta = status["metadata"]
    segments = meta["segments"]
    assert status["progress"] == 100
    assert meta["total_segments"] == len(segments) >= 4  # the mark sits at five positions
    by_worker: dict[str, list[dict]] = {}
    for seg in segments:
        assert seg["attempts"] == 1
        assert seg["started_at"] <= seg["finished_at"]
        assert isinstance(seg["residual"], float) and 0 <= seg["residual"] <= 1  # its own check after cleaning
        by_worker.setdefault(seg["worker"].split("@")[0], []).append(seg)
    assert set(by_worker) == {"worker1", "worker2"}
    assert any(_overlap(a, b) for a in by_worker["worker1"] for b in by_worker["worker2"])
    assert meta["finalize_runs"] == 1


def test_result_keeps_every_frame_the_rate_the_audio_and_the_pixels_outside(jumping_job):
    clip, status, out = jumping_job
    info = probe(out)
    assert info.frames == clip.spec.frames
    assert info.fps == clip.spec.fps
    assert info.has_audio
    before = np.stack(list(iter_frames(clip.path)))
    after = np.stack(list(iter_frames(out)))
    inside_crops = np.zeros(before.shape[:3], bool)
    for seg in status["metadata"]["segments"]:
        c = seg["crop"]
        inside_crops[seg["start_frame"] : seg["end_frame"] + 1, c["y"] : c["y"] + c["h"], c["x"] : c["x"] + c["w"]] = 1
    assert psnr(after, before, ~inside_crops) >= 38.0
    marked = clip.alpha > 0.05
    assert psnr(after, clip.clean, marked) > psnr(before, clip.clean, marked) + 3.0


def test_a_second_process_call_and_a_redelivered_segment_change_nothing(service, jumping_job):
    _, status, out = jumping_job
    task_id = status["task_id"]
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    again = service.http.post("/api/process", json={"task_id": task_id})
    assert again.status_code == 202 and again.json()["state"] == "SUCCESS"

    from celery import Celery

    app = Celery(broker=service.redis_url, backend=service.redis_url)
    app.send_task("watermark.process_segment", args=[task_id, 0]).get(timeout=60)
    after = service.http.get(f"/api/status/{task_id}").json()
    assert after["state"] == "SUCCESS"
    assert after["metadata"]["finalize_runs"] == 1
    assert after["metadata"]["segments"][0]["attempts"] == 1
    redownloaded = service.download(after, out.with_name("again.mp4"))
    assert hashlib.sha256(redownloaded.read_bytes()).hexdigest() == digest


def test_a_sora_download_is_cleaned_as_the_preset_it_matched(service, tmp_path):
    """The job says which known mark it found; the segments, told the mark animates, fill the
    picture instead of inverting one matte, and each reports what is left."""
    path, truth = sora_over(tmp_path, PORTRAIT)
    status = service.run_job(path)
    assert status["state"] == "SUCCESS", status.get("error")
    meta = status["metadata"]
    assert meta["preset"] == "sora" and meta["frames_with_mark"] == sum(1 for t in truth if t)
    out = service.download(status, tmp_path / "clean.mp4")
    assert probe(out).frames == PORTRAIT.frames
    for seg in meta["segments"]:
        assert 0 <= seg["residual"] <= 1, seg


def test_a_video_without_a_mark_comes_back_whole(service, clips, tmp_path):
    clip = clips("locked_nomark")
    status = service.run_job(clip.path)
    assert status["state"] == "SUCCESS", status.get("error")
    assert status["metadata"]["total_segments"] == 0
    info = probe(service.download(status, tmp_path / "clean.mp4"))
    assert (info.frames, info.fps, info.has_audio) == (clip.spec.frames, clip.spec.fps, True)


def test_user_errors_get_a_status_and_a_sentence(service, tmp_path, clips):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    r = service.upload(text)
    assert r.status_code == 415 and "notes.mp4" in r.json()["detail"]
    r = service.http.post("/api/upload", data={"other": "x"})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    for r in (service.http.get("/api/status/0123abc"), service.http.post("/api/process", json={"task_id": "0123abc"}),
              service.http.get("/results/" + "0" * 32 + ".mp4"), service.http.get("/results/../../etc/passwd")):
        assert r.status_code == 404 and r.json()["detail"].endswith(".")
    r = service.http.post("/api/process", json={"task_idd": "x"})
    assert r.status_code == 422 and r.json()["detail"] == "Field 'task_id' is required."
    task_id = service.upload(clips("pan_jump").path).json()["task_id"]
    r = service.http.post("/api/process", json={"task_id": task_id, "inpainter": "magic"})
    assert r.status_code == 422 and "temporal" in r.json()["detail"]  # lists the known ones
    r = service.http.post("/api/process", json={"task_id": task_id, "boxes": [{"x": 300, "y": 0, "w": 64, "h": 64}]})
    assert r.status_code == 422 and "inside the 320x240 frame" in r.json()["detail"]


def test_a_job_whose_upload_vanished_fails_with_a_sentence(service, clips):
    task_id = service.upload(clips("pan_jump").path).json()["task_id"]
    for path in (service.workdir / "storage" / "uploads" / task_id).iterdir():
        path.unlink()
    service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
    status = service.wait(task_id, timeout=60)
    assert status["state"] == "FAILURE"
    assert "missing from storage" in status["error"] and "Traceback" not in status["error"]
    # the workers are still there and still work
    assert service.http.get("/api/health").json()["workers"] == 2


def test_an_engine_without_its_weights_is_refused_before_the_job_is_queued(service, clips):
    """422 with what is missing and the command that fixes it; the job stays unstarted, and
    the same upload can still be started with an engine that runs."""
    pytest.importorskip("torch", reason="the ml extra is not installed")
    task_id = service.upload(clips("shake_opaque").path).json()["task_id"]
    for options, words in (({"inpainter": "propainter"}, ("Model weights missing in", "waterz weights download")),
                           ({"detector": "yolo"}, ("needs weights", "YOLO_WEIGHTS", "waterz train-detector"))):
        r = service.http.post("/api/process", json={"task_id": task_id, **options})
        assert r.status_code == 422, options
        assert all(w in r.json()["detail"] for w in words), r.json()["detail"]
        status = service.http.get(f"/api/status/{task_id}").json()
        assert status["state"] == "PENDING" and status["metadata"]["queued_at"] is None
    listing = service.http.get("/api/engines").json()
    refused = {r["name"]: r["refused"] for r in listing["inpainters"] + listing["detectors"] if r["refused"]}
    assert set(refused) == {"propainter", "yolo"}  # what the workers said they cannot run
    status = service.run_job(clips("shake_opaque").path, timeout=120, inpainter="telea")
    assert status["state"] == "SUCCESS"


def test_celery_inspect_lists_the_three_tasks_and_the_threads_pool(service):
    def inspect(what: str) -> str:
        cmd = [bin_of("celery"), "-A", "server_production.celery", "inspect", what, "--timeout", "5"]
        done = subprocess.run(cmd, env=service.env, capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    registered = inspect("registered")
    for name in ("watermark.prepare_video", "watermark.process_segment", "watermark.finalize_video",
                 "watermark.detect_chunk", "watermark.plan_segments", "watermark.second_look",
                 "watermark.encode_chunk", "watermark.notify"):  # fmt: skip
        assert registered.count(name) == 2  # listed by both workers
    stats = inspect("stats")
    assert stats.count("celery.concurrency.thread:TaskPool") == 2
    assert stats.count('"max-concurrency": 1') == 2


def test_live_events_workers_and_metrics_while_a_job_runs(service, clips):
    task_id = service.upload(clips("slow_pan").path).json()["task_id"]
    service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
    seen_active = []
    while not seen_active:
        workers = service.http.get("/api/workers").json()
        assert workers["count"] == 2
        assert {w["pool"] for w in workers["workers"]} == {"thread"}
        assert {w["concurrency"] for w in workers["workers"]} == {1}
        seen_active = [a for w in workers["workers"] for a in w["active"]]  # no API key: no job ids shown
        if service.http.get(f"/api/status/{task_id}").json()["state"] in ("SUCCESS", "FAILURE"):
            break
    assert seen_active, "no worker was seen running a task of the job"
    assert seen_active[0]["task"].startswith("watermark.")

    events = []
    with service.http.stream("GET", f"/api/events/{task_id}", timeout=300) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["state"] == "SUCCESS"  # the stream ends with the job
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)

    text = service.http.get("/metrics").text
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[0] != "#"}
    assert values['waterz_jobs{state="SUCCESS"}'] >= 2
    assert values["waterz_segment_seconds_count"] >= events[-1]["metadata"]["total_segments"]
    assert values['waterz_segment_seconds_bucket{le="+Inf"}'] == values["waterz_segment_seconds_count"]
    assert values['waterz_queue_length{queue="celery"}'] >= 0
    assert values["waterz_workers_online"] == 2


def test_cancel_drops_the_job_and_its_files(service, clips):
    task_id = service.upload(clips("slow_pan").path).json()["task_id"]
    service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
    deadline = time.monotonic() + 60
    while service.http.get(f"/api/status/{task_id}").json()["state"] == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.1)
    r = service.http.delete(f"/api/jobs/{task_id}")
    assert r.status_code == 200
    assert r.json() == {"task_id": task_id, "state": "FAILURE", "error": "cancelled by request"}

    def running() -> bool:
        return any(a.get("task_id") == task_id for a in service.active_tasks())

    # let whatever was running finish: it must not bring the job back or leave its output behind
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    status = service.http.get(f"/api/status/{task_id}").json()
    assert (status["state"], status["error"]) == ("FAILURE", "cancelled by request")
    assert status["metadata"]["finalize_runs"] == 0
    storage = service.workdir / "storage"
    assert not (storage / "uploads" / task_id).exists()
    assert not (storage / "jobs" / task_id).exists() or not any((storage / "jobs" / task_id).iterdir())
    again = service.http.delete(f"/api/jobs/{task_id}")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
    assert service.http.delete("/api/jobs/0123abc").status_code == 404


def test_unknown_job_events_are_404(service):
    r = service.http.get("/api/events/0123abc")
    assert r.status_code == 404
    assert r.json()["detail"] == "No job has the id '0123abc': job ids are 32 hexadecimal digits."
