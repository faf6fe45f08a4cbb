"""The JSON a job is shown as: the status route, the live events and the webhook all send this."""

from __future__ import annotations

import json
import time

from waterz.jobs.phases import Phases, serial_share
from waterz.jobs.progress import FINALIZE_RATE, PHASES, PhaseWork, eta_s, rate_name
from waterz.jobs.runtime import Runtime
from waterz.jobs.store import job_options
from waterz.pipeline.options import chosen_engines


def job_status(rt: Runtime, task_id: str) -> dict:
    """The contract's status object; fails a job past its deadline first."""
    job = rt.store.check_deadline(task_id)
    total = int(job.get("total_segments") or 0)
    options = job_options(job)
    detector, inpainter = chosen_engines(rt.settings, options.get("detector"), options.get("inpainter"),
                                         options.get("boxes"))  # fmt: skip
    segments = rt.store.segments(task_id, total)
    phases = Phases(rt.store)
    tasks = phases.tasks(task_id)
    info = json.loads(job["info"])
    rates = {name: rt.store.rate(name) for name in (FINALIZE_RATE, *map(rate_name, PHASES))}
    out = {
        "task_id": task_id,
        "state": job["state"],
        "progress": round(float(job.get("progress") or 0), 1),
        "stage": job.get("stage", ""),
        "eta_s": eta_s(job["state"], _work(phases, task_id, job, segments), info["width"] * info["height"],
                       time.time(), rates),  # fmt: skip
        "filename": job.get("filename"),
        "metadata": {
            "total_segments": total,
            "total_frames": int(job["total_frames"]),
            "segments": segments,
            "video": json.loads(job["info"]),
            "detector": detector,
            "inpainter": inpainter,
            "frames_with_mark": int(job["frames_with_mark"]) if job.get("frames_with_mark") else None,
            "preset": job.get("preset") or None,
            "finalize_runs": int(job.get("finalize_runs") or 0),
            "created_at": float(job["created_at"]),
            "queued_at": _float(job.get("queued_at")),
            "finished_at": _float(job.get("finished_at")),
            "files_deleted_at": _float(job.get("files_deleted_at")),
            "webhook": _webhook(job),
            "tasks": tasks,
            "cpu_s": round(sum(t["cpu_s"] for t in tasks), 3),
            "serial_share": serial_share(tasks),
            "chunks": {phase: len(phases.chunks(task_id, phase)) for phase in ("detect", "encode")},
        },
    }
    if job["state"] == "SUCCESS":
        out["result"] = {"result_url": f"/results/{job['result_key'].rsplit('/', 1)[-1]}"}
    if job["state"] == "FAILURE":
        out["error"] = job.get("error") or "The job failed."
    return out


def _work(phases: Phases, job_id: str, job: dict, segments: list[dict]) -> list[PhaseWork]:
    """What each phase of the job has gone through so far. Before the segments are planned, they
    and the encode chunks are taken to cover every frame."""
    frames = int(job["total_frames"])
    detect = phases.chunk_work(job_id, "detect")
    encode = phases.chunk_work(job_id, "encode") if phases.chunks(job_id, "encode") else (frames, 0, None)
    starts = [s["started_at"] for s in segments if s.get("started_at")]
    cleaned = (sum(s["end_frame"] - s["start_frame"] + 1 for s in segments), sum(s["frames_done"] for s in segments),
               min(starts, default=None)) if segments or job.get("total_segments") else (frames, 0, None)  # fmt: skip
    return [PhaseWork("detect", *detect), PhaseWork("segments", *cleaned), PhaseWork("encode", *encode)]


def _webhook(job: dict) -> dict | None:
    """The webhook's record: its state (`pending` until the job ends and its first attempt is
    answered, then `retrying`, `delivered` or `given up`), attempts so far, the last HTTP code
    (null: no answer), the last error, when it was delivered. None for a job without a callback_url."""
    if not job.get("callback_url"):
        return None
    code = job.get("webhook_code")
    return {"state": job.get("webhook_state") or "pending", "attempts": int(job.get("webhook_attempts") or 0),
            "last_code": int(code) if code else None,
            "error": job.get("webhook_error") or None,
            "delivered_at": _float(job.get("webhook_delivered_at"))}  # fmt: skip


def _float(value: str | None) -> float | None:
    return float(value) if value else None
