"""Webhooks: which targets are refused, that every way a job ends queues its webhook exactly once
(a real redis-server), and, against the real service, that a receiver gets it once per job with a
valid signature and that failed deliveries are tried again and counted."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.service import Service
from waterz.core.errors import InvalidRequest
from waterz.jobs import JobStore
from waterz.jobs.leases import Leases, reap
from waterz.jobs.webhooks import check_target, sign
from waterz.service import free_port, start_redis, stop

SECRET = "webhook-test-secret-not-a-real-one"


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1/", "127.0.0.1, a loopback address"),
    ("http://localhost:8080/hook", "a loopback address"),
    ("http://[::1]/", "a loopback address"),
    ("http://10.1.2.3/", "a private address"),
    ("https://192.168.0.10/x", "a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://[::ffff:169.254.169.254]/", "a link-local address"),
    ("http://100.100.100.200/", "not a public address"),
    ("http://0.0.0.0/", "an unspecified address"),
    ("ftp://93.184.215.14/", "must be an http:// or https:// URL"),
    ("file:///etc/passwd", "must be an http:// or https:// URL"),
    ("http:///nohost", "names no host"),
    ("http://93.184.215.14:99999/", "port"),
    ("http://no-such-host.invalid/", "does not resolve"),
])  # fmt: skip
def test_targets_this_service_will_not_call_are_refused_with_a_sentence(url, words):
    with pytest.raises(InvalidRequest, match=words) as refused:
        check_target(url, SECRET, allow_private=False)
    assert str(refused.value).endswith(".")


def test_public_targets_pass_and_private_ones_only_when_allowed():
    check_target("https://93.184.215.14/hooks/waterz?token=abc", SECRET, allow_private=False)
    check_target("http://127.0.0.1:9/", SECRET, allow_private=True)
    with pytest.raises(InvalidRequest, match="WEBHOOK_SECRET is not set"):
        check_target("https://93.184.215.14/", None, allow_private=False)


def test_the_signature_is_the_hmac_of_the_exact_body():
    body = b'{"task_id":"x","state":"SUCCESS"}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(body, SECRET) == f"sha256={expected}"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("webhook-redis")
    port = free_port()
    proc = start_redis(port, workdir)
    yield f"redis://127.0.0.1:{port}/0"
    stop([proc])


def _job(store: JobStore, callback: str | None = "http://example.com/hook", deadline_s: float = 3600) -> str:
    job_id = uuid.uuid4().hex
    store.create(job_id, filename="a.mp4", input_key=f"uploads/{job_id}/source.mp4",
                 info={"frames": 10, "width": 64, "height": 48}, deadline_s=deadline_s)  # fmt: skip
    store.claim_processing(job_id, {}, callback)
    store.advance(job_id, "PROGRESS", 40, "inpainting")
    return job_id


def test_every_way_a_job_ends_queues_its_webhook_once(redis_url):
    """Finalize's success, a failing task, a cancel, the deadline and the reaper giving up all
    end a job through the store's one transition: each queues the webhook once, and a job
    without a callback_url queues none."""
    ended: list[str] = []
    store = JobStore.from_url(redis_url, on_end=ended.append)
    leases = Leases(store, lease_s=3)
    done, failed, cancelled, late, lost = (_job(store) for _ in range(5))
    silent = _job(store, callback=None)
    assert store.succeed(done, f"results/{done}.mp4")
    assert store.fail(failed, "Processing failed while cleaning segment 0: RuntimeError: boom")
    assert store.fail(cancelled, "cancelled by request")
    store.r.hset(f"waterz:job:{late}", mapping={"queued_at": time.time() - 120, "deadline_s": 60})
    assert store.check_deadline(late)["state"] == "FAILURE"
    lease = leases.start(lost, "seg:0", "gone@host")
    store.r.zadd("waterz:running", {f"{lost}|seg:0": time.time() - 1})
    reap(leases, lambda job_id, step: None, max_attempts=lease.attempt, fail=store.fail)
    assert store.get(lost)["state"] == "FAILURE"
    assert store.fail(silent, "cancelled by request")
    for job_id in (done, failed, cancelled, late, lost):  # ended already: nothing happens again
        assert not store.fail(job_id, "cancelled by request")
    assert sorted(ended) == sorted([done, failed, cancelled, late, lost])
    pending = set(store.r.zrange("waterz:webhooks", 0, -1))
    assert pending >= {done, failed, cancelled, late, lost} and silent not in pending


def test_an_on_end_that_fails_leaves_the_webhook_to_the_sweep(redis_url):
    def broker_away(job_id: str) -> None:
        raise ConnectionError("the broker is away")

    store = JobStore.from_url(redis_url, on_end=broker_away, webhook_grace_s=0.0)
    job_id = _job(store)
    assert store.fail(job_id, "cancelled by request")  # the job still ends
    time.sleep(0.01)
    assert job_id in store.webhooks_due()
    assert store.claim_webhook(job_id, time.time() + 60)
    assert not store.claim_webhook(job_id, time.time() + 60)  # one sweeping worker takes it


class Receiver:
    """A local HTTP receiver in a thread: records each POST and answers with the next code of
    `answers` (then 200)."""

    def __init__(self):
        self.calls: list[dict] = []
        self.answers: dict[str, list[int]] = {}
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.calls.append({"path": self.path, "body": body, "headers": dict(self.headers),
                                       "at": time.time()})  # fmt: skip
                codes = received.answers.get(self.path, [])
                self.send_response(codes.pop(0) if codes else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def to(self, path: str) -> list[dict]:
        return [c for c in self.calls if c["path"] == path]

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    env = {"WEBHOOK_SECRET": SECRET, "WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_BACKOFF_S": "0.5", "MIN_SEGMENTS": "1",
           "REAPER_INTERVAL_S": "1"}  # fmt: skip
    svc = Service(tmp_path_factory.mktemp("webhooks"), workers=1, env=env)
    yield svc
    svc.close()


def _delivered(service, task_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = service.http.get(f"/api/status/{task_id}").json()
        if status["metadata"]["webhook"]["state"] in ("delivered", "given up"):
            return status
        time.sleep(0.2)
    raise TimeoutError(f"no webhook outcome for {task_id}")


@pytest.mark.slow
def test_a_job_s_webhook_arrives_once_signed_with_its_status(service, receiver, clips):
    clip = clips("shake_opaque")
    task_id = service.upload(clip.path).json()["task_id"]
    r = service.http.post("/api/process", json={"task_id": task_id, "inpainter": "telea",
                                                "callback_url": f"{receiver.url}/ok"})  # fmt: skip
    assert r.status_code == 202, r.text
    status = _delivered(service, task_id)
    time.sleep(3)  # several sweeps later: still once
    calls = receiver.to("/ok")
    assert len(calls) == 1
    call = calls[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), call["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(call["headers"]["X-Waterz-Signature"], expected)
    sent = json.loads(call["body"])
    assert (sent["task_id"], sent["state"]) == (task_id, "SUCCESS")
    assert sent["result"]["result_url"] == status["result"]["result_url"]
    assert call["headers"]["Content-Type"] == "application/json"
    hook = status["metadata"]["webhook"]
    assert (hook["state"], hook["attempts"], hook["last_code"]) == ("delivered", 1, 200)


@pytest.mark.slow
def test_a_receiver_failing_twice_gets_a_third_attempt_and_the_count_is_kept(service, receiver, clips):
    receiver.answers["/flaky"] = [500, 500]
    task_id = service.upload(clips("shake_opaque").path).json()["task_id"]
    service.http.post("/api/process", json={"task_id": task_id, "inpainter": "telea",
                                            "callback_url": f"{receiver.url}/flaky"}).raise_for_status()  # fmt: skip
    status = _delivered(service, task_id)
    hook = status["metadata"]["webhook"]
    assert (hook["attempts"], hook["last_code"], hook["error"]) == (3, 200, None)
    calls = receiver.to("/flaky")
    assert len(calls) == 3
    gaps = [b["at"] - a["at"] for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.4 and gaps[1] >= 0.9  # backed off: 0.5 s, then 1 s
    bodies = [json.loads(c["body"]) for c in calls]
    assert all(c["headers"]["X-Waterz-Signature"] == sign(c["body"], SECRET) for c in calls)
    assert [b["metadata"]["webhook"]["attempts"] for b in bodies] == [1, 2, 3]


@pytest.mark.slow
def test_a_cancelled_job_and_a_failed_job_notify_too(service, receiver, clips):
    first = service.upload(clips("slow_pan").path).json()["task_id"]
    service.http.post("/api/process", json={"task_id": first, "callback_url": f"{receiver.url}/cancel"})
    assert service.http.delete(f"/api/jobs/{first}").status_code == 200
    second = service.upload(clips("pan_jump").path).json()["task_id"]
    for path in (service.workdir / "storage" / "uploads" / second).iterdir():
        path.unlink()  # the job fails in its worker: its upload is gone
    service.http.post("/api/process", json={"task_id": second, "callback_url": f"{receiver.url}/fail"})
    for task_id, path, error in ((first, "/cancel", "cancelled by request"), (second, "/fail", "missing from storage")):
        status = _delivered(service, task_id)
        assert status["state"] == "FAILURE" and status["metadata"]["webhook"]["last_code"] == 200
        (call,) = receiver.to(path)
        sent = json.loads(call["body"])
        assert sent["state"] == "FAILURE" and error in sent["error"]


@pytest.mark.slow
def test_a_receiver_that_never_answers_is_given_up_after_the_attempts(service, receiver, clips):
    receiver.answers["/down"] = [503] * 10
    task_id = service.upload(clips("shake_opaque").path).json()["task_id"]
    service.http.post("/api/process", json={"task_id": task_id, "inpainter": "telea",
                                            "callback_url": f"{receiver.url}/down"}).raise_for_status()  # fmt: skip
    status = _delivered(service, task_id, timeout=90)
    hook = status["metadata"]["webhook"]
    assert (hook["state"], hook["attempts"], hook["last_code"], hook["delivered_at"]) == ("given up", 5, 503, None)
    assert hook["error"] == "the receiver answered HTTP 503"
    time.sleep(3)
    assert len(receiver.to("/down")) == 5
