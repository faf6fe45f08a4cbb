"""What every worker does besides its tasks: dispatch lost steps again (see `waterz.jobs.leases`) and
delete the files of old jobs.

Retention: a job's upload, intermediates and result are deleted `RESULT_TTL_HOURS` after the
upload (a job still running is left alone until it ends or passes its deadline). Its record stays
in Redis for `RETENTION_S`, so its status still answers, and its result URL says it was deleted.

Keys:
  ``waterz:files``   sorted set: job id -> upload time, for jobs whose files still exist
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from waterz.jobs import keys
from waterz.jobs.store import FILES, TERMINAL, JobStore
from waterz.storage import Storage

log = logging.getLogger(__name__)


def delete_job_files(storage: Storage, job_id: str) -> int:
    """Delete everything stored for a job: its upload, its intermediates, its result. Returns how
    many files went."""
    return sum(storage.delete_prefix(p) for p in keys.job_files(job_id))


def sweep(store: JobStore, storage: Storage, ttl_s: float, now: float | None = None) -> list[str]:
    """Delete the files of every job uploaded more than `ttl_s` ago. Returns their ids. Safe to
    run in every worker at once: one caller takes each job."""
    now = now or time.time()
    swept = []
    for job_id in store.r.zrangebyscore(FILES, 0, now - ttl_s):
        job = store.check_deadline(job_id) if store.exists(job_id) else None
        if job and job["state"] not in TERMINAL and job.get("queued_at"):
            continue  # still running within its deadline: its files are in use
        if not store.r.zrem(FILES, job_id):
            continue  # another worker took it
        removed = delete_job_files(storage, job_id)
        if job:
            store.files_deleted(job_id, now)
        log.info("job %s: %d files deleted after %.1f hours", job_id, removed, ttl_s / 3600)
        swept.append(job_id)
    return swept


def sweep_orphans(store: JobStore, storage: Storage, ttl_s: float, now: float | None = None) -> list[str]:
    """Delete the files, found by listing the storage, of every job that has no record in Redis
    and whose newest file is older than `ttl_s` (an upload whose record was never written, a job
    whose record expired or was lost with a Redis without AOF). Returns their ids."""
    now = now or time.time()
    newest: dict[str, float] = {}
    for top in keys.TOPS:
        for key, modified in storage.list(top):
            if match := keys.OWNER.match(key):
                owner = match[1] or match[2]
                newest[owner] = max(modified, newest.get(owner, 0.0))
    swept = []
    for job_id, modified in sorted(newest.items()):
        if modified < now - ttl_s and not store.exists(job_id):
            removed = delete_job_files(storage, job_id)
            log.info("job %s: no record; %d files left behind deleted", job_id, removed)
            swept.append(job_id)
    return swept


def private_tmp(name: str, base: Path | None = None) -> Path:
    """A temp directory of this process's own, `waterz-tmp-<name>-<pid>` under `base` (the system
    temp directory by default), held by a lock on its `.lock` file for as long as the process
    lives. What dead processes left (their lock is free: killed, out of memory) is deleted first;
    a living process's directory is never touched."""
    base = Path(base or tempfile.gettempdir())
    for left in base.glob("waterz-tmp-*"):
        _delete_if_dead(left)
    # locked before it gets the name others sweep, so no one can see it unlocked
    staging = Path(tempfile.mkdtemp(prefix=".waterz-claim-", dir=base))
    fd = os.open(staging / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held.append(fd)
    path = base / f"waterz-tmp-{re.sub(r'[^A-Za-z0-9@._-]', '_', name)}-{os.getpid()}"
    staging.rename(path)
    return path


_held: list[int] = []  # the locks of this process's temp directories, released when it dies


def _delete_if_dead(path: Path) -> None:
    try:
        fd = os.open(path / ".lock", os.O_RDWR)
    except OSError:
        return  # no lock file: not a directory of ours
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # its owner is alive
    finally:
        os.close(fd)
    shutil.rmtree(path, ignore_errors=True)
    log.info("temp files of a process that died deleted: %s", path)


class Periodic:
    """Calls each `(interval_s, fn)` every `interval_s` seconds in one daemon thread. A call that
    raises (Redis away for a moment) is logged and tried again at its next turn."""

    def __init__(self, jobs: list[tuple[float, Callable[[], object]]]):
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waterz-housekeeping", daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        due = [time.monotonic() + interval for interval, _ in self.jobs]
        while not self._stop.is_set():
            now = time.monotonic()
            for k, (interval, fn) in enumerate(self.jobs):
                if now >= due[k]:
                    due[k] = now + interval
                    try:
                        fn()
                    except Exception as exc:
                        log.warning("housekeeping (%s): %s", getattr(fn, "__name__", fn), exc)
            self._stop.wait(max(0.05, min(due) - time.monotonic()))
