"""The job steps without Celery, against a real redis-server and file storage: the completion
record is idempotent and exactly one call triggers finalize, whatever the order and repeats."""

from __future__ import annotations

import json

import pytest

from api.uploads import store_upload
from jobs import JobStore
from jobs.runtime import Runtime
from jobs.steps import finalize, prepare, process
from storage import open_storage
from video import probe
from waterz.service import free_port, start_redis, stop
from waterz.settings import Settings


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("steps")
    port = free_port()
    proc = start_redis(port, workdir)
    settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", storage_url=f"file://{workdir / 'storage'}",
                        min_segments=3, min_chunk_frames=12)  # fmt: skip
    yield Runtime(settings, JobStore.from_url(settings.redis_url), open_storage(settings.storage_url))
    stop([proc])


def test_repeated_and_reordered_segments_trigger_finalize_once(runtime, clips, tmp_path):
    clip = clips("pan_jump")
    with open(clip.path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]
    assert runtime.store.claim_processing(job_id, {})
    assert not runtime.store.claim_processing(job_id, {"inpainter": "telea"})  # the second call changes nothing
    dispatched: list[int] = []
    total = prepare(runtime, job_id, dispatched.append, online_workers=1)
    assert total >= 3 and dispatched == list(range(total))

    order = [total - 1, 0, 0, *range(1, total), total - 1]  # out of order, with redeliveries
    triggers = [process(runtime, job_id, i, "test@host") for i in order]
    assert triggers.count(True) == 1
    seen: set[int] = set()
    completing = next(k for k, i in enumerate(order) if seen.add(i) or len(seen) == total)
    assert triggers.index(True) == completing  # the call that completed the set, not a later repeat
    for seg in runtime.store.segments(job_id, total):
        assert seg["attempts"] == 1 and seg["worker"] == "test@host"  # a redelivery after finishing does no work

    key = finalize(runtime, job_id)
    runtime.storage.get_file(key, tmp_path / "out.mp4")
    assert probe(tmp_path / "out.mp4").frames == clip.spec.frames
    job = runtime.store.get(job_id)
    assert job["state"] == "SUCCESS" and json.loads(job["progress"]) == 100
    assert runtime.storage.size(f"jobs/{job_id}/segment_0.npy") is None  # intermediates deleted
    # a late update cannot move a finished job backwards
    assert not runtime.store.advance(job_id, "PROGRESS", 40, "inpainting")
    assert runtime.store.get(job_id)["state"] == "SUCCESS"


def test_progress_never_goes_down(runtime, clips):
    with open(clips("pan_jump").path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]
    runtime.store.advance(job_id, "PROGRESS", 50, "inpainting")
    runtime.store.advance(job_id, "PROGRESS", 30, "extracting")
    job = runtime.store.get(job_id)
    assert (int(job["progress"]), job["stage"]) == (50, "extracting")
