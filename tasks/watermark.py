"""The contract's `watermark.prepare_video`, `watermark.process_segment` and
`watermark.finalize_video`; the fan-out's `watermark.detect_chunk`, `watermark.plan_segments`,
`watermark.second_look` and `watermark.encode_chunk` (see `waterz.jobs.steps`); and `watermark.notify`
(one attempt at an ended job's webhook, see `waterz.jobs.webhooks`).

Tasks take ids only. Any error ends the job in FAILURE with a sentence and its intermediates
deleted; the Celery task itself then returns normally, so nothing is retried blindly.
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from functools import partial

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from waterz.core.errors import WaterzError
from waterz.core.stop import Stopped, stop_when
from waterz.jobs import TERMINAL, readiness, steps, webhooks
from waterz.jobs.housekeeping import Periodic, private_tmp, sweep, sweep_orphans
from waterz.jobs.leases import reap
from waterz.jobs.runtime import get_runtime

log = logging.getLogger(__name__)


@contextmanager
def failing_job(job_id: str, doing: str):
    """Turn any exception into the job's FAILURE with a sentence a person can read."""
    rt = get_runtime()
    try:
        yield rt
    except Stopped as stop:  # cancelled, past its deadline, or taken over by a newer attempt
        log.info("job %s: stopped while %s (%s)", job_id, doing, stop)
    except Exception as exc:
        if _ended_meanwhile(rt, job_id):
            # Cancelled (its files deleted) or failed elsewhere while this step ran: not this step's error.
            log.info("job %s had already ended while %s (%s: %s); step dropped", job_id, doing,
                     type(exc).__name__, exc)  # fmt: skip
            return
        _explain(rt, job_id, doing, exc)


def _ended_meanwhile(rt, job_id: str) -> bool:
    try:
        return rt.store.get(job_id)["state"] in TERMINAL
    except Exception:  # no record, or Redis away: treat it as this step's own failure
        return False


def _explain(rt, job_id: str, doing: str, exc: Exception) -> None:
    """End the job in FAILURE with a sentence for `exc`."""
    if isinstance(exc, FileNotFoundError):
        log.warning("job %s failed while %s: %s", job_id, doing, exc)
        _fail(rt, job_id, f"A file this job needs is missing from storage ({exc.filename or exc}); "
                          "it may have been deleted. Upload the video again.")  # fmt: skip
    elif isinstance(exc, WaterzError):
        log.warning("job %s failed while %s: %s", job_id, doing, exc)
        _fail(rt, job_id, str(exc))
    else:
        log.error("job %s failed while %s", job_id, doing, exc_info=exc)
        _fail(rt, job_id, f"Processing failed while {doing}: {type(exc).__name__}: {exc}")


def _fail(rt, job_id: str, error: str) -> None:
    rt.store.fail(job_id, error)
    try:
        steps.cleanup(rt, job_id)
    except Exception:
        log.exception("job %s: could not delete intermediates", job_id)


def _running(rt, job_id: str) -> bool:
    """False for a job that already ended (a redelivered task, or the deadline passed)."""
    return rt.store.check_deadline(job_id)["state"] not in TERMINAL


def _online_workers(rt) -> int:
    """How many workers to split a job's work for: those heard from lately (`waterz.jobs.readiness`)."""
    return max(1, readiness.workers_heard(rt.store, fresh_s=3 * rt.settings.reaper_interval_s + 5))


@shared_task(name="watermark.prepare_video", bind=True)
def prepare_video(self, task_id: str) -> None:
    with failing_job(task_id, "reading the video") as rt:
        if not _running(rt, task_id):
            return
        host = self.request.hostname or "unknown"
        with rt.leases.held(task_id, "prepare", host) as lease, stop_when(lease.stopped):
            steps.prepare(rt, task_id, partial(dispatch, task_id), _online_workers(rt), host)


def _step_task(name: str, doing: str, run):
    """The task that runs one indexed step of a job (`run(rt, job_id, index, worker, dispatch)`);
    `doing` says what it does, for the job's error, with `{index}` and `{part}` (index + 1)."""

    @shared_task(name=name, bind=True)
    def task(self, task_id: str, index: int) -> None:
        with failing_job(task_id, doing.format(index=index, part=index + 1)) as rt:
            if _running(rt, task_id):
                run(rt, task_id, index, self.request.hostname or "unknown", partial(dispatch, task_id))

    return task


detect_chunk = _step_task("watermark.detect_chunk", "detecting the watermark", steps.detect_chunk)
process_segment = _step_task("watermark.process_segment", "cleaning segment {index}", steps.process)
second_look = _step_task("watermark.second_look", "cleaning segment {index} again", steps.second_look)
encode_chunk = _step_task("watermark.encode_chunk", "encoding part {part} of the result", steps.encode_chunk)


@shared_task(name="watermark.plan_segments", bind=True)
def plan_segments(self, task_id: str) -> None:
    with failing_job(task_id, "planning the segments") as rt:
        if _running(rt, task_id):
            steps.plan_job(rt, task_id, partial(dispatch, task_id), _online_workers(rt),
                           self.request.hostname or "unknown")  # fmt: skip


@shared_task(name="watermark.finalize_video", bind=True)
def finalize_video(self, task_id: str) -> None:
    with failing_job(task_id, "joining the result") as rt:
        if _running(rt, task_id):
            host = self.request.hostname or "unknown"
            with rt.leases.held(task_id, "finalize", host) as lease, stop_when(lease.stopped):
                steps.finalize(rt, task_id, host)


def dispatch(job_id: str, step: str) -> None:
    """Queue the task that runs `step` (a step name of `waterz.jobs.steps`) of the job: how every step
    starts the next, and how the reaper sends a step whose worker was lost back to the queue."""
    name, _, index = step.partition(":")
    single = {"prepare": prepare_video, "plan": plan_segments, "finalize": finalize_video}
    indexed = {"detect": detect_chunk, "seg": process_segment, "again": second_look, "encode": encode_chunk}
    if name in single:
        single[name].apply_async((job_id,))
    else:
        indexed[name].apply_async((job_id, int(index)))


@shared_task(name="watermark.notify")
def notify(task_id: str) -> None:
    try:
        wait = webhooks.attempt(get_runtime(), task_id)
    except Exception:  # Redis away: the housekeeping's sweep sends it again later
        log.exception("job %s: webhook attempt failed", task_id)
        return
    if wait is not None:
        notify.apply_async((task_id,), countdown=wait)


_housekeeping: Periodic | None = None


@worker_ready.connect
def _start_housekeeping(sender=None, **kwargs) -> None:
    """Every worker also dispatches lost steps again and deletes old jobs' files (`waterz.jobs.housekeeping`);
    its temp files go to a directory of its own, emptied at start."""
    global _housekeeping
    rt = get_runtime()
    s = rt.settings
    name = getattr(sender, "hostname", None) or f"worker-{os.getpid()}"
    tempfile.tempdir = str(private_tmp(name))

    def reap_lost_steps() -> None:
        reap(rt.leases, dispatch, s.max_attempts, lambda job_id, error: _fail(rt, job_id, error))

    def tell_engines() -> None:
        readiness.publish(rt.store, name, s)

    def resend_webhooks() -> None:
        webhooks.resend_due(rt, lambda job_id: notify.apply_async((job_id,)))

    def delete_old_files() -> None:
        sweep(rt.store, rt.storage, s.result_ttl_hours * 3600)
        sweep_orphans(rt.store, rt.storage, s.result_ttl_hours * 3600)

    log.info("job state in %s, files in %s; leases of %gs, at most %d attempts per step; files kept %g hours",
             s.redis_url, s.storage_url, s.lease_s, s.max_attempts, s.result_ttl_hours)  # fmt: skip
    try:
        tell_engines()  # before the first job can be started against this worker
    except Exception as exc:
        log.warning("could not tell the API which engines run here: %s", exc)
    _housekeeping = Periodic([(s.reaper_interval_s, reap_lost_steps), (s.reaper_interval_s, resend_webhooks),
                              (s.reaper_interval_s, tell_engines), (s.cleanup_interval_s, delete_old_files)]).start()


@worker_shutdown.connect
def _stop_housekeeping(**kwargs) -> None:
    if _housekeeping is not None:
        _housekeeping.stop()
