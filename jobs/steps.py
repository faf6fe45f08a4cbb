"""The three steps of a distributed job, free of Celery: the tasks in `tasks/` call these.

Everything that crosses between processes goes through `Storage` (files) and `JobStore` (state):
  uploads/<id>/<name>              the original video (written by the API)
  jobs/<id>/segment_<i>_input.npz  a segment's context crops and masks, losslessly compressed
  jobs/<id>/segment_<i>_a<n>.npy   its cleaned pixels from attempt n, and ..._a<n>_mask.npy its
                                   masks (one name per attempt: a late attempt overwrites nothing)
  results/<id>.mp4                 the cleaned video
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from detector.preset import animates
from jobs.leases import segment_step
from jobs.progress import DETECT, EXTRACT, FINALIZE, FINALIZE_RATE, SEGMENTS, in_band, segments_share
from jobs.runtime import Runtime, inpainter
from jobs.store import TERMINAL
from pipeline.plan import Segment
from pipeline.run import (
    SegmentResult,
    Timings,
    clean_segment,
    composite_and_encode,
    detect,
    load_result,
    plan,
    save_result,
    segment_inputs,
)
from pipeline.stop import Stopped, checkpoint, report_to, stop_when
from propainter.matte import Matte, MatteBook, second_looks
from video import probe

log = logging.getLogger(__name__)

CANCELLED = "cancelled by request"


def input_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/segment_{index}_input.npz"


def output_keys(job_id: str, index: int, attempt: int) -> tuple[str, str]:
    """Storage keys of a segment's cleaned pixels and masks from one attempt."""
    return f"jobs/{job_id}/segment_{index}_a{attempt}.npy", f"jobs/{job_id}/segment_{index}_a{attempt}_mask.npy"


def result_key(job_id: str) -> str:
    return f"results/{job_id}.mp4"


class Reporter:
    """Turns a stage's `done/total` into the job's progress, writing to Redis at most twice a second,
    with the stage's count and start (for the estimate of the time left). Each call is also a
    checkpoint: under `stop_when`, a stage that reports stops at its next frame."""

    def __init__(self, rt: Runtime, job_id: str, band: tuple[int, int], every_s: float = 0.5):
        self.rt, self.job_id, self.band, self.every_s = rt, job_id, band, every_s
        self._last = 0.0
        self._started: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        checkpoint(done, total)
        started = self._started.setdefault(stage, time.time())
        now = time.monotonic()
        if now - self._last < self.every_s and done < total:
            return
        self._last = now
        self.rt.store.advance(self.job_id, "PROGRESS", in_band(self.band, done / max(total, 1)), stage,
                              stage_done=done, stage_total=total, stage_started_at=started)  # fmt: skip


class SegmentReporter:
    """Listens to a running segment's checkpoints (`pipeline.stop.report_to`): records its frames
    cleaned so far and moves the job's progress, at most once per `every_s`."""

    def __init__(self, rt: Runtime, job_id: str, seg: Segment, attempt: int, total: int, every_s: float = 1.0):
        self.rt, self.job_id, self.seg, self.attempt, self.total = rt, job_id, seg, attempt, total
        self.every_s = every_s
        self._last = time.monotonic()

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        if self.rt.store.segment_progress(self.job_id, self.seg.index, self.attempt, int(fraction * self.seg.length)):
            advance_segments(self.rt, self.job_id, self.total)


def advance_segments(rt: Runtime, job_id: str, total: int) -> None:
    """Set the job's progress to the share of its segments' frames cleaned so far."""
    rt.store.advance(job_id, "PROGRESS", in_band(SEGMENTS, segments_share(rt.store.segments(job_id, total))),
                     "inpainting")  # fmt: skip


def _download_input(rt: Runtime, job: dict, workdir: Path) -> Path:
    local = workdir / Path(job["input_key"]).name
    rt.storage.get_file(job["input_key"], local)
    return local


def prepare(rt: Runtime, job_id: str, dispatch: Callable[[int], None], online_workers: int) -> int:
    """Detect, plan, store each segment's input and dispatch it as soon as it is stored.
    Returns the number of segments (0: finalize was dispatched directly)."""
    job = rt.store.get(job_id)
    options = json.loads(job.get("options") or "{}")
    timings = Timings()
    rt.store.advance(job_id, "STARTED", 0, "downloading")
    with tempfile.TemporaryDirectory(prefix="waterz-prepare-") as tmp:
        workdir = Path(tmp)
        info = probe(_download_input(rt, job, workdir))
        found: dict = {}
        with timings.stage("detect"):
            marks = detect(info, options.get("detector"), options.get("boxes"), Reporter(rt, job_id, DETECT),
                           rt.settings, report=found)  # fmt: skip
        segments = plan(marks, info, rt.settings, online_workers)
        rt.store.set_plan(job_id, [s.as_dict() for s in segments])
        rt.store.advance(job_id, "PROGRESS", EXTRACT[0], "extracting",
                         frames_with_mark=sum(1 for m in marks if m), preset=found["preset"] or "")  # fmt: skip
        with timings.stage("extract"):
            for seg, crops, masks in segment_inputs(info, marks, segments, Reporter(rt, job_id, EXTRACT)):
                if ended(rt, job_id):
                    return len(segments)  # cancelled (or past its deadline): dispatch nothing more
                if rt.store.is_done(job_id, seg.index):
                    continue  # prepare is running again after a lost worker: this one is recorded
                path = workdir / f"segment_{seg.index}_input.npz"
                np.savez_compressed(path, crops=crops, masks=masks)
                rt.storage.put_file(input_key(job_id, seg.index), path)
                path.unlink()
                dispatch(seg.index)
    rt.store.advance(job_id, "PROGRESS", SEGMENTS[0], "inpainting", prepare_seconds=timings.seconds)
    return len(segments)


def process(rt: Runtime, job_id: str, index: int, worker: str) -> bool:
    """Clean one segment under a lease and record it. Returns True when this call must dispatch
    finalize.

    Safe to run twice, at once or one after the other: each run is a new attempt writing its own
    files, only the latest attempt may record the segment (once), and only one caller ever wins
    the finalize guard."""
    job = rt.store.get(job_id)
    total = int(job["total_segments"])
    if rt.store.is_done(job_id, index):  # delivered again after it was recorded
        return rt.store.finalize_due(job_id, rt.store.finished_count(job_id), total)
    with rt.leases.held(job_id, segment_step(index), worker) as lease:
        seg = Segment.from_dict(rt.store.segment_plan(job_id, index))
        engine = _engine(rt, job)
        with tempfile.TemporaryDirectory(prefix="waterz-segment-") as tmp:
            workdir = Path(tmp)
            crops, masks = _segment_input(rt, job_id, index, workdir)
            # The mark's mattes other segments estimated so far (a jumping mark): used where they match.
            kept = rt.store.kept_mattes(job_id, but=index)
            animated = animates(job.get("preset") or None)  # a known mark that changes frame to frame
            mattes = MatteBook([Matte.from_text(text) for text in kept.values()], animated=animated)
            log.info("segment %s/%d (attempt %d): %s on %d frames, %d matte(s) of the mark from other segments",
                     job_id, index, lease.attempt, type(engine).__name__, seg.length, len(mattes.mattes))  # fmt: skip
            start = time.perf_counter()
            reporter = SegmentReporter(rt, job_id, seg, lease.attempt, total)
            try:
                with stop_when(lease.stopped), report_to(reporter):  # the engine stops at its next frame or chunk
                    result = clean_segment(engine, seg, crops, masks, rt.settings.feather, mattes)
            except Stopped as stop:
                why = "the job ended" if lease.ended else "a newer attempt took over"
                log.warning("segment %s/%d (attempt %d): %s, %s, after %.2fs", job_id, index, lease.attempt, why,
                            stop, time.perf_counter() - start)  # fmt: skip
                return False
            log.info("segment %s/%d (attempt %d): %d frames in %.2fs", job_id, index, lease.attempt, seg.length,
                     time.perf_counter() - start)  # fmt: skip
            if ended(rt, job_id) or lease.lost:
                return False  # cancelled, or taken over by a newer attempt: this output is not wanted
            for matte in mattes.added:
                rt.store.keep_matte(job_id, index, matte.to_text())
            rt.store.note_unmatched(job_id, index, mattes.unmatched, sorted(kept))
            save_result(workdir, index, result)
            keys = output_keys(job_id, index, lease.attempt)
            for key, name in zip(keys, (f"segment_{index}.npy", f"segment_{index}_mask.npy")):
                rt.storage.put_file(key, workdir / name)
        accepted, finished, trigger = rt.store.segment_finished(job_id, index, total, lease.attempt, result.check())
    if not accepted:
        log.warning("job %s: segment %d attempt %d was superseded; its output is dropped", job_id, index,
                    lease.attempt)  # fmt: skip
        for key in keys:
            rt.storage.delete_prefix(key)  # an exact key: deletes that one file
        return False
    advance_segments(rt, job_id, total)
    return trigger


def finalize(rt: Runtime, job_id: str) -> str:
    """Composite every cleaned crop into the original frames, encode once, store the result,
    delete the intermediates. Returns the result's storage key."""
    job = rt.store.get(job_id)
    total = int(job.get("total_segments") or 0)
    segments = [Segment.from_dict(rt.store.segment_plan(job_id, i)) for i in range(total)]
    rt.store.advance(job_id, "PROGRESS", FINALIZE[0], "encoding")
    rt.store.finalize_started(job_id)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="waterz-finalize-") as tmp:
        workdir = Path(tmp)
        info = probe(_download_input(rt, job, workdir))
        results: dict[int, SegmentResult] = {}
        records = rt.store.segments(job_id, total)
        again = _worth_again(rt, job_id)
        for seg, record in zip(segments, records):
            if seg.index in again:
                _clean_again(rt, job_id, job, seg, again[seg.index], workdir)
            else:
                keys = output_keys(job_id, seg.index, record["result_attempt"])
                for key, name in zip(keys, (f"segment_{seg.index}.npy", f"segment_{seg.index}_mask.npy")):
                    rt.storage.get_file(key, workdir / name)
            results[seg.index] = load_result(workdir, seg.index)
        output = workdir / "result.mp4"
        written = composite_and_encode(info, segments, results, output, rt.settings, Reporter(rt, job_id, FINALIZE))
        if written != info.frames:
            raise RuntimeError(f"the encoder wrote {written} frames of {info.frames}")
        if ended(rt, job_id):
            raise Stopped("the job ended before its result was stored")
        key = result_key(job_id)
        rt.storage.put_file(key, output)
    cleanup(rt, job_id)
    rt.store.learn_rate(FINALIZE_RATE, info.frames * info.width * info.height / (time.perf_counter() - start))
    if not rt.store.succeed(job_id, key):  # cancelled in the moment between: no result for an ended job
        rt.storage.delete_prefix(key)
        raise Stopped("the job ended while its result was stored")
    return key


def ended(rt: Runtime, job_id: str) -> bool:
    return rt.store.get(job_id)["state"] in TERMINAL


def _engine(rt: Runtime, job: dict):
    """The inpainter the job asked for, else the configured one."""
    options = json.loads(job.get("options") or "{}")
    return inpainter(options.get("inpainter") or rt.settings.inpainter)


def _segment_input(rt: Runtime, job_id: str, index: int, workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Segment `index`'s context crops and masks, as `prepare` stored them."""
    path = workdir / f"segment_{index}_input.npz"
    rt.storage.get_file(input_key(job_id, index), path)
    with np.load(path) as data:
        crops, masks = data["crops"], data["masks"]
    path.unlink()
    return crops, masks


def _worth_again(rt: Runtime, job_id: str) -> dict[int, MatteBook]:
    """The segments to clean again (`propainter.matte.second_looks`, the CLI's rule too), each
    with its book. Here segments run at once, so it waits for finalize."""
    kept = {i: Matte.from_text(text) for i, text in rt.store.kept_mattes(job_id).items()}
    unmatched = {i: (int(r["seen"]), r["had"]) for i, r in rt.store.unmatched(job_id).items()}
    return second_looks(kept, unmatched)


def _clean_again(rt: Runtime, job_id: str, job: dict, seg: Segment, mattes: MatteBook, workdir: Path) -> None:
    """Clean segment `seg` once more with `mattes`, into `workdir` as its result."""
    crops, masks = _segment_input(rt, job_id, seg.index, workdir)
    start = time.perf_counter()
    result = clean_segment(_engine(rt, job), seg, crops, masks, rt.settings.feather, mattes)
    save_result(workdir, seg.index, result)
    rt.store.note_check(job_id, seg.index, result.check())
    log.info("job %s: segment %d cleaned again with %d matte(s) of later segments, %.2fs", job_id, seg.index,
             len(mattes.mattes), time.perf_counter() - start)  # fmt: skip


def cleanup(rt: Runtime, job_id: str) -> None:
    """Delete a job's intermediates (never its upload or result)."""
    removed = rt.storage.delete_prefix(f"jobs/{job_id}/")
    log.info("job %s: %d intermediate files deleted", job_id, removed)
