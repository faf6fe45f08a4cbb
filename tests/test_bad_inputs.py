"""What users upload, good and bad, through the real service: every bad input gets a 4xx with a
sentence or a FAILURE with one, awkward but valid videos come back whole, and a good job still
succeeds afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from tests.service import Service
from waterz.video import probe

pytestmark = pytest.mark.slow
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("inputs"), workers=2, env={"MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12"})
    yield svc
    svc.close()


def ffmpeg(*args) -> subprocess.CompletedProcess:
    return subprocess.run([FFMPEG, "-y", "-v", "error", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def source(clips):
    return clips("pan_jump").path


def refused_inputs(source: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words the answer must contain)."""
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp / "notes.mp4"
    text.write_text("not a video\n" * 50)
    truncated = tmp / "truncated.mp4"
    truncated.write_bytes(source.read_bytes()[:3000])
    still = tmp / "still.png"
    cv2.imwrite(str(still), np.zeros((64, 64, 3), np.uint8))
    audio = tmp / "tone.m4a"
    ffmpeg("-i", source, "-vn", "-c:a", "copy", audio)
    huge = tmp / "huge.mov"  # 16000x12000 PNG frames: half a megabyte on disk, gigabytes decoded
    ffmpeg("-f", "lavfi", "-i", "color=black:s=16000x12000:d=0.08:r=25", "-c:v", "png", "-pix_fmt", "gray", huge)
    no_rate = tmp / "no_rate.mp4"  # every frame stamped 0: no frame rate to keep
    ffmpeg("-i", source, "-c", "copy", "-bsf:v", "setts=ts=0", no_rate)
    return {
        "empty file": (empty, "empty"),
        "text renamed .mp4": (text, "not a video"),
        "truncated mp4": (truncated, "'truncated.mp4'"),
        "still image": (still, "still image"),
        "audio only": (audio, "no video stream"),
        "absurd dimensions": (huge, "16000x12000"),
        "broken frame-rate metadata": (no_rate, "frame rate"),
    }


def test_bad_files_get_415_with_a_sentence(service, source, tmp_path):
    for name, (path, words) in refused_inputs(source, tmp_path).items():
        r = service.upload(path)
        assert r.status_code == 415, name
        assert words in r.json()["detail"], (name, r.json()["detail"])


def awkward_inputs(source: Path, tmp: Path) -> dict[str, Path]:
    """Valid videos that are easy to get wrong."""
    made = {}
    recipes = {
        "one frame": ["-i", source, "-frames:v", 1, "-c:v", "libx264", "-pix_fmt", "yuv420p"],
        "odd size 321x241": ["-i", source, "-vf", "scale=321:241", "-c:v", "libx264", "-pix_fmt", "yuv444p"],
        "4:4:4": ["-i", source, "-c:v", "libx264", "-pix_fmt", "yuv444p"],
        "10-bit": ["-i", source, "-c:v", "libx264", "-pix_fmt", "yuv420p10le"],
        "variable frame rate": ["-i", source, "-vf", "select='not(eq(mod(n\\,4)\\,1))'", "-fps_mode", "vfr",
                                "-c:v", "libx264", "-pix_fmt", "yuv420p"],
        "rotated phone video": ["-display_rotation", 90, "-i", source, "-c", "copy"],
    }  # fmt: skip
    for name, args in recipes.items():
        out = tmp / f"{name.replace(' ', '_').replace(':', '')}.mp4"
        done = ffmpeg(*args, out)
        if done.returncode == 0:
            made[name] = out
        else:
            print(f"could not make the '{name}' input here: {done.stderr.strip()[:200]}")
    return made


def test_awkward_but_valid_videos_come_back_whole(service, source, tmp_path):
    made = awkward_inputs(source, tmp_path)
    assert {"one frame", "odd size 321x241", "4:4:4", "variable frame rate", "rotated phone video"} <= set(made)
    for name, path in made.items():
        info = probe(path)
        status = service.run_job(path, timeout=180)
        assert status["state"] == "SUCCESS", (name, status.get("error"))
        out = probe(service.download(status, tmp_path / f"out-{path.name}"))
        assert (out.frames, out.width, out.height) == (info.frames, info.width, info.height), name
        assert out.rotation == info.rotation, name


def test_names_and_requests_users_get_wrong(service, source):
    for name, shown in (("../../etc/passwd.mp4", "passwd.mp4"), ("видео 🎬.mp4", "видео 🎬.mp4"),
                        ("x" * 296 + ".mp4", "x" * 196 + ".mp4")):  # fmt: skip
        r = service.upload(source, name=name)
        assert r.status_code == 200, name
        assert r.json()["filename"] == shown
    stored = service.workdir / "storage"
    assert all(p.resolve().is_relative_to(stored.resolve()) for p in stored.rglob("*"))
    assert not (stored.parent / "etc").exists()
    r = service.http.post("/api/upload", data={"video": "x"})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    for body, words in (({"task_id": 12}, "task_id"), ({"task_id": "a", "boxes": "no"}, "boxes"),
                        ({"task_id": "a", "boxes": [{"x": "left"}]}, "boxes")):  # fmt: skip
        r = service.http.post("/api/process", json=body)
        assert r.status_code == 422 and words in r.json()["detail"], body
    r = service.http.post("/api/process", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].endswith(".")
    task_id = service.upload(source).json()["task_id"]
    first = service.http.post("/api/process", json={"task_id": task_id})
    second = service.http.post("/api/process", json={"task_id": task_id, "inpainter": "telea"})
    assert first.status_code == second.status_code == 202
    status = service.wait(task_id)
    assert status["state"] == "SUCCESS" and status["metadata"]["inpainter"] == "auto"  # one job: the first


def test_a_good_job_still_succeeds_after_all_that(service, clips, tmp_path):
    clip = clips("shake_opaque")
    status = service.run_job(clip.path)
    assert status["state"] == "SUCCESS"
    assert probe(service.download(status, tmp_path / "good.mp4")).frames == clip.spec.frames
    assert service.http.get("/api/health").json()["workers"] == 2  # no worker died
