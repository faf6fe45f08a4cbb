"""The API under abuse, against the real service: no request waits on the broker, bodies are
counted as they arrive, ids never reach Redis unchecked, job ids are not shown to strangers."""

from __future__ import annotations

import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from tests.service import Service, chunked_upload
from waterz.synth import ClipSpec, make_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("hardening"), workers=1,
                  env={"MAX_UPLOAD_MB": "2", "MAX_BOXES": "50", "BODY_IDLE_S": "2", "LEASE_S": "3"})  # fmt: skip
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def job(service, clips):
    return service.upload(clips("shake_opaque").path).raise_for_status().json()["task_id"]


def _timed_get(http: httpx.Client, path: str) -> tuple[int, float]:
    start = time.monotonic()
    r = http.get(path)
    return r.status_code, time.monotonic() - start


def test_a_hundred_monitoring_requests_at_once_leave_the_api_answering(service, job):
    paths = ["/metrics", "/api/health", "/api/workers"] * 34
    # one pool of connections, each request on its own: the client's own set-up is not what is timed
    http = httpx.Client(base_url=service.http.base_url, timeout=30, limits=httpx.Limits(max_connections=200))
    with http, ThreadPoolExecutor(len(paths)) as pool:
        answers = pool.map(_timed_get, [http] * len(paths), paths)
        during = [_timed_get(http, f"/api/status/{job}") for _ in range(3)]
        answers = list(answers)
    assert {code for code, _ in answers} == {200}
    assert max(t for _, t in answers) < 2.0, sorted(t for _, t in answers)[-5:]
    assert all(code == 200 and t < 1.0 for code, t in during), during
    assert service.http.get("/api/health").json()["workers"] == 1  # still answering, the worker still seen


def _uploads(service) -> set[str]:
    folder = service.workdir / "storage" / "uploads"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_a_chunked_upload_past_the_limit_is_cut_off_with_413(service):
    before = _uploads(service)
    answer, sent = chunked_upload(service.port, megabytes=40)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    detail = json.loads(rest.split(b"\r\n\r\n", 1)[1])["detail"]
    assert detail == "The file is larger than the 2 MB upload limit (MAX_UPLOAD_MB)."
    assert sent < 20 << 20  # cut off: what was sent beyond 3 MB sat in the sockets' buffers
    cut = re.findall(r"POST /api/upload: body cut off after (\d+) bytes read \(limit (\d+)\)",
                     (service.workdir / "api.log").read_text())  # fmt: skip
    assert cut and int(cut[-1][1]) == 3 << 20 and int(cut[-1][0]) <= 4 << 20  # read in parts of up to 256 KB
    time.sleep(0.5)
    assert service.api_temp_bytes() == 0  # nothing of it left in the API's temp directory
    assert _uploads(service) == before  # nothing stored


def test_an_upload_that_declares_too_many_bytes_is_refused_before_its_body(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(f"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n".encode()
                     + b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 53687091200\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}") and (more := sock.recv(65536)):  # no byte of the body was sent
            answer += more
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]  # not 408: it did not wait for the body
    assert answer.endswith(b'"The file is larger than the 2 MB upload limit (MAX_UPLOAD_MB)."}')


def test_a_stalled_body_gets_408(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(f"POST /api/process HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n".encode()
                     + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"task_id\": ")  # fmt: skip
        answer = b""
        while not answer.endswith(b"}") and (more := sock.recv(65536)):  # the head and body may come apart
            answer += more
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"stopped arriving for 2 s" in answer


def test_process_bodies_are_bounded_in_bytes_and_boxes(service, job):
    boxes = [{"x": 1, "y": 1, "w": 8, "h": 8}] * 51
    r = service.http.post("/api/process", json={"task_id": job, "boxes": boxes})
    assert r.status_code == 422
    assert r.json()["detail"] == "The request gives 51 boxes; a job takes at most 50 (MAX_BOXES)."
    big = json.dumps({"task_id": job, "boxes": [{"x": 1, "y": 1, "w": 8, "h": 8}] * 40000})
    assert len(big) > 1 << 20
    r = service.http.post("/api/process", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["detail"] == "The request body is larger than 1 MB, the most this route takes."
    assert service.http.get(f"/api/status/{job}").json()["state"] == "PENDING"  # nothing was started


def test_ids_that_are_not_job_ids_never_reach_redis(service, job):
    for bad in (f"{job}:seg:0", f"{job}:mattes", "abc", job.upper()):
        for method, path in (("GET", f"/api/status/{bad}"), ("GET", f"/api/preview/{bad}"),
                             ("GET", f"/api/source/{bad}"), ("GET", f"/api/events/{bad}"),
                             ("DELETE", f"/api/jobs/{bad}")):  # fmt: skip
            r = service.http.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["detail"].endswith("job ids are 32 hexadecimal digits.")
        r = service.http.post("/api/process", json={"task_id": bad})
        assert r.status_code == 404, r.text
    written = redis.Redis.from_url(service.redis_url).keys(f"waterz:job:{job}:*")
    assert written == []  # no record was made under the real job's name


def test_without_a_key_the_workers_view_shows_no_job_ids(service, clips):
    job = service.upload(clips("slow_pan").path).raise_for_status().json()["task_id"]
    service.http.post("/api/process", json={"task_id": job}).raise_for_status()
    seen = []
    deadline = time.monotonic() + 120
    while not seen and time.monotonic() < deadline:
        seen = service.active_tasks()
        time.sleep(0.2)
    assert seen and all(set(a) == {"task", "started"} for a in seen), seen
    assert job not in service.http.get("/api/workers").text
    assert service.http.delete(f"/api/jobs/{job}").status_code == 200  # seen: no need to wait for its end


def test_cancel_during_detection_stops_it_and_no_result_is_written(service, tmp_path):
    clip = make_clip(tmp_path / "long.mp4", ClipSpec(width=1280, height=720, frames=150, motion="pan"))
    # The job before this one was cancelled without waiting for its end: a worker still stopping
    # it holds this job's detection back (reserved, not started), and no cancel can stop it sooner.
    service.wait_until_idle()
    job = service.upload(clip.path).raise_for_status().json()["task_id"]
    service.http.post("/api/process", json={"task_id": job}).raise_for_status()
    deadline = time.monotonic() + 60
    while (status := service.http.get(f"/api/status/{job}").json())["stage"] != "detecting":
        assert time.monotonic() < deadline and status["state"] not in ("SUCCESS", "FAILURE"), status
        time.sleep(0.1)
    logs = sorted(service.workdir.glob("worker*.log"))  # detection runs in chunks, one per worker
    assert service.http.delete(f"/api/jobs/{job}").status_code == 200
    cancelled = time.monotonic()
    while not any(f"job {job}: stopped while detecting the watermark" in log.read_text() for log in logs):
        assert time.monotonic() - cancelled < 6, "detection went on after the cancel"
        time.sleep(0.1)
    time.sleep(2)
    assert not (service.workdir / "storage" / "results" / f"{job}.mp4").exists()
    assert not (service.workdir / "storage" / "jobs" / job).exists()


def test_only_this_services_own_names_and_pages_get_through(service, job):
    port = service.port
    rebound = service.http.get(f"/api/status/{job}", headers={"Host": f"rebind.example:{port}"})
    assert rebound.status_code == 400
    assert rebound.json()["detail"] == (f"This service does not answer to the host name 'rebind.example:{port}'; "
                                        "add it to ALLOWED_HOSTS.")  # fmt: skip
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert service.http.get(f"/api/status/{job}", headers={"Host": host}).status_code == 200
    other_site = {"Origin": "https://other.example"}
    r = service.http.post("/api/process", json={"task_id": job}, headers=other_site)
    assert r.status_code == 403
    assert r.json()["detail"] == ("Requests from pages of https://other.example may not change anything here; "
                                  "list that origin in CORS_ORIGINS to allow it.")  # fmt: skip
    assert service.http.delete(f"/api/jobs/{job}", headers=other_site).status_code == 403
    assert service.http.get(f"/api/status/{job}", headers=other_site).json()["state"] == "PENDING"
    own_page = {"Origin": f"http://127.0.0.1:{port}"}
    r = service.http.post("/api/process", json={"task_id": "0" * 32}, headers=own_page)
    assert r.status_code == 404  # let through, and answered for what it asks
