"""How far a job has come and how long it has left, from what its steps recorded. Pure functions
of the job's record (`jobs.store`), its segment records and the clock.

Progress bands: prepare 0-35 (detect 0-25, extract 25-35), segments 35-90, finalize 90-100.
Within the segments' band the share is of the frames cleaned, not of the segments finished: one
segment may be ten times another.

The estimate of the time left (`eta_s`) is made from rates measured while the job runs:
- while segments run: the frames left to clean at the rate all the job's workers together have
  cleaned them since its first segment started, plus the finalize step at the rate this service's
  last finalize steps measured (pixels per second), or, before any, as long as this job's own
  extraction pass took to decode its frames (finalize decodes them again and encodes: an
  underestimate);
- while the result is encoded: that stage's frames left at its own rate so far (in its first
  second, at the service's measured finalize rate);
- None (unknown) before the first frames are cleaned, and for a job that failed; 0 once done.
"""

from __future__ import annotations

import json

DETECT, EXTRACT, SEGMENTS, FINALIZE = (0, 25), (25, 35), (35, 90), (90, 100)
ENCODING_STAGES = ("encode", "encoding")
FINALIZE_RATE = "finalize_pps"  # the service's measured rate of whole finalize steps, pixels per second


def in_band(band: tuple[int, int], share: float) -> float:
    """The job's progress (0-100) for `share` (0-1) of the work of `band`."""
    lo, hi = band
    return lo + (hi - lo) * min(max(share, 0.0), 1.0)


def segments_share(segments: list[dict]) -> float:
    """The share (0-1) of the segments' frames cleaned so far (`frames_done` per record)."""
    total = sum(s["end_frame"] - s["start_frame"] + 1 for s in segments)
    return sum(s["frames_done"] for s in segments) / total if total else 0.0


def eta_s(job: dict, segments: list[dict], now: float, finalize_pps: float | None = None) -> float | None:
    """Seconds left for the job (see the module docstring); `job` is its raw record, `segments`
    its segment records, `finalize_pps` the service's measured finalize rate in pixels per second."""
    state = job.get("state")
    if state == "SUCCESS":
        return 0.0
    if state not in ("STARTED", "PROGRESS"):
        return None
    if job.get("stage") in ENCODING_STAGES:
        return _stage_left(job, now, finalize_pps)
    cleaned = sum(s["frames_done"] for s in segments)
    starts = [s["started_at"] for s in segments if s.get("started_at")]
    if not cleaned or not starts or now <= min(starts):
        return None
    rate = cleaned / (now - min(starts))
    left = sum(s["end_frame"] - s["start_frame"] + 1 - s["frames_done"] for s in segments)
    return round(left / rate + (_finalize_s(job, finalize_pps) or 0.0), 1)


def _stage_left(job: dict, now: float, finalize_pps: float | None, settle_s: float = 1.0) -> float | None:
    """The running stage's seconds left at its own rate; in its first `settle_s` (a rate from a
    handful of frames is noise, the encoder's start-up among them), the finalize step's share
    left at the service's measured rate, where known."""
    done, total = int(job.get("stage_done") or 0), int(job.get("stage_total") or 0)
    started = float(job.get("stage_started_at") or 0)
    if not total or not started:
        return None
    if done > 0 and now - started >= settle_s:
        return round((total - done) * (now - started) / done, 1)
    expected = _finalize_s(job, finalize_pps) if finalize_pps else None
    return None if expected is None else round(expected * (total - done) / total, 1)


def _finalize_s(job: dict, finalize_pps: float | None) -> float | None:
    """The finalize step's expected seconds for this job, where a rate is known."""
    frames = int(job.get("total_frames") or 0)
    if finalize_pps:
        info = json.loads(job.get("info") or "{}")
        return frames * info.get("width", 0) * info.get("height", 0) / finalize_pps
    return json.loads(job.get("prepare_seconds") or "{}").get("extract")  # the same frames, decoded once
