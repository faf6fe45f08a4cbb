"""Leases on running steps, so that work lost with a worker is found in seconds, not hours.

With `acks_late`, a task whose worker died is redelivered by the Redis broker only after its
visibility timeout, which must outlast the longest segment. Instead, a worker that starts a step
(prepare, a segment, finalize) takes a lease on it in Redis and renews it every few seconds while
it works. A reaper in every worker looks for leases that ran out and dispatches the step again,
counting attempts up to a maximum. Each start gets a new attempt number, and only the latest
attempt may record its result (see `JobStore.segment_finished`): a worker that was presumed dead
and finishes late neither counts twice nor overwrites the newer attempt's output.

Keys:
  ``waterz:running``             sorted set: ``<job id>|<step>`` -> the time its lease runs out
  ``waterz:job:<id>:seg:<i>``    a segment's hash (attempts, worker, started_at), see `waterz.jobs.store`
  ``waterz:job:<id>:step:<s>``   the same for `prepare` and `finalize`
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from waterz.core.errors import JobNotFound
from waterz.jobs.store import PREFIX, TERMINAL, JobStore

log = logging.getLogger(__name__)

RUNNING = "waterz:running"

# KEYS: step hash, running zset; ARGV: member, worker, now, lease expiry, retention
_START = """
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'worker', ARGV[2], 'started_at', ARGV[3])
redis.call('HDEL', KEYS[1], 'finished_at', 'frames_done')
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return attempt
"""

# KEYS: step hash, running zset, job hash; ARGV: member, attempt, lease expiry. Returns 1 (renewed),
# 0 (a newer attempt or the reaper took the step over) or -1 (the job ended: cancelled, failed).
_RENEW = """
local state = redis.call('HGET', KEYS[3], 'state')
if state == 'SUCCESS' or state == 'FAILURE' then return -1 end
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') ~= tonumber(ARGV[2]) then return 0 end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# KEYS: step hash, running zset; ARGV: member, now, new expiry. Returns the attempts so far, or
# -1 when the lease has not run out (renewed meanwhile, or another reaper took it).
_CLAIM = """
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
"""

# KEYS: step hash, running zset; ARGV: member, attempt. Drops the lease if it is still this attempt's.
_RELEASE = """
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') ~= tonumber(ARGV[2]) then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
"""


def step_key(job_id: str, step: str) -> str:
    """The hash that records a step's attempts: `seg:<i>` for a segment, else `step:<name>`."""
    return PREFIX + job_id + (f":{step}" if step.startswith("seg:") else f":step:{step}")


def segment_step(index: int) -> str:
    return f"seg:{index}"


@dataclass
class Lease:
    job_id: str
    step: str
    attempt: int
    lost: bool = False  # set once a renewal finds a newer attempt (or the reaper) took the step over
    ended: bool = False  # set once a renewal finds the job ended (cancelled, failed elsewhere)

    def stopped(self) -> bool:
        """Whether the work under this lease is no longer wanted."""
        return self.lost or self.ended


class Leases:
    def __init__(self, store: JobStore, lease_s: float = 15.0, requeue_grace_s: float = 3 * 3600):
        self.store, self.r = store, store.r
        self.lease_s, self.requeue_grace_s = lease_s, requeue_grace_s
        self._start = self.r.register_script(_START)
        self._renew = self.r.register_script(_RENEW)
        self._claim = self.r.register_script(_CLAIM)
        self._release = self.r.register_script(_RELEASE)

    def _keys(self, job_id: str, step: str) -> list[str]:
        return [step_key(job_id, step), RUNNING]

    def start(self, job_id: str, step: str, worker: str) -> Lease:
        """Record a new attempt at the step by `worker` and take the lease for it."""
        now = time.time()
        args = [f"{job_id}|{step}", worker, now, now + self.lease_s, self.store.retention_s]
        return Lease(job_id, step, int(self._start(keys=self._keys(job_id, step), args=args)))

    def renew(self, lease: Lease) -> bool:
        args = [f"{lease.job_id}|{lease.step}", lease.attempt, time.time() + self.lease_s]
        keys = [*self._keys(lease.job_id, lease.step), PREFIX + lease.job_id]
        answer = int(self._renew(keys=keys, args=args))
        lease.lost = lease.lost or answer == 0
        lease.ended = lease.ended or answer < 0
        return answer == 1

    def release(self, lease: Lease) -> None:
        self._release(keys=self._keys(lease.job_id, lease.step), args=[f"{lease.job_id}|{lease.step}", lease.attempt])

    def forget(self, job_id: str, step: str) -> None:
        self.r.zrem(RUNNING, f"{job_id}|{step}")

    @contextmanager
    def held(self, job_id: str, step: str, worker: str):
        """A lease kept alive by a background thread while the body runs, released after it
        (also when it raises: the error is the job's answer, nothing to redo)."""
        lease = self.start(job_id, step, worker)
        stop = threading.Event()

        def renew_until_stopped() -> None:
            while not stop.wait(self.lease_s / 3):
                try:
                    if not self.renew(lease):
                        why = "the job ended" if lease.ended else "a newer attempt took over"
                        log.warning("job %s: %s attempt %d stops: %s", job_id, step, lease.attempt, why)
                        return
                except Exception as exc:  # Redis away for a moment: try again at the next beat
                    log.warning("job %s: could not renew the lease on %s: %s", job_id, step, exc)

        beat = threading.Thread(target=renew_until_stopped, name=f"lease-{job_id}-{step}", daemon=True)
        beat.start()
        try:
            yield lease
        finally:
            stop.set()
            beat.join()
            try:
                self.release(lease)
            except Exception:
                log.exception("job %s: could not release the lease on %s", job_id, step)

    def expired(self, now: float | None = None) -> list[tuple[str, str]]:
        members = self.r.zrangebyscore(RUNNING, 0, now or time.time())
        return [tuple(m.split("|", 1)) for m in members]

    def claim(self, job_id: str, step: str) -> int | None:
        """Take over an expired lease (one caller wins); returns how many attempts were made."""
        now = time.time()
        args = [f"{job_id}|{step}", now, now + self.requeue_grace_s]
        attempts = int(self._claim(keys=self._keys(job_id, step), args=args))
        return None if attempts < 0 else attempts


def reap(leases: Leases, dispatch: Callable[[str, str], None], max_attempts: int,
         fail: Callable[[str, str], None]) -> list[tuple[str, str]]:  # fmt: skip
    """Dispatch again every step whose lease ran out, or fail its job after `max_attempts`.
    Returns the steps dispatched again. Safe to run in every worker at once."""
    store, redone = leases.store, []
    for job_id, step in leases.expired():
        attempts = leases.claim(job_id, step)
        if attempts is None:
            continue
        try:
            job = store.get(job_id)
        except JobNotFound:
            leases.forget(job_id, step)
            continue
        if job["state"] in TERMINAL or store.step_done(job_id, step):
            leases.forget(job_id, step)
            continue
        what = _what(step)
        if attempts >= max_attempts:
            leases.forget(job_id, step)
            log.error("job %s: %s lost %d times, giving up", job_id, what, attempts)
            fail(job_id, f"The worker running {what} stopped answering {attempts} times "
                         f"(MAX_ATTEMPTS is {max_attempts}); the job was given up.")  # fmt: skip
            continue
        log.warning("job %s: the lease on %s ran out (attempt %d); dispatching it again", job_id, what, attempts)
        dispatch(job_id, step)
        redone.append((job_id, step))
    return redone


def _what(step: str) -> str:
    """A step's name in a sentence."""
    phase, _, index = step.partition(":")
    named = {"seg": "segment {}", "detect": "detection chunk {}", "again": "the second look at segment {}",
             "encode": "encode chunk {}"}  # fmt: skip
    return named[phase].format(index) if index and phase in named else f"the {step} step"
