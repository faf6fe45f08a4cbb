"""The job steps without Celery, against a real redis-server and file storage: the completion
record is idempotent and exactly one call triggers finalize, whatever the order and repeats."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from waterz.api.uploads import store_upload
from waterz.core.settings import Settings
from waterz.jobs import JobStore
from waterz.jobs.housekeeping import private_tmp, sweep, sweep_orphans
from waterz.jobs.leases import Leases, reap, segment_step
from waterz.jobs.runtime import Runtime
from waterz.jobs.steps import detect_chunk, encode_chunk, finalize, plan_job, prepare, process, second_look
from waterz.service import free_port, start_redis, stop
from waterz.storage import open_storage
from waterz.video import probe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("steps")
    port = free_port()
    proc = start_redis(port, workdir)
    settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", storage_url=f"file://{workdir / 'storage'}",
                        min_segments=3, min_chunk_frames=12)  # fmt: skip
    store = JobStore.from_url(settings.redis_url)
    yield Runtime(settings, store, open_storage(settings.storage_url), Leases(store, settings.lease_s))
    stop([proc])


def run_steps(runtime, job_id: str, until: str | None = None, twice: bool = False, seed: int | None = None,
              online_workers: int = 2, queued: list[str] | None = None) -> list[str]:
    """Run the job's steps in this process as they dispatch each other, until none is left (or
    until a step named `until` is dispatched: it is not run). `twice`: every step is delivered
    twice; `seed`: the queue is taken in a shuffled order; `queued`: the steps already on their
    way (prepare is then not run). Returns the steps delivered, in order."""
    queue: list[str] = list(queued or [])
    rng = random.Random(seed)

    def dispatch(step: str) -> None:
        queue.extend([step, step] if twice else [step])

    ran = []
    if queued is None:
        prepare(runtime, job_id, dispatch, online_workers)
        ran.append("prepare")
    while queue:
        step = queue.pop(rng.randrange(len(queue)) if seed is not None else 0)
        if step == until:
            queue.append(step)
            break
        ran.append(step)
        if runtime.store.get(job_id)["state"] in ("SUCCESS", "FAILURE"):
            continue  # as the tasks do: a step delivered after the job ended does nothing
        name, _, index = step.partition(":")
        worker = "test@host"
        if name == "detect":
            detect_chunk(runtime, job_id, int(index), worker, dispatch)
        elif name == "plan":
            plan_job(runtime, job_id, dispatch, online_workers, worker)
        elif name == "seg":
            process(runtime, job_id, int(index), worker, dispatch)
        elif name == "again":
            second_look(runtime, job_id, int(index), worker, dispatch)
        elif name == "encode":
            encode_chunk(runtime, job_id, int(index), worker, dispatch)
        elif name == "finalize":
            finalize(runtime, job_id, worker)
    return ran


def test_every_step_runs_once_whatever_the_order_and_redeliveries(runtime, clips, tmp_path):
    clip = clips("pan_jump")
    with open(clip.path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]
    assert runtime.store.claim_processing(job_id, {})
    assert not runtime.store.claim_processing(job_id, {"inpainter": "telea"})  # the second call changes nothing
    ran = run_steps(runtime, job_id, twice=True, seed=3)
    total = int(runtime.store.get(job_id)["total_segments"])
    assert total >= 3
    # each step was delivered twice, out of order; the next steps were started once each
    from waterz.jobs.phases import Phases

    chunks = {phase: len(Phases(runtime.store).chunks(job_id, phase)) for phase in ("detect", "encode")}
    assert chunks == {"detect": 1, "encode": 2}  # 72 frames: one chunk under 2 x DETECT_CHUNK_FRAMES
    for phase, count in (("detect", chunks["detect"]), ("seg", total), ("encode", chunks["encode"])):
        assert sorted(s for s in ran if s.startswith(phase + ":")) == sorted(
            f"{phase}:{i}" for i in range(count) for _ in (0, 1))  # fmt: skip
    assert ran.count("plan") == 2 and ran.count("finalize") == 2  # dispatched once each, delivered twice
    for seg in runtime.store.segments(job_id, total):
        assert seg["attempts"] == 1 and seg["worker"] == "test@host"  # a redelivery after finishing does no work
    job = runtime.store.get(job_id)
    assert job["state"] == "SUCCESS" and json.loads(job["progress"]) == 100
    assert int(job["finalize_runs"]) == 1
    runtime.storage.get_file(job["result_key"], tmp_path / "out.mp4")
    assert probe(tmp_path / "out.mp4").frames == clip.spec.frames
    assert list(runtime.storage.list(f"jobs/{job_id}/")) == []  # intermediates deleted
    # a late update cannot move a finished job backwards
    assert not runtime.store.advance(job_id, "PROGRESS", 40, "inpainting")
    assert runtime.store.get(job_id)["state"] == "SUCCESS"


def test_the_service_s_steps_give_the_command_line_s_result(runtime, clips, tmp_path):
    """Detection in chunks, segments that decode their own frames, encoding in chunks joined by
    stream copy: the same frames, timestamps and audio as `waterz remove`, and as clean."""
    from tests.conftest import psnr
    from waterz.pipeline.run import remove_watermark
    from waterz.video import frame_timestamps, iter_frames

    clip = clips("pan_jump")
    with open(clip.path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]
    assert runtime.store.claim_processing(job_id, {})
    run_steps(runtime, job_id)
    runtime.storage.get_file(runtime.store.get(job_id)["result_key"], tmp_path / "service.mp4")
    remove_watermark(clip.path, tmp_path / "cli.mp4", settings=runtime.settings)
    service, cli = probe(tmp_path / "service.mp4"), probe(tmp_path / "cli.mp4")
    assert service.frames == cli.frames == clip.spec.frames and service.has_audio and service.fps == cli.fps
    assert frame_timestamps(tmp_path / "service.mp4") == frame_timestamps(tmp_path / "cli.mp4")
    inside = clip.alpha > 0.05
    scores = [psnr(np.stack(list(iter_frames(tmp_path / name))), clip.clean, inside) for name in ("service.mp4",
                                                                                               "cli.mp4")]
    assert scores[0] >= scores[1] - 0.5, scores
    tasks = {t["step"] for t in runtime_tasks(runtime, job_id)}
    assert {"prepare", "detect:0", "plan", "seg:0", "encode:0", "encode:1", "finalize"} <= tasks


def runtime_tasks(runtime, job_id: str) -> list[dict]:
    from waterz.jobs.phases import Phases

    return Phases(runtime.store).tasks(job_id)


def test_the_video_is_probed_once_per_job_when_it_is_uploaded(runtime, clips, monkeypatch):
    """The steps read what the upload's probe found; none probes the video again."""
    import waterz.jobs.steps

    with open(clips("pan_jump").path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]

    def probe_again(path, *args, **kwargs):
        raise AssertionError(f"probed again: {path}")

    monkeypatch.setattr(waterz.jobs.steps, "probe", probe_again)
    assert runtime.store.claim_processing(job_id, {"inpainter": "telea"})
    run_steps(runtime, job_id)
    assert runtime.store.get(job_id)["state"] == "SUCCESS"


def test_progress_never_goes_down(runtime, clips):
    with open(clips("pan_jump").path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]
    runtime.store.advance(job_id, "PROGRESS", 50, "inpainting")
    runtime.store.advance(job_id, "PROGRESS", 30, "extracting")
    job = runtime.store.get(job_id)
    assert (int(job["progress"]), job["stage"]) == (50, "extracting")


def _prepared_job(runtime, clip) -> tuple[str, int]:
    """A job detected and planned, its segments not started."""
    with open(clip.path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]
    assert runtime.store.claim_processing(job_id, {})
    run_steps(runtime, job_id, until="seg:0")
    return job_id, int(runtime.store.get(job_id)["total_segments"])


def test_a_late_attempt_neither_counts_nor_overwrites_the_newer_one(runtime, clips):
    job_id, total = _prepared_job(runtime, clips("pan_jump"))
    leases = runtime.leases
    presumed_dead = leases.start(job_id, segment_step(0), "a@host")
    assert presumed_dead.attempt == 1
    # The reaper gave segment 0 to another worker, which runs it as attempt 2 and records it.
    process(runtime, job_id, 0, "b@host", lambda step: None)
    record = runtime.store.segments(job_id, total)[0]
    assert record["attempts"] == 2 and record["result_attempt"] == 2 and record["worker"] == "b@host"
    # Attempt 1 finishes late: refused, not counted, and it wrote under its own name anyway.
    accepted, finished = runtime.store.segment_finished(job_id, 0, presumed_dead.attempt)
    assert (accepted, finished) == (False, 1)
    assert not leases.renew(presumed_dead) and presumed_dead.lost
    assert runtime.store.segments(job_id, total)[0]["result_attempt"] == 2
    assert runtime.storage.size(f"jobs/{job_id}/segment_0_a2.npy")


def test_a_prepare_lost_before_it_started_detection_starts_it_when_run_again(runtime, clips, tmp_path):
    """A worker lost inside `prepare` after it planned the detection chunks but before they were
    on their way: its lease runs out and the reaper runs `prepare` again, which must start them
    (the chunks the lost run planned, whatever the workers now), and the job then ends."""
    from waterz.jobs.phases import Phases

    clip = clips("pan_jump")
    with open(clip.path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]
    assert runtime.store.claim_processing(job_id, {})

    class Lost(Exception):
        pass

    def lost(step: str) -> None:
        raise Lost(step)  # the worker died as it was about to queue the step

    with pytest.raises(Lost):
        prepare(runtime, job_id, lost, 2)
    planned = Phases(runtime.store).chunks(job_id, "detect")
    queued: list[str] = []
    prepare(runtime, job_id, queued.append, 5)  # run again by the reaper, with more workers online
    assert Phases(runtime.store).chunks(job_id, "detect") == planned
    assert queued == [f"detect:{chunk.index}" for chunk, _ in planned]
    run_steps(runtime, job_id, queued=queued)
    job = runtime.store.get(job_id)
    assert job["state"] == "SUCCESS", job.get("error")
    runtime.storage.get_file(job["result_key"], tmp_path / "out.mp4")
    assert probe(tmp_path / "out.mp4").frames == clip.spec.frames


def test_the_reaper_dispatches_a_lost_step_again_then_gives_up(runtime, clips):
    job_id, total = _prepared_job(runtime, clips("pan_jump"))
    leases = Leases(runtime.store, lease_s=0.2, requeue_grace_s=0.2)
    dispatched, failed = [], []

    def reap_now():
        return reap(leases, lambda job, step: dispatched.append((job, step)), 3, lambda job, err: failed.append(err))

    held = leases.start(job_id, segment_step(1), "a@host")
    assert reap_now() == []  # the lease is still good
    assert leases.renew(held)
    time.sleep(0.3)  # no renewal: the worker is gone
    assert reap_now() == [(job_id, "seg:1")] and dispatched == [(job_id, "seg:1")]
    assert reap_now() == []  # claimed once: dispatched once
    for attempt in (2, 3):  # the step is started again and lost again
        assert leases.start(job_id, segment_step(1), f"w{attempt}@host").attempt == attempt
        time.sleep(0.3)
        reap_now()
    assert len(dispatched) == 2 and len(failed) == 1
    assert "segment 1" in failed[0] and "3 times" in failed[0]
    assert leases.expired() == []


def test_old_files_are_swept_but_not_a_running_jobs(runtime, clips):
    old, _ = _prepared_job(runtime, clips("pan_jump"))  # queued, still running
    with open(clips("pan_jump").path, "rb") as f:
        idle = store_upload(runtime, f, "clip.mp4")["task_id"]  # uploaded, never processed
    later = time.time() + 3600
    swept = sweep(runtime.store, runtime.storage, ttl_s=60, now=later)  # (with the other tests' jobs)
    assert idle in swept and old not in swept
    assert runtime.storage.size(runtime.store.get(idle)["input_key"]) is None
    assert runtime.store.get(idle)["files_deleted_at"]
    assert runtime.storage.size(runtime.store.get(old)["input_key"])
    runtime.store.fail(old, "cancelled by request")
    assert sweep(runtime.store, runtime.storage, ttl_s=60, now=later) == [old]
    assert sweep(runtime.store, runtime.storage, ttl_s=60, now=later) == []


def test_files_that_belong_to_no_record_are_found_by_listing_and_swept(runtime, clips, tmp_path):
    with open(clips("pan_jump").path, "rb") as f:
        kept = store_upload(runtime, f, "clip.mp4")["task_id"]  # a job with a record
    orphan = uuid.uuid4().hex  # files of a job whose record never was (or was lost with Redis)
    for key in (f"uploads/{orphan}/source.mp4", f"jobs/{orphan}/segment_0_input.npz", f"results/{orphan}.mp4"):
        runtime.storage.put_file(key, clips("pan_jump").path)
    runtime.storage.put_file("notes/readme.txt", clips("pan_jump").path)  # not a job's: never touched
    assert sweep_orphans(runtime.store, runtime.storage, ttl_s=60) == []  # too new yet
    later = time.time() + 3600
    assert orphan in sweep_orphans(runtime.store, runtime.storage, ttl_s=60, now=later)
    left = {key for key, _ in runtime.storage.list("")}
    assert not [key for key in left if orphan in key]
    assert "notes/readme.txt" in left and runtime.storage.size(runtime.store.get(kept)["input_key"])


def test_a_process_deletes_the_temp_files_of_dead_ones_and_no_one_elses(tmp_path):
    """What a killed worker or API left is deleted by the next one to start on that machine; a
    living one's directory (its lock held) is left alone."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from waterz.jobs.housekeeping import private_tmp; "
                               f"print(private_tmp('worker2@host', {str(tmp_path)!r}), flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    theirs = Path(holder.stdout.readline().strip())
    (theirs / "busy.npz").write_bytes(b"in use")
    dead = tmp_path / "waterz-tmp-worker1@host-99999999"
    dead.mkdir()
    (dead / ".lock").touch()
    (dead / "waterz-prepare-x").mkdir()
    (dead / "waterz-prepare-x" / "source.mp4").write_bytes(b"left by a killed run")
    (tmp_path / "someone-else").mkdir()
    try:
        mine = private_tmp("worker1@host", tmp_path)
        assert mine.name == f"waterz-tmp-worker1@host-{os.getpid()}" and [p.name for p in mine.iterdir()] == [".lock"]
        assert not dead.exists() and (theirs / "busy.npz").exists() and (tmp_path / "someone-else").exists()
        assert private_tmp("worker3@host", tmp_path).exists() and mine.exists()  # this process's own stay too
    finally:
        holder.kill()
        holder.wait()
    private_tmp("worker4@host", tmp_path)
    assert not theirs.exists()  # its owner is gone now


def test_segments_keep_the_mark_mattes_for_each_other(runtime, clips):
    """A segment that fitted the mark's blend keeps its matte with the job; the job's other
    segments read it before they run (the engines' use of it: `test_inpaint`)."""
    from waterz.core.matte import Matte

    clip = clips("zoom_faint")
    with open(clip.path, "rb") as f:
        job_id = store_upload(runtime, f, "clip.mp4")["task_id"]
    assert runtime.store.claim_processing(job_id, {"inpainter": "unblend"})
    run_steps(runtime, job_id, until="seg:0", online_workers=1)
    total = int(runtime.store.get(job_id)["total_segments"])
    assert runtime.store.kept_mattes(job_id) == {}
    process(runtime, job_id, 0, "test@host", lambda step: None)
    kept = runtime.store.kept_mattes(job_id)
    assert len(kept) == 1 and runtime.store.kept_mattes(job_id, but=0) == {}
    matte = Matte.from_text(kept[0])
    assert matte.alpha.max() > 0.2 and np.all(matte.colour == 255.0)  # the white 35 % mark
    for i in range(1, total):
        process(runtime, job_id, i, "test@host", lambda step: None)
    assert len(runtime.store.kept_mattes(job_id)) >= 2


def test_a_segment_whose_own_fit_a_later_one_beat_is_cleaned_again_before_it_is_encoded(runtime, tmp_path, caplog):
    """The talking head with a still logo through the service's steps. The first segment runs
    before any other kept a matte, and over its near-still frames its own fit sees less of the
    mark than a later segment's, in the wrong colour; once every segment is done it is cleaned
    again with the matte the later segment kept (reusing what its first cleaning found in other
    frames), and the encode chunks that need it wait for that, so it ends up better than Telea
    given the exact mask."""
    from tests.conftest import psnr, still_logo_over_a_talking_head
    from waterz.video import iter_frames

    caplog.set_level(logging.INFO, logger="waterz.jobs.steps")
    clip, telea = still_logo_over_a_talking_head(tmp_path)
    with open(clip.path, "rb") as f:
        job_id = store_upload(runtime, f, "carphone.mp4")["task_id"]
    assert runtime.store.claim_processing(job_id, {"inpainter": "auto"})
    ran = run_steps(runtime, job_id, online_workers=1)
    assert 0 in runtime.store.unmatched(job_id)  # it had no matte to use
    assert "again:0" in ran and ran.index("again:0") < min(ran.index(s) for s in ran if s.startswith("encode:"))
    assert "segment 0 cleaned again with" in caplog.text and "(its first sources reused)" in caplog.text
    assert not list(runtime.storage.list(f"jobs/{job_id}/"))  # the kept sources went with the intermediates
    runtime.storage.get_file(runtime.store.get(job_id)["result_key"], tmp_path / "out.mp4")
    out = np.stack(list(iter_frames(tmp_path / "out.mp4")))
    first = slice(0, runtime.store.segment_plan(job_id, 0)["end_frame"] + 1)
    inside = clip.alpha[first] > 0.05
    assert psnr(out[first], clip.clean[first], inside) >= psnr(telea[first], clip.clean[first], inside)


def test_the_service_keeps_bit_depth_colour_tags_subtitles_and_chapters(runtime, tmp_path):
    """A 10-bit input tagged bt709 with a text subtitle track, a title and two chapters, through
    the service's steps: its encode chunks are 10-bit and tagged, and the joined result carries
    the subtitles, the title and the chapters."""
    import av
    import imageio_ffmpeg

    from tests.test_video import CHAPTERS, SUBTITLES
    from waterz.jobs.phases import Phases

    (tmp_path / "s.srt").write_text(SUBTITLES)
    (tmp_path / "meta.txt").write_text(CHAPTERS)
    source = tmp_path / "in.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=25:duration=2", "-i", tmp_path / "s.srt",
                    "-i", tmp_path / "meta.txt", "-map", "0:v", "-map", "1:s", "-map_metadata", "2",
                    "-map_chapters", "2", "-vf", "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p10le", "-c:s", "mov_text", source], check=True)  # fmt: skip
    with open(source, "rb") as f:
        job_id = store_upload(runtime, f, "in.mp4")["task_id"]
    boxes = [{"x": 10, "y": 10, "w": 60, "h": 40}]
    assert runtime.store.claim_processing(job_id, {"boxes": boxes, "inpainter": "telea"})
    run_steps(runtime, job_id)
    assert len(Phases(runtime.store).chunks(job_id, "encode")) == 2
    runtime.storage.get_file(runtime.store.get(job_id)["result_key"], tmp_path / "out.mp4")

    def described(path):
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            return (frame.format.name, frame.color_primaries, frame.color_trc, frame.colorspace,
                    c.metadata.get("title"), [ch["metadata"].get("title") for ch in c.chapters()],
                    [s.codec_context.name for s in c.streams.subtitles])  # fmt: skip

    assert described(tmp_path / "out.mp4") == described(source) == ("yuv420p10le", 1, 1, 1, "My clip",
                                                                     ["One", "Two"], ["mov_text"])  # fmt: skip
    assert probe(tmp_path / "out.mp4").frames == 50
