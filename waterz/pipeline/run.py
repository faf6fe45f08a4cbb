"""The single-process pipeline: probe -> detect -> plan -> inpaint each segment -> composite -> encode.

Three streaming passes over the input keep memory independent of the video's length: detection,
crop extraction (one segment's crops in memory at a time), and compositing while encoding.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detector import FrameMarks, create_detector
from detector.preset import animates
from detector.static import StaticDetector, StaticPart
from propainter import Inpainter, create_inpainter
from propainter.base import Cleaned, Sources
from waterz.core import heap
from waterz.core.matte import Learned, MatteBook, MatteLedger, MemoryLedger
from waterz.core.settings import Settings, get_settings
from waterz.pipeline import check
from waterz.pipeline.composite import blend, chunk_weight, feather_alpha, paste, paste_planar, segment_masks
from waterz.pipeline.options import chosen_engines
from waterz.pipeline.plan import PlanConfig, Segment, plan_segments
from waterz.video import VideoInfo, VideoWriter, frame_format, iter_frames, mux_audio, probe

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""`progress(stage, done, total)`: called as each stage advances."""


_shared_lock = threading.Lock()
_shared: dict[str, Inpainter] = {}


def new_inpainter(name: str, settings: Settings) -> Inpainter:
    """Inpainter `name`, given what it takes from `settings` (ProPainter's weights and fp16)."""
    if name in ("propainter", "auto"):
        return create_inpainter(name, weights_dir=settings.weights_dir, fp16=settings.propainter_fp16)
    return create_inpainter(name)


def shared_inpainter(name: str, settings: Settings) -> Inpainter:
    """This process's one instance of inpainter `name` (see `new_inpainter`), created on first
    use: a model is loaded once per process, never per segment."""
    with _shared_lock:
        if name not in _shared:
            _shared[name] = new_inpainter(name, settings)
        return _shared[name]


def matte_book(ledger: MatteLedger, index: int, preset: str | None) -> MatteBook:
    """Segment `index`'s book from the video's ledger, for a mark found by `preset` (None: not a
    preset's). A preset whose mark animates gets no fitted matte."""
    return ledger.book(index, animated=animates(preset))


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class SegmentResult:
    """A cleaned segment: `pixels` `(length, h, w, 3) uint8 BGR` and `masks` `(length, h, w) bool`
    for its frames start..end, in crop coordinates; `residual`: the share of the mark its own
    check found left (`waterz.pipeline.check`; None where not measured or the input showed no mark's
    edges); `learned`: what the engine learned of the mark's blend, and `sources` what it found
    in other frames (`propainter.base.Sources`), kept only where a second look can change the
    segment (neither saved with the pixels); `sources_reused`: the engine was given its sources."""

    pixels: np.ndarray
    masks: np.ndarray
    residual: float | None = None
    learned: Learned = field(default_factory=Learned)
    sources: Sources | None = None
    sources_reused: bool = False

    def check(self) -> dict:
        """The self-check's figure, for the summary and the job's segment records."""
        return {"residual": None if self.residual is None else round(self.residual, 3)}


def result_files(workdir: Path, index: int) -> tuple[Path, Path]:
    """Where segment `index`'s pixels and masks lie in `workdir` (`save_result`, `load_result`)."""
    return workdir / f"segment_{index}.npy", workdir / f"segment_{index}_mask.npy"


def save_result(workdir: Path, index: int, result: SegmentResult) -> None:
    pixels, masks = result_files(workdir, index)
    np.save(pixels, result.pixels)
    np.save(masks, result.masks)


def load_result(workdir: Path, index: int) -> SegmentResult:
    """Memory-mapped: compositing reads one frame at a time."""
    pixels, masks = result_files(workdir, index)
    return SegmentResult(np.load(pixels, mmap_mode="r"), np.load(masks, mmap_mode="r"))


@dataclass
class Timings:
    """Seconds per stage, in order."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)
        log.info("stage %s: %.2fs", name, self.seconds[name])


def plan_config(settings: Settings, online_workers: int = 1) -> PlanConfig:
    """The planner's settings. More workers ask for more segments (`MIN_SEGMENTS=auto`: one per
    worker), never for shorter ones than that: a segment's blend fit and temporal sources only see
    its own frames, and a short segment over a slow picture sees too little of it to fit the mark
    (docs/benchmarks.md, Scaling)."""
    return PlanConfig(
        min_segments=settings.min_segments_for(online_workers),
        min_chunk_frames=settings.min_chunk_frames,
        max_chunk_frames=settings.max_chunk_frames,
        overlap_frames=settings.overlap_frames,
        context_frames=settings.context_frames,
        crop_padding=settings.crop_padding,
        min_crop=settings.min_crop,
    )


def detect(info: VideoInfo, detector: str | None = None, boxes: Iterable | None = None,
           progress: Progress = _no_progress, settings: Settings | None = None,
           weights: str | None = None, report: dict | None = None,
           frames: tuple[int, int] | None = None, timestamps: list[int] | None = None) -> FrameMarks:  # fmt: skip
    """Run the named detector (default: `DETECTOR`) over the video; `boxes` select the `box` detector;
    `weights` go to detectors that take them (default: `YOLO_WEIGHTS` for `yolo` and `auto`,
    with `YOLO_CONF` and `YOLO_STRIDE`). `report`, where given, gets `preset`: the
    known mark that `auto` or a preset detector found (None where the generic detector answered).
    `frames`: only the frames `start <= f < stop`, as if they were the whole video (their marks
    come back as `marks[f - start]`), decoded from the keyframe before `start` where
    `timestamps` (`waterz.video.frame_timestamps`) are given."""
    settings = settings or get_settings()
    engine = _detector(settings, detector, boxes, weights)
    start, stop = frames or (0, info.frames)
    decoded = _decoded(engine, info, start, stop, timestamps, progress)
    marks = engine.detect(decoded, stop - start, (info.width, info.height))
    if report is not None:
        report["preset"] = getattr(engine, "matched", None)
    heap.give_back()
    return marks


def detect_part(info: VideoInfo, frames: tuple[int, int], owns: tuple[int, int], detector: str | None = None,
                 progress: Progress = _no_progress, settings: Settings | None = None, report: dict | None = None,
                 timestamps: list[int] | None = None) -> FrameMarks | StaticPart:  # fmt: skip
    """`detect` over a chunk of the video: the frames `frames` (start, stop) seen to answer for
    those of `owns`. Marks (of the seen frames, `marks[f - start]`), or, where the static
    detector answered, its part, to join with the other chunks' (`join_parts`)."""
    settings = settings or get_settings()
    engine = _detector(settings, detector)
    start, stop = frames
    decoded = _decoded(engine, info, start, stop, timestamps, progress)
    if hasattr(engine, "scan"):
        found = engine.scan(decoded, stop - start, (info.width, info.height), start, owns)
    else:
        found = engine.detect(decoded, stop - start, (info.width, info.height))
    if report is not None:
        report["preset"] = getattr(engine, "matched", None)
    heap.give_back()
    return found


def join_parts(parts: list[StaticPart], total: int, settings: Settings | None = None) -> FrameMarks:
    """The marks of the video's frames from its chunks. static parts (`detect_part`)."""
    settings = settings or get_settings()
    return StaticDetector(mask_dilation=settings.mask_dilation).join(parts, total)


def _detector(settings: Settings, detector: str | None, boxes: Iterable | None = None, weights: str | None = None):
    detector, _ = chosen_engines(settings, detector, boxes=boxes)
    kwargs = {"boxes": list(boxes)} if detector == "box" else {"mask_dilation": settings.mask_dilation}
    weights = weights or (settings.yolo_weights if detector in ("yolo", "auto") else None)
    if weights:
        kwargs["weights"] = weights
        if detector in ("yolo", "auto"):
            kwargs.update(conf=settings.yolo_conf, stride=settings.yolo_stride)
    return create_detector(detector, **kwargs)


def _decoded(engine, info: VideoInfo, start: int, stop: int, timestamps: list[int] | None, progress: Progress):
    if not engine.needs_frames:
        return None
    return _counted(iter_frames(info.path, start=start, stop=stop, timestamps=timestamps), "detect", stop - start,
                    progress)  # fmt: skip


def plan(
    frame_marks: FrameMarks, info: VideoInfo, settings: Settings | None = None, online_workers: int = 1
) -> list[Segment]:
    settings = settings or get_settings()
    boxes = [[m.box for m in marks] for marks in frame_marks]
    config = plan_config(settings, online_workers)
    return plan_segments(boxes, info.width, info.height, config)


def inpaint_segment(inpainter: Inpainter, crops: np.ndarray, masks: np.ndarray, seg: Segment, feather: int,
                    mattes: MatteBook | None = None, sources: Sources | None = None) -> Cleaned:  # fmt: skip
    """Clean one segment: `crops` `(n, h, w, 3)` and `masks` `(n, h, w)` cover its context frames.
    Returns the pixels to paste for frames start..end, `(length, h, w, 3) uint8`, equal to the
    input outside the masks and feathered at their edges, and what the engine learned. `mattes`:
    the mattes other segments kept (see `waterz.core.matte`); `sources`: what an earlier cleaning
    of the segment found in other frames."""
    first, last = seg.start_frame - seg.context_start, seg.end_frame - seg.context_start
    cleaned = inpainter.clean(crops, masks, first, last, mattes=mattes, sources=sources)
    for k in range(len(cleaned.frames)):
        cleaned.frames[k] = blend(crops[first + k], cleaned.frames[k], feather_alpha(masks[first + k], feather))
    return cleaned


def segment_inputs(info: VideoInfo, frame_marks: FrameMarks, segments: list[Segment],
                   progress: Progress = _no_progress, stage: str = "extract", timestamps: list[int] | None = None,
                   ) -> Iterator[tuple[Segment, np.ndarray, np.ndarray]]:  # fmt: skip
    """Pass 2's decoding (from the first frame any segment needs; from the keyframe before it, where
    `timestamps` are given): yield `(segment, crops, masks)` as soon as a segment's last context frame
    has been read; `crops` `(n, h, w, 3) uint8 BGR` and `masks` `(n, h, w) bool` cover its context
    frames. Only the segments still open are held in memory."""
    if not segments:
        return
    pending: dict[int, list[np.ndarray]] = {}
    first_needed, last_needed = min(s.context_start for s in segments), max(s.context_end for s in segments)
    frames = iter_frames(info.path, start=first_needed, stop=last_needed + 1, timestamps=timestamps)
    for f, frame in enumerate(_counted(frames, stage, last_needed + 1 - first_needed, progress), start=first_needed):
        for seg in segments:
            if seg.context_start <= f <= seg.context_end:
                c = seg.crop
                pending.setdefault(seg.index, []).append(frame[c.y : c.y1, c.x : c.x1].copy())
            if f == seg.context_end:
                yield seg, np.stack(pending.pop(seg.index)), segment_masks(frame_marks, seg)
        if f >= last_needed:
            break


def clean_segment(inpainter, seg: Segment, crops: np.ndarray, masks: np.ndarray, feather: int,
                  mattes: MatteBook | None = None, sources: Sources | None = None) -> SegmentResult:  # fmt: skip
    """Inpaint one segment's context crops; keep the frames start..end, with the self-check's
    measure of what is left of the mark in them. `sources`: see `inpaint_segment`."""
    window = slice(seg.start_frame - seg.context_start, seg.end_frame - seg.context_start + 1)
    cleaned = inpaint_segment(inpainter, crops, masks, seg, feather, mattes, sources)
    found, cleaned.sources = cleaned.sources, None
    reused = found is not None and found.reused
    if cleaned.learned.unmatched is None:
        found = None  # a matte was used (or none is needed): no second look can change the segment
    residual = check.mark_left(crops[window], cleaned.frames, masks[window])
    heap.give_back()
    return SegmentResult(cleaned.frames, masks[window], residual, cleaned.learned, found, reused)


def sources_file(workdir: Path, index: int) -> Path:
    """Where segment `index`'s sources lie in `workdir`, kept for a second look at it."""
    return workdir / f"sources_{index}.npz"


def keep_sources(workdir: Path, index: int, result: SegmentResult, crops: np.ndarray, masks: np.ndarray) -> Path | None:
    """Save segment `index`'s sources in `workdir` where a second look can change it (`crops` and
    `masks`: its context, as cleaned), and let go of them; the file, or None where none was kept."""
    if result.sources is None:
        return None
    path = sources_file(workdir, index)
    result.sources.save(path, crops, masks)
    result.sources = None  # on disk now: not held while other work goes on
    return path


def reused_sources(path: Path, crops: np.ndarray, masks: np.ndarray) -> Sources | None:
    """The sources a first cleaning kept at `path` for these `crops` and `masks`; None where there
    are none, they were made for others, or the file cannot be read (the second look then looks
    for them again: they only spare work)."""
    if not path.exists():
        return None
    try:
        return Sources.load(path, crops, masks)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("the kept sources in %s cannot be read (%s); looking for them again", path.name, exc)
        return None


def extract_and_inpaint(info: VideoInfo, frame_marks: FrameMarks, segments: list[Segment], inpainter: Inpainter,
                        workdir: Path, settings: Settings, progress: Progress = _no_progress,
                        animated: bool = False) -> dict[int, dict]:  # fmt: skip
    """Pass 2 in one process: inpaint each segment as soon as its crops are read, and save its
    pixels and masks (frames start..end) in `workdir`. `animated`: the mark is known to change
    from frame to frame (see `MatteBook`). Returns each segment's check (`SegmentResult.check`)."""
    checks: dict[int, dict] = {}
    ledger = MemoryLedger()  # what one segment learns of the mark's blend, the next may use
    for seg, crops, masks in segment_inputs(info, frame_marks, segments, progress, "inpaint"):
        book = ledger.book(seg.index, animated)
        result = clean_segment(inpainter, seg, crops, masks, settings.feather, book)
        save_result(workdir, seg.index, result)
        keep_sources(workdir, seg.index, result, crops, masks)
        checks[seg.index] = result.check()
        ledger.record(seg.index, result.learned, book)
    again = ledger.second_looks()
    if again:
        log.info("segments %s again, with the mattes later segments estimated", sorted(again))
        redo = [s for s in segments if s.index in again]
        for seg, crops, masks in segment_inputs(info, frame_marks, redo, progress, "inpaint again"):
            sources = reused_sources(sources_file(workdir, seg.index), crops, masks)
            result = clean_segment(inpainter, seg, crops, masks, settings.feather, again[seg.index], sources)
            save_result(workdir, seg.index, result)
            checks[seg.index] = result.check()
    return checks


def composite_and_encode(info: VideoInfo, segments: list[Segment], results: dict[int, SegmentResult], output: Path,
                         settings: Settings, progress: Progress = _no_progress) -> int:  # fmt: skip
    """Pass 3: paste the cleaned pixels into the original frames (cross-fading overlapping chunks),
    encode once, and mux the original audio. Returns the number of frames written.

    Frames are decoded as I420 planes where the size allows and only masked pixels are replaced,
    so everything outside the mask is re-encoded without a round trip through RGB, and at the
    input's bit depth (10 bits for an input of more than 8: only the cleaned pixels, made at 8,
    are widened; see `waterz.video.frame_format`).

    Each segment's result leaves `results` once its last frame is written: memory-mapped pixels
    stay resident while mapped, and a long video's segments would otherwise all add up.
    """
    video_only = output.with_name(output.stem + ".video.mp4")
    written = encode_frames(info, segments, results, video_only, settings, progress)
    mux_audio(video_only, info, output)
    video_only.unlink(missing_ok=True)
    return written


def encode_frames(info: VideoInfo, segments: list[Segment], results: dict[int, SegmentResult], path: Path,
                  settings: Settings, progress: Progress = _no_progress, frames: tuple[int, int] | None = None,
                  timestamps: list[int] | None = None) -> int:  # fmt: skip
    """`composite_and_encode` without the audio: the video-only mp4 at `path`. With `frames`, only
    the frames `start <= f < stop`, as a chunk of the whole video's encode (its time zero, and
    `ENCODE_LOOKAHEAD_FRAMES` more read ahead so it ends as it would inside one encode; see
    `VideoWriter`): `timestamps` (`waterz.video.frame_timestamps`) are then needed. `results` needs only
    the segments that clean frames of the chunk. Returns the number of frames written."""
    fmt = frame_format(info)
    planar = fmt.startswith("yuv")
    start, stop = frames or (0, info.frames)
    by_frame: dict[int, list[Segment]] = {}
    for seg in segments:
        for f in range(max(start, seg.start_frame), min(stop - 1, seg.end_frame) + 1):
            by_frame.setdefault(f, []).append(seg)
    chunk = {}
    if frames is not None:
        chunk = {"origin": timestamps[0], "until": timestamps[stop] if stop < info.frames else None}
    ahead = min(info.frames, stop + settings.encode_lookahead_frames) if frames is not None else stop
    with VideoWriter(path, info, crf=settings.crf, preset=settings.preset, **chunk) as writer:
        decoded = iter_frames(info.path, with_pts=True, fmt=fmt, start=start, stop=ahead, timestamps=timestamps)
        for f, (frame, pts) in enumerate(_counted(decoded, "encode", ahead - start, progress), start=start):
            for crop, pixels, mask in _cleaned_pixels(by_frame.get(f, ()), results, f):
                if planar:
                    paste_planar(frame, info.width, info.height, crop, pixels, mask, fmt)
                else:
                    paste(frame, crop, pixels, mask)
            writer.write(frame, pts, fmt=fmt)
            for seg in by_frame.get(f, ()):
                if min(stop - 1, seg.end_frame) == f:
                    results.pop(seg.index, None)
    return writer.frames_written


def _cleaned_pixels(segs, results: dict[int, SegmentResult], f: int):
    """For one frame, `(crop, pixels, mask)` to paste: one per crop, overlapping chunks cross-faded."""
    by_crop: dict = {}
    for seg in segs:
        by_crop.setdefault(seg.crop, []).append(seg)
    for crop, group in by_crop.items():
        acc = np.zeros((crop.h, crop.w, 3), np.float32)
        mask = np.zeros((crop.h, crop.w), bool)
        total = 0.0
        for seg in group:
            w = chunk_weight(seg, f) if len(group) > 1 else 1.0
            acc += w * results[seg.index].pixels[f - seg.start_frame]
            mask |= results[seg.index].masks[f - seg.start_frame]
            total += w
        yield crop, np.clip(acc / total + 0.5, 0, 255).astype(np.uint8), mask


def remove_watermark(input_path: str | Path, output_path: str | Path, *, detector: str | None = None,
                     inpainter: str | None = None, boxes: Iterable | None = None,
                     settings: Settings | None = None, progress: Progress = _no_progress,
                     engine: Inpainter | None = None, weights: str | None = None) -> dict:  # fmt: skip
    """The whole job in one process. Returns a JSON-able summary. `engine`: an inpainter already
    built (its name for the summary in `inpainter`)."""
    settings = settings or get_settings()
    detector_name, inpainter = chosen_engines(settings, detector, inpainter, boxes)
    engine = engine or new_inpainter(inpainter, settings)  # an unknown name or missing weights fail before any work
    output = Path(output_path)
    timings = Timings()
    with timings.stage("probe"):
        info = probe(input_path)
    found: dict = {}
    with timings.stage("detect"):
        frame_marks = detect(info, detector, boxes, progress, settings, weights, found)
    with timings.stage("plan"):
        segments = plan(frame_marks, info, settings)
    with tempfile.TemporaryDirectory(prefix="waterz-") as tmp:
        workdir = Path(tmp)
        checks: dict[int, dict] = {}
        with timings.stage("inpaint"):
            if segments:
                animated = animates(found["preset"])
                checks = extract_and_inpaint(info, frame_marks, segments, engine, workdir, settings, progress, animated)
            results = {s.index: load_result(workdir, s.index) for s in segments}
        with timings.stage("encode"):
            output.parent.mkdir(parents=True, exist_ok=True)
            written = composite_and_encode(info, segments, results, output, settings, progress)
    return {
        "input": str(input_path),
        "output": str(output),
        **info.summary(),
        "frames_written": written,
        "detector": detector_name,
        "preset": found["preset"],
        "inpainter": inpainter,
        "frames_with_mark": sum(1 for m in frame_marks if m),
        "segments": [{**s.as_dict(), **checks.get(s.index, {})} for s in segments],
        "seconds": timings.seconds,
    }


def _counted(frames: Iterable, stage: str, total: int, progress: Progress):
    for i, frame in enumerate(frames):
        yield frame
        progress(stage, i + 1, total)
