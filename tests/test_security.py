"""API key and upload limits against the real service."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlunsplit

import httpx
import pytest

from tests.service import Service
from waterz.core.logs import mask_secrets
from waterz.service import free_port, start_redis, stop

pytestmark = pytest.mark.slow


REDIS_PASSWORD = secrets.token_hex(12)  # made per run: no password lives in the repository


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """Behind an API key, with limits, CORS for one origin, and a Redis that needs a password."""
    workdir = tmp_path_factory.mktemp("secure")
    port = free_port()
    redis = start_redis(port, workdir, workdir / "redis.log", password=REDIS_PASSWORD)
    env = {"API_KEY": "test-key-not-a-secret", "MAX_DURATION_S": "2.5", "MAX_WIDTH": "1920", "MAX_HEIGHT": "1080",
           "CORS_ORIGINS": "https://app.example", "WEBHOOK_SECRET": "webhook-key-not-a-secret"}  # fmt: skip
    url = urlunsplit(("redis", f":{REDIS_PASSWORD}@127.0.0.1:{port}", "/0", "", ""))
    svc = Service(workdir, workers=1, env=env, redis_url=url)
    yield svc
    svc.close()
    stop([redis])


def test_every_api_route_needs_the_key(service, clips):
    anonymous = httpx.Client(base_url=str(service.http.base_url), timeout=30)
    for method, path in (("GET", "/api/health"), ("GET", "/api/status/abc"), ("POST", "/api/upload"),
                         ("POST", "/api/process"), ("GET", "/api/workers"), ("GET", "/api/events/abc")):  # fmt: skip
        r = anonymous.request(method, path)
        assert r.status_code == 401, path
        assert r.json()["detail"] == "This service needs an API key: send it as 'Authorization: Bearer <key>'."
        assert r.headers["www-authenticate"] == "Bearer"
    wrong = anonymous.get("/api/health", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    key = {"api_key": "test-key-not-a-secret"}
    assert anonymous.get("/api/health", params=key).status_code == 401  # a header can be sent there
    job = service.upload(clips("shake_opaque").path).raise_for_status().json()["task_id"]
    assert anonymous.get(f"/api/preview/{job}", params=key).status_code == 200  # an <img> cannot send one
    with anonymous.stream("GET", f"/api/events/{job}", params=key) as events:  # nor can EventSource
        assert events.status_code == 200
    assert anonymous.get("/").status_code == 200  # the page itself loads, then asks for the key
    assert service.http.get("/api/health").status_code == 200


def test_uploads_over_the_limits_get_413_and_nothing_is_stored(service, clips):
    uploads = service.workdir / "storage" / "uploads"
    before = set(uploads.iterdir()) if uploads.exists() else set()  # (jobs of the other tests)
    long_clip = clips("pan_jump")  # 72 frames at 25 fps = 2.88 s > MAX_DURATION_S 2.5
    r = service.upload(long_clip.path)
    assert r.status_code == 413
    assert r.json()["detail"] == "'pan_jump.mp4' lasts 3 s; this service takes videos up to 2 s (MAX_DURATION_S)."
    assert (set(uploads.iterdir()) if uploads.exists() else set()) == before
    short = clips("shake_opaque")  # 60 frames = 2.4 s
    assert service.upload(short.path).status_code == 200


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no Chromium at /usr/bin/chromium")
def test_the_page_asks_for_the_key_once(service, clips):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        asked = []
        page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept("test-key-not-a-secret")))
        page.goto(f"http://127.0.0.1:{service.port}/")
        page.wait_for_function("localStorage.getItem('waterz-api-key') !== null")
        page.wait_for_load_state()
        page.get_by_label("Choose a video").set_input_files(str(clips("shake_opaque").path))
        page.wait_for_selector("#video-info:not([hidden])")
        assert page.text_content("#info-frames") == "60"
        assert len(asked) == 1 and "API key" in asked[0]
        browser.close()


def test_cors_answers_the_configured_origin_only(service):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    ok = service.http.options("/api/upload", headers={"Origin": "https://app.example", **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    other = service.http.options("/api/upload", headers={"Origin": "https://elsewhere.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    simple = service.http.get("/api/health", headers={"Origin": "https://app.example"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example"


def test_key_holders_see_which_job_a_worker_runs_and_no_log_line_holds_a_secret(service, clips):
    task_id = service.upload(clips("shake_opaque").path).raise_for_status().json()["task_id"]
    service.http.post("/api/process", json={"task_id": task_id}).raise_for_status()
    shown = []
    while not shown and service.http.get(f"/api/status/{task_id}").json()["state"] not in ("SUCCESS", "FAILURE"):
        shown = [a for a in service.active_tasks() if a.get("task_id") == task_id]
    assert shown and shown[0]["task"].startswith("watermark.")
    status = service.wait(task_id, timeout=180)
    assert status["state"] == "SUCCESS", status.get("error")
    httpx.get(f"http://127.0.0.1:{service.port}/api/source/{task_id}", params={"api_key": "test-key-not-a-secret"})
    logs = {p.name: p.read_text(errors="replace") for p in service.workdir.glob("*.log") if p.name != "redis.log"}
    assert {"worker1.log", "api.log"} <= set(logs)
    assert "api_key=***" in logs["api.log"]  # the access log has the request, not the key
    assert "test-key-not-a-secret" not in logs["api.log"]
    masked = mask_secrets(service.redis_url)
    assert "***" in masked and REDIS_PASSWORD not in masked
    assert f"job state in {masked}," in logs["worker1.log"]  # the worker did log the URL, masked
    for name, text in logs.items():
        assert REDIS_PASSWORD not in text, name


def test_webhooks_to_this_host_its_network_or_metadata_services_are_refused(service, clips):
    """Without WEBHOOK_ALLOW_PRIVATE a job cannot make the service call into its own network."""
    task_id = service.upload(clips("shake_opaque").path).raise_for_status().json()["task_id"]
    for url, words in (("http://127.0.0.1/", "127.0.0.1, a loopback address"),
                       ("http://localhost:6379/", "a loopback address"),
                       ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
                       ("http://10.0.0.1/hook", "a private address"),
                       ("gopher://93.184.215.14/", "http:// or https://")):  # fmt: skip
        r = service.http.post("/api/process", json={"task_id": task_id, "callback_url": url})
        assert r.status_code == 422, url
        assert words in r.json()["detail"], r.json()["detail"]
        assert url.startswith("gopher") or "WEBHOOK_ALLOW_PRIVATE=1 allows others" in r.json()["detail"]
    status = service.http.get(f"/api/status/{task_id}").json()
    assert status["state"] == "PENDING" and status["metadata"]["queued_at"] is None  # nothing was started


def test_mask_secrets():
    word = secrets.token_hex(6)
    redis_url = urlunsplit(("redis", f":{word}@h:6379", "/0", "", ""))
    amqp_url = urlunsplit(("amqp", f"u:{word}%40x@rabbit", "//", "", ""))
    masked = mask_secrets(f"{redis_url} and {amqp_url}")
    assert word not in masked and masked.count("***") == 2
    assert masked == f"{redis_url} and {amqp_url}".replace(word + "%40x", "***").replace(word, "***")
    assert mask_secrets("redis://127.0.0.1:6379/0 and http://host:8000/x") == "redis://127.0.0.1:6379/0 and http://host:8000/x"
