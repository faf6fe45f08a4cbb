"""How far a job has come and how long it has left, from what its steps recorded. Pure functions
of the job's record (`waterz.jobs.store`), its steps' records and the clock.

Progress bands: detect 0-15, segments 15-85, encode 85-99, finalize 99-100. Within a band the
share is of the frames its steps have gone through, not of the steps finished: one segment may
be ten times another.

The estimate of the time left (`eta_s`) adds up, phase by phase, the frames each has left over
the rate at which the job's workers together go through them: the rate measured on this job
since the phase's first step started (once it has run `SETTLE_S`), else the rate this service
measured on its last jobs for that phase (pixels per second, so that other frame sizes
compare), and the joining step at its measured rate. Before a job has planned its segments, they
are taken to cover every frame. None (unknown) where the running phase has neither rate yet,
and for a job that failed; 0 once done. A later phase that no job on this service has measured
yet is left out (an estimate short by it, rather than none).
"""

from __future__ import annotations

from dataclasses import dataclass

DETECT, SEGMENTS, ENCODE, FINALIZE = (0, 15), (15, 85), (85, 99), (99, 100)
PHASES = ("detect", "segments", "encode")
FINALIZE_RATE = "finalize_pps"  # the service's measured rate of whole finalize steps, pixels per second
SETTLE_S = 1.0  # a rate from the first second of a phase (a handful of frames, start-up) is noise


def rate_name(phase: str) -> str:
    """The name under which the service keeps its measured rate of `phase` (pixels per second)."""
    return f"{phase}_pps"


@dataclass(frozen=True)
class PhaseWork:
    """What one phase of a job has to go through: `frames` (its steps' frames together), `done`
    so far, and when its first step started (None: not yet)."""

    name: str
    frames: int
    done: int
    started_at: float | None


def in_band(band: tuple[int, int], share: float) -> float:
    """The job's progress (0-100) for `share` (0-1) of the work of `band`."""
    lo, hi = band
    return lo + (hi - lo) * min(max(share, 0.0), 1.0)


def segments_share(segments: list[dict]) -> float:
    """The share (0-1) of the segments' frames cleaned so far (`frames_done` per record)."""
    total = sum(s["end_frame"] - s["start_frame"] + 1 for s in segments)
    return sum(s["frames_done"] for s in segments) / total if total else 0.0


def eta_s(state: str, work: list[PhaseWork], pixels: int, now: float, rates: dict[str, float | None]) -> float | None:
    """Seconds left for the job (see the module docstring): `state` its state, `work` its phases,
    `pixels` per frame, `rates` the service's measured rates by name (`rate_name`, FINALIZE_RATE)."""
    if state == "SUCCESS":
        return 0.0
    if state not in ("STARTED", "PROGRESS"):
        return None
    left, current = 0.0, True
    for w in work:
        remaining = w.frames - w.done
        if remaining <= 0:
            continue
        own = None
        if w.done > 0 and w.started_at is not None and now - w.started_at >= SETTLE_S:
            own = w.done / (now - w.started_at)
        learned = rates.get(rate_name(w.name))
        rate = own or (learned / pixels if learned and pixels else None)
        if rate is None and current:
            return None
        left += remaining / rate if rate else 0.0  # a later phase no job has measured yet: left out
        current = False
    finalize = rates.get(FINALIZE_RATE)
    frames = max((w.frames for w in work), default=0)
    return round(left + (frames * pixels / finalize if finalize else 0.0), 1)


def measured_rates(tasks: list[dict], frames: dict[str, int], pixels: int) -> dict[str, float]:
    """From a finished job's tasks (`waterz.jobs.phases.Phases.tasks`): each phase's pixels per second,
    from its first step's start to its last step's end. `frames`: the frames each phase went
    through."""
    out = {}
    for phase, prefix in (("detect", "detect:"), ("segments", "seg:"), ("encode", "encode:")):
        steps = [t for t in tasks if t["step"].startswith(prefix)]
        if steps and frames.get(phase):
            span = max(t["finished_at"] for t in steps) - min(t["started_at"] for t in steps)
            if span > 0:
                out[rate_name(phase)] = frames[phase] * pixels / span
    return out
