"""The steps of a distributed job, free of Celery: the tasks in `tasks/` call these.

    prepare  ->  detect:0..k  ->  plan  ->  seg:0..n  ( -> again:i )  ->  encode:0..m  ->  finalize

`prepare` takes the video as the upload probed it and splits it into detection chunks; each `detect:<k>` runs the
detector over its chunk (and a few frames around it); the last one to finish starts `plan`,
which merges their marks, plans the segments and the encode chunks, and starts every segment
and every encode chunk no segment touches. Each `seg:<i>` decodes and cleans its own frames; an
encode chunk starts once every segment it needs is final. A segment whose own fit saw little of
the mark may still be cleaned again (`again:<i>`) with a matte a later one kept: it is final only
once every segment is done and the second looks are decided. Each `encode:<k>` composites and
encodes its own frames as a chunk of the whole encode; the last one starts `finalize`, which
joins the chunks by stream copy and puts the audio back. Only `prepare`, `plan` and `finalize`
run alone, and none of them decodes or encodes a frame.

Every step but `finalize` takes a `dispatch(step)` that queues a step by name. Each runs under
a lease (`waterz.jobs.leases`), writes files under a name of its own attempt (`waterz.jobs.keys`), and only
the latest attempt may record its result (`waterz.jobs.phases`): a redelivered or late task changes
nothing. What each step cost is recorded (`Phases.measured`).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from waterz.core.matte import MatteBook
from waterz.core.stop import Stopped, checkpoint, report_to, stop_when
from waterz.jobs import keys
from waterz.jobs.leases import segment_step
from waterz.jobs.mattes import RedisLedger
from waterz.jobs.phases import Phases
from waterz.jobs.progress import (
    DETECT,
    ENCODE,
    FINALIZE,
    FINALIZE_RATE,
    SEGMENTS,
    in_band,
    measured_rates,
    segments_share,
)
from waterz.jobs.runtime import Runtime
from waterz.jobs.store import TERMINAL, job_options
from waterz.pipeline.fanout import (
    chunk_count,
    join_found,
    load_found,
    load_marks,
    save_found,
    save_marks,
    split,
    waits_for,
)
from waterz.pipeline.options import chosen_engines
from waterz.pipeline.plan import Segment
from waterz.pipeline.run import (
    SegmentResult,
    clean_segment,
    detect,
    detect_part,
    encode_frames,
    join_parts,
    keep_sources,
    load_result,
    matte_book,
    plan,
    result_files,
    reused_sources,
    save_result,
    segment_inputs,
    shared_inpainter,
    sources_file,
)
from waterz.video import VideoInfo, frame_timestamps, mux_audio, probe
from waterz.video.writer import join_chunks

log = logging.getLogger(__name__)

CANCELLED = "cancelled by request"

# A detection chunk starts on a multiple of this: the static detector's windows start every 8
# frames and its slow ones every 32, where they would in a pass over the whole video.
DETECT_ALIGN = 32

Dispatch = Callable[[str], None]
"""`dispatch(step)`: queue the step named `step` (`detect:3`, `plan`, `seg:0`, ...) for this job."""


class Reporter:
    """Turns a running step's `done/total` frames into its record's `frames_done` and the job's
    progress (the share of the phase's frames done by all its steps), at most once per
    `every_s`. Each call is also a checkpoint: under `stop_when`, a stage that reports stops at
    its next frame."""

    def __init__(self, rt: Runtime, job_id: str, step: str, every_s: float = 1.0):
        self.rt, self.job_id, self.step, self.every_s = rt, job_id, step, every_s
        self._last = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        checkpoint(done, total)
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        phases = Phases(self.rt.store)
        phases.note(self.job_id, self.step, frames_done=done)
        phase = self.step.split(":")[0]
        band, label = (DETECT, "detecting") if phase == "detect" else (ENCODE, "encoding")
        frames, done_all, _ = phases.chunk_work(self.job_id, phase)
        self.rt.store.advance(self.job_id, "PROGRESS", in_band(band, done_all / max(frames, 1)), label)


class SegmentReporter:
    """Listens to a running segment's checkpoints (`waterz.core.stop.report_to`): records its frames
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


# --- what every step reads --------------------------------------------------------------------


def _fetch(rt: Runtime, key: str, workdir: Path) -> Path:
    """A stored file, read where it lies where the storage is a local folder, else downloaded."""
    local = getattr(rt.storage, "local_path", None)
    if local is not None:
        path = local(key)
        if path.is_file():
            return path
    path = workdir / Path(key).name
    rt.storage.get_file(key, path)
    return path


def _video(rt: Runtime, job_id: str, job: dict, workdir: Path, fetch: bool = True) -> tuple[VideoInfo, list[int]]:
    """The job's video, as the upload probed it, and every frame's timestamp. `fetch`: also make
    the video itself readable here (else its `path` is its storage key)."""
    path = _fetch(rt, job["input_key"], workdir) if fetch else job["input_key"]
    data = json.loads(_fetch(rt, keys.video_key(job_id), workdir).read_text())
    return VideoInfo.from_dict(data["info"], path), data["timestamps"]


def ended(rt: Runtime, job_id: str) -> bool:
    return rt.store.get(job_id)["state"] in TERMINAL


# --- prepare ---------------------------------------------------------------------------------


def prepare(rt: Runtime, job_id: str, dispatch: Dispatch, online_workers: int, worker: str = "unknown") -> None:
    """Take the video's facts as the upload probed them, and its timestamps (both go to storage for
    every step), then split it into detection chunks, one or more per worker, and dispatch them;
    with boxes given, the marks are known at once and `plan` is dispatched instead."""
    phases = Phases(rt.store)
    if phases.record(job_id, "prepare").get("completed"):
        return  # delivered again after it was done: what it dispatched is on its way
    with phases.measured(job_id, "prepare", worker):
        _prepare(rt, job_id, dispatch, online_workers)


def _prepare(rt: Runtime, job_id: str, dispatch: Dispatch, online_workers: int) -> None:
    job = rt.store.get(job_id)
    options = job_options(job)
    phases = Phases(rt.store)
    rt.store.advance(job_id, "STARTED", 0, "probing")
    with tempfile.TemporaryDirectory(prefix="waterz-prepare-") as tmp:
        workdir = Path(tmp)
        path = _fetch(rt, job["input_key"], workdir)
        # what the upload probed (a job stored before it kept that is probed here)
        info = VideoInfo.from_dict(json.loads(job["probed"]), path) if job.get("probed") else probe(path)
        video = workdir / "video.json"
        video.write_text(json.dumps({"info": info.to_dict(), "timestamps": frame_timestamps(path)}))
        rt.storage.put_file(keys.video_key(job_id), video)
        # `prepare` is noted completed only once what it starts is on its way: a worker lost before
        # that leaves its lease to run out, and the reaper runs it again, which starts the same
        # steps again (each of them does its work once, however often it is delivered).
        if options.get("boxes"):
            marks = workdir / "marks.npz"
            save_marks(marks, detect(info, boxes=options["boxes"], settings=rt.settings))
            rt.storage.put_file(keys.marks_key(job_id), marks)
            dispatch("plan")
            phases.note(job_id, "prepare", completed=True)
            return
    chunks = [chunk for chunk, _ in phases.chunks(job_id, "detect")]  # those a lost run set, if any
    if not chunks:
        count = chunk_count(info.frames, max(1, online_workers), rt.settings.max_chunk_frames)
        chunks = split(info.frames, count, rt.settings.detect_chunk_frames)
        phases.set_chunks(job_id, "detect", chunks)
    rt.store.advance(job_id, "PROGRESS", DETECT[0], "detecting")
    for chunk in chunks:
        dispatch(f"detect:{chunk.index}")
    phases.note(job_id, "prepare", completed=True)


# --- detect ----------------------------------------------------------------------------------


def detect_chunk(rt: Runtime, job_id: str, index: int, worker: str, dispatch: Dispatch) -> None:
    """Run the job's detector over detection chunk `index` and the frames around it it needs;
    the call that finishes the last chunk dispatches `plan`."""
    phases = Phases(rt.store)
    step = f"detect:{index}"
    if not phases.is_done(job_id, "detect", index):
        job = rt.store.get(job_id)
        options = job_options(job)
        chunks = phases.chunks(job_id, "detect")
        chunk = chunks[index][0]
        with rt.leases.held(job_id, step, worker) as lease, stop_when(lease.stopped):
            with phases.measured(job_id, step, worker), tempfile.TemporaryDirectory(prefix="waterz-detect-") as tmp:
                workdir = Path(tmp)
                info, stamps = _video(rt, job_id, job, workdir)
                lo, hi = chunk.seen(info.frames, rt.settings.detect_overlap_frames, DETECT_ALIGN)
                report: dict = {}
                found = detect_part(info, (lo, hi), (chunk.start, chunk.stop), options.get("detector"),
                                     progress=Reporter(rt, job_id, step), settings=rt.settings, report=report,
                                     timestamps=stamps)  # fmt: skip
                if ended(rt, job_id) or lease.lost:
                    return
                out = workdir / "marks.npz"
                save_found(out, found, first=lo)
                rt.storage.put_file(keys.detect_key(job_id, index, lease.attempt), out)
                marked = sum(1 for m in found if m) if isinstance(found, list) else None
                phases.note(job_id, step, preset=report["preset"], frames_with_mark=marked)
            accepted, count = phases.finish(job_id, "detect", index, lease.attempt)
        if not accepted:
            return
    if len(phases.done(job_id, "detect")) >= len(phases.chunks(job_id, "detect")) and phases.claim(job_id, "plan"):
        dispatch("plan")


# --- plan ------------------------------------------------------------------------------------


def plan_job(rt: Runtime, job_id: str, dispatch: Dispatch, online_workers: int, worker: str) -> None:
    """Merge the chunks' marks, plan the segments and the encode chunks, and dispatch every
    segment and every encode chunk that waits for none."""
    job = rt.store.get(job_id)
    phases = Phases(rt.store)
    if phases.record(job_id, "plan").get("completed"):
        return  # delivered again after it was done: what it dispatched is on its way
    with rt.leases.held(job_id, "plan", worker) as lease, stop_when(lease.stopped):
        with phases.measured(job_id, "plan", worker), tempfile.TemporaryDirectory(prefix="waterz-plan-") as tmp:
            workdir = Path(tmp)
            info, _ = _video(rt, job_id, job, workdir, fetch=False)
            marks, preset = _merged_marks(rt, job_id, info.frames, workdir)
            segments = plan(marks, info, rt.settings, max(1, online_workers))
            rt.store.set_plan(job_id, [s.as_dict() for s in segments])
            count = chunk_count(info.frames, max(1, online_workers), rt.settings.max_chunk_frames)
            chunks = split(info.frames, count, rt.settings.min_chunk_frames)
            phases.set_chunks(job_id, "encode", chunks, [waits_for(c, segments) for c in chunks])
            rt.store.advance(job_id, "PROGRESS", SEGMENTS[0], "inpainting",
                             frames_with_mark=sum(1 for m in marks if m), preset=preset or "")  # fmt: skip
    if ended(rt, job_id):
        return
    phases.note(job_id, "plan", completed=True)
    for seg in segments:
        if not rt.store.is_done(job_id, seg.index):
            dispatch(segment_step(seg.index))
    _dispatch_ready(rt, job_id, dispatch)


def _merged_marks(rt: Runtime, job_id: str, total: int, workdir: Path):
    """The whole video's marks (also stored for the segments to read) and the known mark found,
    from the detection chunks (or from the boxes `prepare` turned into marks)."""
    phases = Phases(rt.store)
    chunks = phases.chunks(job_id, "detect")
    if not chunks:  # boxes given: prepare stored the marks
        return load_marks(_fetch(rt, keys.marks_key(job_id), workdir))[1], None
    parts, presets = [], Counter()
    for chunk, _ in chunks:
        step = f"detect:{chunk.index}"
        key = keys.detect_key(job_id, chunk.index, phases.result_attempt(job_id, step))
        lo, found = load_found(_fetch(rt, key, workdir))
        parts.append((chunk, lo, found))
        record = phases.record(job_id, step)
        if record.get("preset"):
            presets[record["preset"]] += record.get("frames_with_mark") or 0
    marks = join_found(parts, total, lambda statics: join_parts(statics, total, rt.settings))
    out = workdir / "merged.npz"
    save_marks(out, marks)
    rt.storage.put_file(keys.marks_key(job_id), out)
    return marks, (presets.most_common(1)[0][0] if presets else None)


# --- segments --------------------------------------------------------------------------------


def process(rt: Runtime, job_id: str, index: int, worker: str, dispatch: Dispatch) -> None:
    """Clean one segment under a lease and record it; then dispatch what it let start.

    Safe to run twice, at once or one after the other: each run is a new attempt writing its own
    files, only the latest attempt may record the segment (once), and what follows is dispatched
    once whoever completes it."""
    job = rt.store.get(job_id)
    total = int(job["total_segments"])
    if not rt.store.is_done(job_id, index) and _clean(rt, job_id, job, index, worker, total) is None:
        return
    _after_segment(rt, job_id, index, total, dispatch)


def _clean(rt: Runtime, job_id: str, job: dict, index: int, worker: str, total: int) -> int | None:
    """Clean segment `index` (attempt of its lease); its accepted attempt, or None."""
    phases = Phases(rt.store)
    step = segment_step(index)
    with rt.leases.held(job_id, step, worker) as lease:
        seg = Segment.from_dict(rt.store.segment_plan(job_id, index))
        engine = _engine(rt, job)
        with phases.measured(job_id, step, worker), tempfile.TemporaryDirectory(prefix="waterz-segment-") as tmp:
            workdir = Path(tmp)
            crops, masks = _segment_input(rt, job_id, job, seg, workdir)
            # The mark's mattes other segments estimated so far (a jumping mark): used where they match.
            ledger = RedisLedger(rt.store, job_id)
            mattes = matte_book(ledger, index, job.get("preset") or None)
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
                return None
            log.info("segment %s/%d (attempt %d): %d frames in %.2fs", job_id, index, lease.attempt, seg.length,
                     time.perf_counter() - start)  # fmt: skip
            if ended(rt, job_id) or lease.lost:
                return None  # cancelled, or taken over by a newer attempt: this output is not wanted
            ledger.record(index, result.learned, mattes)
            _store_result(rt, workdir, result, keys.output_keys(job_id, index, lease.attempt))
            kept = keep_sources(workdir, index, result, crops, masks)
            if kept is not None:  # a second look may come, on any worker: it need not look again
                rt.storage.put_file(keys.sources_key(job_id, index, lease.attempt), kept)
        accepted, _ = rt.store.segment_finished(job_id, index, lease.attempt, result.check())
    if not accepted:
        log.warning("job %s: segment %d attempt %d was superseded; its output is dropped", job_id, index,
                    lease.attempt)  # fmt: skip
        for key in (*keys.output_keys(job_id, index, lease.attempt), keys.sources_key(job_id, index, lease.attempt)):
            rt.storage.delete_prefix(key)  # an exact key: deletes that one file (where there is one)
        return None
    if result.learned.unmatched is None:
        phases.make_final(job_id, index)  # it found a matte (or needs none): no second look can change it
    advance_segments(rt, job_id, total)
    return lease.attempt


def _after_segment(rt: Runtime, job_id: str, index: int, total: int, dispatch: Dispatch) -> None:
    """Once every segment is done, decide the second looks (once); then dispatch the encode chunks
    whose segments are all final."""
    phases = Phases(rt.store)
    if rt.store.finished_count(job_id) >= total and phases.claim(job_id, "second looks"):
        ledger = RedisLedger(rt.store, job_id)
        again = ledger.second_looks()
        unmatched = set(ledger.unmatched())
        phases.make_final(job_id, *(unmatched - set(again)))
        for i in sorted(again):
            dispatch(f"again:{i}")
    _dispatch_ready(rt, job_id, dispatch)


def _dispatch_ready(rt: Runtime, job_id: str, dispatch: Dispatch) -> None:
    """Dispatch, once each, the encode chunks all of whose segments are final."""
    phases = Phases(rt.store)
    final = phases.finals(job_id)
    for chunk, waits in phases.chunks(job_id, "encode"):
        if set(waits) <= final and phases.claim(job_id, f"encode:{chunk.index}"):
            dispatch(f"encode:{chunk.index}")


def second_look(rt: Runtime, job_id: str, index: int, worker: str, dispatch: Dispatch) -> None:
    """Clean segment `index` again with the mattes later segments kept (the ledger's
    `second_looks`, the CLI's rule too); its output then replaces the first, and the encode
    chunks that waited for it may start."""
    phases = Phases(rt.store)
    step = f"again:{index}"
    if not phases.is_done(job_id, "again", index):
        job = rt.store.get(job_id)
        with rt.leases.held(job_id, step, worker) as lease, stop_when(lease.stopped):
            with phases.measured(job_id, step, worker), tempfile.TemporaryDirectory(prefix="waterz-again-") as tmp:
                workdir = Path(tmp)
                seg = Segment.from_dict(rt.store.segment_plan(job_id, index))
                mattes = RedisLedger(rt.store, job_id).second_looks().get(index, MatteBook())
                crops, masks = _segment_input(rt, job_id, job, seg, workdir)
                sources = _first_sources(rt, job_id, index, workdir, crops, masks)
                start = time.perf_counter()
                result = clean_segment(_engine(rt, job), seg, crops, masks, rt.settings.feather, mattes, sources)
                if ended(rt, job_id) or lease.lost:
                    return
                _store_result(rt, workdir, result, keys.output_keys(job_id, index, lease.attempt, again=True))
                rt.store.note_check(job_id, index, result.check())
                log.info("job %s: segment %d cleaned again with %d matte(s) of later segments%s, %.2fs", job_id,
                         index, len(mattes.mattes), " (its first sources reused)" if result.sources_reused else "",
                         time.perf_counter() - start)  # fmt: skip
            accepted, _ = phases.finish(job_id, "again", index, lease.attempt)
        if not accepted:
            return
        phases.make_final(job_id, index)
    _dispatch_ready(rt, job_id, dispatch)


def _first_sources(rt: Runtime, job_id: str, index: int, workdir: Path, crops, masks):
    """What segment `index`'s accepted first cleaning found in other frames, where it kept them;
    else None (the second look then looks for them itself)."""
    attempt = rt.store.segment(job_id, index).get("result_attempt")
    if attempt is None:
        return None
    path = sources_file(workdir, index)
    try:
        rt.storage.get_file(keys.sources_key(job_id, index, int(attempt)), path)
    except FileNotFoundError:
        return None
    return reused_sources(path, crops, masks)


def _segment_input(rt: Runtime, job_id: str, job: dict, seg: Segment, workdir: Path):
    """Segment `seg`'s context crops and masks, decoded from its own frames of the video."""
    info, stamps = _video(rt, job_id, job, workdir)
    _, marks = load_marks(_fetch(rt, keys.marks_key(job_id), workdir))
    _, crops, masks = next(segment_inputs(info, marks, [seg], timestamps=stamps))
    return crops, masks


def _store_result(rt: Runtime, workdir: Path, result: SegmentResult, names: tuple[str, str]) -> None:
    save_result(workdir, 0, result)
    for key, local in zip(names, result_files(workdir, 0), strict=True):
        rt.storage.put_file(key, local)


def _engine(rt: Runtime, job: dict):
    """The inpainter the job asked for, else the configured one."""
    _, name = chosen_engines(rt.settings, inpainter=job_options(job).get("inpainter"))
    return shared_inpainter(name, rt.settings)


# --- encode ----------------------------------------------------------------------------------


def encode_chunk(rt: Runtime, job_id: str, index: int, worker: str, dispatch: Dispatch) -> None:
    """Composite and encode encode chunk `index` (as a chunk of the whole encode, see
    `waterz.pipeline.run.encode_frames`); the call that finishes the last chunk dispatches `finalize`."""
    phases = Phases(rt.store)
    step = f"encode:{index}"
    if not phases.is_done(job_id, "encode", index):
        job = rt.store.get(job_id)
        chunks = phases.chunks(job_id, "encode")
        chunk, waits = chunks[index]
        with rt.leases.held(job_id, step, worker) as lease, stop_when(lease.stopped):
            with phases.measured(job_id, step, worker), tempfile.TemporaryDirectory(prefix="waterz-encode-") as tmp:
                workdir = Path(tmp)
                info, stamps = _video(rt, job_id, job, workdir)
                segments = [Segment.from_dict(rt.store.segment_plan(job_id, i)) for i in waits]
                results = {s.index: _final_result(rt, job_id, s.index, workdir) for s in segments}
                out = workdir / "chunk.mp4"
                written = encode_frames(info, segments, results, out, rt.settings, Reporter(rt, job_id, step),
                                        frames=(chunk.start, chunk.stop), timestamps=stamps)  # fmt: skip
                if written != chunk.length:
                    raise RuntimeError(f"the encoder wrote {written} frames of chunk {index}'s {chunk.length}")
                if ended(rt, job_id) or lease.lost:
                    return
                rt.storage.put_file(keys.chunk_key(job_id, index, lease.attempt), out)
            accepted, count = phases.finish(job_id, "encode", index, lease.attempt)
        if not accepted:
            return
    if len(phases.done(job_id, "encode")) >= len(phases.chunks(job_id, "encode")) and rt.store.claim_finalize(job_id):
        dispatch("finalize")


def _final_result(rt: Runtime, job_id: str, index: int, workdir: Path) -> SegmentResult:
    """Segment `index`'s final output: its second look's where it had one, else its own."""
    phases = Phases(rt.store)
    again = phases.result_attempt(job_id, f"again:{index}")
    if again is not None:
        names = keys.output_keys(job_id, index, again, again=True)
    else:
        names = keys.output_keys(job_id, index, rt.store.segment(job_id, index)["result_attempt"])
    folder = workdir / f"segment_{index}"
    folder.mkdir()
    for key, local in zip(names, result_files(folder, 0), strict=True):
        rt.storage.get_file(key, local)
    return load_result(folder, 0)


# --- finalize --------------------------------------------------------------------------------


def finalize(rt: Runtime, job_id: str, worker: str = "unknown") -> str:
    """Join the encoded chunks by stream copy, put the original audio (subtitles, metadata,
    chapters) back, store the result and delete the intermediates. Returns the result's key."""
    job = rt.store.get(job_id)
    phases = Phases(rt.store)
    rt.store.advance(job_id, "PROGRESS", FINALIZE[0], "joining")
    rt.store.finalize_started(job_id)
    start = time.perf_counter()
    with phases.measured(job_id, "finalize", worker), tempfile.TemporaryDirectory(prefix="waterz-finalize-") as tmp:
        workdir = Path(tmp)
        info, _ = _video(rt, job_id, job, workdir)
        parts = []
        for chunk, _ in phases.chunks(job_id, "encode"):
            attempt = phases.result_attempt(job_id, f"encode:{chunk.index}")
            parts.append(_fetch(rt, keys.chunk_key(job_id, chunk.index, attempt), workdir))
        video_only, output = workdir / "video.mp4", workdir / "result.mp4"
        written = join_chunks(parts, video_only)
        if written != info.frames:
            raise RuntimeError(f"the chunks hold {written} frames of {info.frames}")
        mux_audio(video_only, info, output)
        if ended(rt, job_id):
            raise Stopped("the job ended before its result was stored")
        key = keys.result_key(job_id)
        rt.storage.put_file(key, output)
    cleanup(rt, job_id)
    pixels = info.width * info.height
    rt.store.learn_rate(FINALIZE_RATE, info.frames * pixels / (time.perf_counter() - start))
    cleaned = sum(s["end_frame"] - s["start_frame"] + 1 for s in rt.store.segments(job_id, int(job["total_segments"])))
    frames = {"detect": phases.chunk_work(job_id, "detect")[0], "segments": cleaned, "encode": info.frames}
    for name, value in measured_rates(phases.tasks(job_id), frames, pixels).items():
        rt.store.learn_rate(name, value)
    if not rt.store.succeed(job_id, key):  # cancelled in the moment between: no result for an ended job
        rt.storage.delete_prefix(key)
        raise Stopped("the job ended while its result was stored")
    return key


def cleanup(rt: Runtime, job_id: str) -> None:
    """Delete a job's intermediates (never its upload or result)."""
    removed = rt.storage.delete_prefix(keys.intermediates(job_id))
    log.info("job %s: %d intermediate files deleted", job_id, removed)
