"""`waterz.client.Client` and `waterz submit` against the real service behind an API key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import httpx
import pytest

from tests.service import Service
from waterz.client import Client, JobFailed, NotFound, Rejected, Unauthorized, Unreachable
from waterz.service import free_port

pytestmark = pytest.mark.slow
KEY = "submit-test-key-not-a-secret"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    env = {"API_KEY": KEY, "MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12",
           "WEIGHTS_DIR": str(tmp_path_factory.mktemp("no-weights"))}  # fmt: skip
    svc = Service(tmp_path_factory.mktemp("submit"), workers=2, env=env)
    yield svc
    svc.close()


def _submit(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """`waterz submit ARGS`, with API_KEY and WATERZ_SERVER from `env` only."""
    full = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "WATERZ_SERVER")}
    full.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "waterz.cli", "submit", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=full, cwd=ROOT)  # fmt: skip


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_folder_of_two_videos_and_a_stray_file(service, clips, tmp_path):
    """Both videos come back with every frame; the file that is not a video is named with the
    service's sentence; the exit status says one failed."""
    folder = tmp_path / "videos"
    folder.mkdir()
    first, second = clips("pan_jump"), clips("shake_opaque")
    shutil.copy(first.path, folder / "a.mp4")
    shutil.copy(second.path, folder / "b.mp4")
    (folder / "notes.txt").write_text("not a video\n")
    out = tmp_path / "clean"
    done = _submit(folder, "--server", f"http://127.0.0.1:{service.port}", "--api-key", KEY, "-o", out)
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [Path(r["input"]).name for r in lines] == ["a.mp4", "b.mp4", "notes.txt"]
    assert [r["state"] for r in lines] == ["SUCCESS", "SUCCESS", "FAILURE"]
    for line, clip in zip(lines, (first, second)):
        assert Path(line["output"]) == out / f"{Path(line['input']).stem}.clean.mp4"
        assert _decoded_frames(Path(line["output"])) == clip.spec.frames == line["frames"]
    sentence = "'notes.txt' is not a video file that can be decoded"
    assert lines[2]["error"].startswith(sentence)
    assert f"waterz: {folder / 'notes.txt'}: {sentence}" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.clean.mp4", "b.clean.mp4"]


def test_bad_usage_and_an_unreachable_service_exit_2_with_one_line(service, clips, tmp_path):
    url = f"http://127.0.0.1:{service.port}"
    clip = clips("pan_jump").path
    taken = tmp_path / "taken"
    taken.write_text("a file")
    cases = [
        ((clip, "--server", f"http://127.0.0.1:{free_port()}", "--api-key", KEY, "-o", tmp_path / "o1"),
         "cannot be reached"),
        ((clip, "--server", url, "--api-key", "wrong", "-o", tmp_path / "o2"), "needs an API key"),
        ((clip, "--server", url, "--api-key", KEY, "-o", tmp_path / "o3", "--inpainter", "magic"),
         "The service has no inpainter 'magic'; it knows: auto,"),
        ((clip, "--server", url, "--api-key", KEY, "-o", tmp_path / "o4", "--inpainter", "propainter"),
         "waterz weights download"),
        ((clip, "--api-key", KEY, "-o", tmp_path / "o5"), "--server URL (or set WATERZ_SERVER)"),
        ((clip, clip, "--server", url, "--api-key", KEY, "-o", taken), "is a file"),
        ((tmp_path / "empty", "--server", url, "--api-key", KEY, "-o", tmp_path / "o6"), "no file to clean"),
    ]  # fmt: skip
    (tmp_path / "empty").mkdir()
    uploads = service.workdir / "storage" / "uploads"
    before = set(uploads.iterdir()) if uploads.exists() else set()
    for args, words in cases:
        done = _submit(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr, (args, done.stderr)
        assert done.stdout == ""
    assert not any((tmp_path / f"o{k}").exists() for k in range(1, 7))
    assert (set(uploads.iterdir()) if uploads.exists() else set()) == before  # nothing was uploaded


def test_the_environment_names_the_service_and_the_key(service, clips, tmp_path):
    done = _submit(clips("shake_opaque").path, "-o", tmp_path / "out",
                   env={"WATERZ_SERVER": f"http://127.0.0.1:{service.port}", "API_KEY": KEY})  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert line["state"] == "SUCCESS" and Path(line["output"]).name == "shake_opaque.clean.mp4"


def test_the_client_uploads_follows_and_downloads(service, clips, tmp_path):
    clip = clips("pan_jump")
    with Client(f"http://127.0.0.1:{service.port}", api_key=KEY) as client:
        job = client.upload(clip.path)
        assert (job["frames"], job["width"], job["height"]) == (clip.spec.frames, clip.spec.width, clip.spec.height)
        assert client.process(job["task_id"], inpainter="telea")["state"] in ("PENDING", "STARTED", "PROGRESS")
        statuses = list(client.events(job["task_id"]))
        assert statuses[-1]["state"] == "SUCCESS" and len(statuses) > 2
        assert [s["progress"] for s in statuses] == sorted(s["progress"] for s in statuses)
        with pytest.raises(Rejected, match="has not ended yet"):
            client.download(statuses[0], tmp_path / "early.mp4")
        saved = client.download(job["task_id"], tmp_path / "clean.mp4")
        assert _decoded_frames(saved) == clip.spec.frames
        assert client.wait(job["task_id"])["state"] == "SUCCESS"

        with pytest.raises(NotFound, match="No job has the id") as missing:
            client.status("0" * 32)
        assert missing.value.status_code == 404
        text = tmp_path / "notes.mp4"
        text.write_text("not a video")
        with pytest.raises(Rejected, match="'notes.mp4' is not a video file") as refused:
            client.upload(text)
        assert refused.value.status_code == 415
        failing = client.upload(clip.path)["task_id"]
        for path in (service.workdir / "storage" / "uploads" / failing).iterdir():
            path.unlink()
        client.process(failing)
        ended = client.wait(failing, timeout_s=120)
        assert ended["state"] == "FAILURE"
        with pytest.raises(JobFailed, match="missing from storage"):
            client.download(ended, tmp_path / "never.mp4")
        assert not (tmp_path / "never.mp4").exists()
    with pytest.raises(Unauthorized, match="needs an API key"), Client(str(service.http.base_url)) as anonymous:
        anonymous.health()
    with pytest.raises(Unreachable, match="cannot be reached"), Client(f"http://127.0.0.1:{free_port()}") as nobody:
        nobody.health()


class _NoStreams:
    """An HTTP proxy in front of the service that passes everything but the live events, which it
    answers as a proxy that buffers them might: a plain empty page."""

    def __init__(self, upstream: str):
        forward = httpx.Client(base_url=upstream, timeout=60)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.startswith("/api/events/"):
                    self._answer(200, b"", "text/html")
                    return
                r = forward.get(self.path, headers={"Authorization": self.headers.get("Authorization", "")})
                self._answer(r.status_code, r.content, r.headers.get("content-type", ""))

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                r = forward.post(self.path, content=body, headers={k: v for k, v in self.headers.items()
                                                                   if k.lower() not in ("host", "content-length")})
                self._answer(r.status_code, r.content, r.headers.get("content-type", ""))

            def _answer(self, code: int, body: bytes, kind: str):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_events_fall_back_to_polling_where_the_stream_cannot_be_had(service, clips):
    proxy = _NoStreams(f"http://127.0.0.1:{service.port}")
    try:
        with Client(proxy.url, api_key=KEY, poll_s=0.2) as client:
            task_id = client.upload(clips("shake_opaque").path)["task_id"]
            client.process(task_id, inpainter="telea")
            statuses = list(client.events(task_id))
    finally:
        proxy.server.shutdown()
    assert statuses[-1]["state"] == "SUCCESS" and len(statuses) >= 2
    assert all(a != b for a, b in zip(statuses, statuses[1:]))  # each one a change
