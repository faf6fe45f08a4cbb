"""Job state in Redis, shared by the API and every worker.

Keys (all under `waterz:job:<id>`):
  ``<id>``            hash: state, progress, stage, error, result_key, filename, input_key, options,
                      info, total_segments, total_frames, created_at, updated_at, deadline
  ``<id>:seg:<i>``    hash per segment: its plan (JSON) and worker, started_at, finished_at, attempts,
                      result_attempt (the attempt whose output counts; see `waterz.jobs.leases`)
  ``<id>:done``       set of finished segment indexes (idempotent: a redelivered task adds nothing)
  ``<id>:finalize``   set once (SET NX) by the call that completes the last encode chunk: finalize runs once
  ``<id>:process``    set once by the first `POST /api/process`: one job per id
  ``<id>:mattes``     hash: segment index -> the mark's matte it estimated (see `waterz.core.matte`)
  ``<id>:unmatched``  hash: segment index -> JSON `{"seen", "had"}` for a segment that found no
                      matte to use: how many pixels of the mark its own fit saw, and the segments
                      whose mattes it had (finalize does it again if a later one saw much more)
  ``waterz:webhooks`` sorted set: job id -> when its webhook may be sent again, for ended jobs
                      with a `callback_url` whose webhook is neither delivered nor given up (see
                      `waterz.jobs.webhooks`)

The job hash also holds `callback_url` and the webhook's record (`webhook_state`,
`webhook_attempts`, `webhook_code`, `webhook_error`, `webhook_delivered_at`), and, while a stage
runs, its count (`stage_done`, `stage_total`, `stage_started_at`) for the estimate of the time
left. A segment's hash also holds `frames_done` while it runs.

State moves PENDING -> STARTED -> PROGRESS -> SUCCESS | FAILURE; progress never goes down and a
terminal state is never overwritten (both enforced inside Redis by one Lua script). That script
is the one place a job ends: where it ends a job that has a `callback_url`, it also puts the job
in `waterz:webhooks` in the same step, and the store calls its `on_end` (which sends
`watermark.notify`), so that every way a job ends (finalize, a failing task, a cancel, the
deadline, the reaper) notifies, and a process that dies in between leaves the job to be found.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

from waterz.core.errors import JobNotFound

log = logging.getLogger(__name__)

PREFIX = "waterz:job:"
INDEX = "waterz:jobs"  # sorted set: job id -> created_at, for metrics
FILES = "waterz:files"  # sorted set: job id -> created_at, while its files exist (see waterz.jobs.housekeeping)
WEBHOOKS = "waterz:webhooks"  # sorted set: job id -> when its webhook may be sent again
SEGMENT_SECONDS = "waterz:metrics:segment_seconds"  # hash: histogram buckets, sum, count
RATES = "waterz:metrics:rates"  # hash: name -> a rate measured on this service's jobs (see waterz.jobs.progress)
BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
JOB_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as the upload makes them
STATES = ("PENDING", "STARTED", "PROGRESS", "SUCCESS", "FAILURE")
TERMINAL = ("SUCCESS", "FAILURE")

# KEYS: job hash, the webhooks zset; ARGV: state, progress, stage, now, grace, job id, then
# field/value pairs to set as well. Returns 0 (the job had ended: nothing written), 1 (written) or
# 2 (written, and it ended the job, which has a callback_url: its webhook is now pending).
_ADVANCE = """
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return 0 end
if cur == 'SUCCESS' or cur == 'FAILURE' then return 0 end
local old = tonumber(redis.call('HGET', KEYS[1], 'progress') or '0')
local new = tonumber(ARGV[2])
if new < old then new = old end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'progress', tostring(new), 'stage', ARGV[3], 'updated_at', ARGV[4])
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if (ARGV[1] == 'SUCCESS' or ARGV[1] == 'FAILURE') and redis.call('HEXISTS', KEYS[1], 'callback_url') == 1 then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[6])
  return 2
end
return 1
"""

# KEYS: segment hash; ARGV: attempt, frames done. Only the running attempt counts, and the count
# never goes down.
_SEGMENT_PROGRESS = """
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') ~= tonumber(ARGV[1]) then return 0 end
if redis.call('HEXISTS', KEYS[1], 'finished_at') == 1 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'frames_done') or '0') > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'frames_done', ARGV[2])
return 1
"""


# KEYS: a step's hash, its phase's done set; ARGV: index, attempt, now, retention, then field/value
# pairs to record with it. Only the step's latest attempt may finish it, and only once. Returns
# {added (1, 0, or -1 for a stale attempt), how many of the phase are done}.
_FINISH = """
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') ~= tonumber(ARGV[2]) then
  return {-1, redis.call('SCARD', KEYS[2])}
end
local added = redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[4])
if added == 1 then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[3], 'result_attempt', ARGV[2])
  for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return {added, redis.call('SCARD', KEYS[2])}
"""


# KEYS: the webhooks zset; ARGV: job id, now, hold until. Takes a due entry over (one caller wins).
_CLAIM_WEBHOOK = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


def job_options(job: dict) -> dict:
    """The options `/api/process` stored with a job (`claim_processing`): detector, inpainter, boxes."""
    return json.loads(job.get("options") or "{}")


class JobStore:
    """`on_end(job_id)`: called after this store ended a job that has a `callback_url` (the job
    is then in `waterz:webhooks` already; an `on_end` that fails only delays its webhook until a
    worker's sweep finds it). `webhook_grace_s`: how long after a job ended such a sweep leaves
    it to the `on_end` call."""

    def __init__(self, client: redis.Redis, retention_s: int = 7 * 24 * 3600,
                 on_end: Callable[[str], None] | None = None, webhook_grace_s: float = 60.0):  # fmt: skip
        self.r = client
        self.retention_s = retention_s
        self.on_end, self.webhook_grace_s = on_end, webhook_grace_s
        self._advance = client.register_script(_ADVANCE)
        self._finish = client.register_script(_FINISH)
        self._segment_progress = client.register_script(_SEGMENT_PROGRESS)
        self._claim_webhook = client.register_script(_CLAIM_WEBHOOK)

    @classmethod
    def from_url(cls, url: str, ride_out_s: float = 0.0, socket_timeout: float = 30.0, **kwargs) -> JobStore:
        """`ride_out_s`: how long a call keeps retrying while Redis is unreachable (a worker rides
        out a restart; the API answers 503 at once instead); `socket_timeout`: the longest one
        call may wait for Redis's answer."""
        patience = {}
        if ride_out_s:  # back-off 0.2, 0.4, 0.8, 1.6, then 2 s per try
            patience = {"retry": Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=int(ride_out_s / 2) + 4),
                        "retry_on_error": [ConnectionError, TimeoutError]}  # fmt: skip
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                      socket_timeout=socket_timeout, health_check_interval=30, **patience)  # fmt: skip
        return cls(client, **kwargs)

    def _key(self, job_id: str, *parts) -> str:
        if not JOB_ID.fullmatch(job_id):  # nothing else reaches a key name: no `<id>:seg:0` as an id
            raise JobNotFound(f"No job has the id '{job_id[:80]}': job ids are 32 hexadecimal digits.")
        return PREFIX + ":".join((job_id, *map(str, parts)))

    # --- creation and reading -------------------------------------------------

    def create(self, job_id: str, *, filename: str, input_key: str, info: dict, deadline_s: float,
               probed: dict | None = None) -> None:  # fmt: skip
        """A new job. `info`: the video's summary for the status; `probed`: everything the upload's
        probe found (`VideoInfo.to_dict`), so that no step probes the video again."""
        now = time.time()
        key = self._key(job_id)
        self.r.hset(key, mapping={
            "state": "PENDING", "progress": 0, "stage": "uploaded", "filename": filename, "input_key": input_key,
            "info": json.dumps(info), "total_frames": info["frames"], "created_at": now, "updated_at": now,
            "deadline_s": deadline_s, **({"probed": json.dumps(probed)} if probed else {}),
        })  # fmt: skip
        self.r.expire(key, self.retention_s)
        self.r.zadd(INDEX, {job_id: now})
        self.r.zadd(FILES, {job_id: now})
        self.r.zremrangebyscore(INDEX, 0, now - self.retention_s)

    def exists(self, job_id: str) -> bool:
        return bool(self.r.exists(self._key(job_id)))

    def get(self, job_id: str) -> dict:
        job = self.r.hgetall(self._key(job_id))
        if not job:
            raise JobNotFound(f"No job has the id '{job_id}'.")
        return job

    def segments(self, job_id: str, total: int) -> list[dict]:
        pipe = self.r.pipeline()
        for i in range(total):
            pipe.hgetall(self._key(job_id, "seg", i))
        return [_segment_record(raw) for raw in pipe.execute() if raw]

    def segment(self, job_id: str, index: int) -> dict:
        """Segment `index`'s record (as `segments` gives it)."""
        raw = self.r.hgetall(self._key(job_id, "seg", index))
        if not raw:
            raise JobNotFound(f"Job '{job_id}' has no segment {index}.")
        return _segment_record(raw)

    def segment_plan(self, job_id: str, index: int) -> dict:
        raw = self.r.hget(self._key(job_id, "seg", index), "plan")
        if raw is None:
            raise JobNotFound(f"Job '{job_id}' has no segment {index}.")
        return json.loads(raw)

    def claim_processing(self, job_id: str, options: dict, callback_url: str | None = None) -> bool:
        """True for the first caller only: `POST /api/process` twice makes one job."""
        if not self.r.set(self._key(job_id, "process"), "1", nx=True, ex=self.retention_s):
            return False
        fields = {"options": json.dumps(options), "queued_at": time.time()}
        if callback_url:
            fields["callback_url"] = callback_url
        self.r.hset(self._key(job_id), mapping=fields)
        return True

    def check_deadline(self, job_id: str) -> dict:
        """The job's record, after failing it if it has run past its deadline: no job waits forever."""
        job = self.get(job_id)
        queued = float(job.get("queued_at") or 0)
        if job["state"] not in TERMINAL and queued and time.time() > queued + float(job["deadline_s"]):
            minutes = float(job["deadline_s"]) / 60
            self.fail(job_id, f"The job did not finish within its deadline of {minutes:g} minutes.")
            return self.get(job_id)
        return job

    # --- state changes ------------------------------------------------------------

    def advance(self, job_id: str, state: str, progress: float, stage: str, **fields) -> bool:
        """Move a running job forward; False (and nothing written) when it already ended."""
        args = [state, round(progress, 2), stage, time.time(), self.webhook_grace_s, job_id]
        for k, v in fields.items():
            args += [k, v if isinstance(v, str) else json.dumps(v)]
        written = int(self._advance(keys=[self._key(job_id), WEBHOOKS], args=args))
        if written == 2 and self.on_end is not None:
            try:
                self.on_end(job_id)
            except Exception as exc:  # the broker away for a moment: a worker's sweep sends it later
                log.warning("job %s ended, its webhook not sent yet: %s", job_id, exc)
        return written > 0

    def succeed(self, job_id: str, result_key: str) -> bool:
        return self.advance(job_id, "SUCCESS", 100, "done", result_key=result_key, finished_at=str(time.time()))

    def fail(self, job_id: str, error: str) -> bool:
        return self.advance(job_id, "FAILURE", 0, "failed", error=error, finished_at=str(time.time()))

    def segment_progress(self, job_id: str, index: int, attempt: int, frames_done: int) -> bool:
        """Record how many of segment `index`'s frames attempt `attempt` has cleaned so far
        (ignored for an attempt that is not the latest, a finished segment, or a smaller count)."""
        return bool(self._segment_progress(keys=[self._key(job_id, "seg", index)], args=[attempt, frames_done]))

    def set_plan(self, job_id: str, segments: list[dict]) -> None:
        pipe = self.r.pipeline()
        for seg in segments:
            key = self._key(job_id, "seg", seg["index"])
            pipe.hset(key, "plan", json.dumps(seg))
            pipe.hsetnx(key, "attempts", 0)  # a prepare run again keeps the count (and the fencing)
            pipe.expire(key, self.retention_s)
        pipe.hset(self._key(job_id), "total_segments", len(segments))
        pipe.execute()

    def keep_matte(self, job_id: str, index: int, matte: str) -> None:
        """Keep the mark's matte segment `index` estimated (text, see `waterz.core.matte`) for the
        job's other segments."""
        key = self._key(job_id, "mattes")
        pipe = self.r.pipeline()
        pipe.hset(key, str(index), matte)
        pipe.expire(key, self.retention_s)
        pipe.execute()

    def kept_mattes(self, job_id: str, but: int | None = None) -> dict[int, str]:
        """The mattes the job's segments (other than `but`) have kept so far, by the index of the
        segment that kept each, in segment order."""
        kept = self.r.hgetall(self._key(job_id, "mattes"))
        return {int(k): kept[k] for k in sorted(kept, key=int) if but is None or int(k) != but}

    def note_unmatched(self, job_id: str, index: int, seen: int | None, had: list[int]) -> None:
        """Record that segment `index` found none of the mattes of the segments `had` usable and
        its own fit saw `seen` pixels of the mark; `seen` None: it found one (clears the record)."""
        key = self._key(job_id, "unmatched")
        if seen is None:
            self.r.hdel(key, str(index))
            return
        pipe = self.r.pipeline()
        pipe.hset(key, str(index), json.dumps({"seen": seen, "had": had}))
        pipe.expire(key, self.retention_s)
        pipe.execute()

    def unmatched(self, job_id: str) -> dict[int, dict]:
        """The segments recorded by `note_unmatched`, by index."""
        return {int(k): json.loads(v) for k, v in self.r.hgetall(self._key(job_id, "unmatched")).items()}

    def is_done(self, job_id: str, index: int) -> bool:
        return bool(self.r.sismember(self._key(job_id, "done"), index))

    def done_key(self, job_id: str, phase: str) -> str:
        """The set of a phase's finished steps: `<id>:done` for segments, `<id>:<phase>:done` else."""
        return self._key(job_id, "done") if phase == "seg" else self._key(job_id, phase, "done")

    def step_done(self, job_id: str, step: str) -> bool:
        """Whether an indexed step (`seg:3`, `detect:0`, ...) has recorded its result."""
        phase, _, index = step.partition(":")
        return bool(index) and bool(self.r.sismember(self.done_key(job_id, phase), index))

    def segment_finished(self, job_id: str, index: int, attempt: int, check: dict | None = None) -> tuple[bool, int]:
        """Record attempt `attempt` of a segment as its result, with its self-check (`residual`).
        Returns (accepted, how many segments are finished). Refused for an attempt that a newer
        one superseded (fencing); a repeat of the accepted one changes nothing."""
        now = time.time()
        seg_key = self._key(job_id, "seg", index)
        added, finished = self.finish(seg_key, self.done_key(job_id, "seg"), index, attempt,
                                      check=json.dumps(check or {}))  # fmt: skip
        if added == 1:  # the first time only: a repeated run changes neither the record nor the metrics
            started = self.r.hget(seg_key, "started_at")
            if started:
                pipe = self.r.pipeline()
                _observe(pipe, now - float(started))
                pipe.execute()
        return added >= 0, int(finished)

    def finish(self, step_key: str, done_key: str, index: int, attempt: int, **fields: str) -> tuple[int, int]:
        """Record attempt `attempt` of the step whose hash is `step_key` as its result, adding
        `index` to the phase's set `done_key` (see `_FINISH`): (added: 1, 0 for a repeat, -1 for
        a superseded attempt; how many of the phase are done)."""
        args = [index, attempt, time.time(), self.retention_s, *[x for kv in fields.items() for x in kv]]
        added, count = self._finish(keys=[step_key, done_key], args=args)
        return int(added), int(count)

    def note_check(self, job_id: str, index: int, check: dict) -> None:
        """Replace segment `index`'s self-check (after finalize cleaned it again)."""
        self.r.hset(self._key(job_id, "seg", index), "check", json.dumps(check))

    def finished_count(self, job_id: str) -> int:
        return int(self.r.scard(self._key(job_id, "done")))

    def finalize_started(self, job_id: str) -> int:
        """Count finalize runs (there should only ever be one per job); returns the count."""
        return int(self.r.hincrby(self._key(job_id), "finalize_runs", 1))

    def claim_finalize(self, job_id: str) -> bool:
        """True for exactly one caller per job."""
        return bool(self.r.set(self._key(job_id, "finalize"), "1", nx=True, ex=self.retention_s))

    # --- webhooks (see waterz.jobs.webhooks) ----------------------------------------------------

    def webhooks_due(self, now: float | None = None) -> list[str]:
        """Ended jobs whose webhook is pending and was left alone long enough to be sent again."""
        return self.r.zrangebyscore(WEBHOOKS, 0, now or time.time())

    def hold_webhook(self, job_id: str, until: float) -> None:
        """Leave the job's pending webhook alone until `until` (an attempt, or a retry, is on its way)."""
        self.r.zadd(WEBHOOKS, {job_id: until}, xx=True)

    def drop_webhook(self, job_id: str) -> None:
        """Forget a pending webhook that cannot be sent (its job's record expired)."""
        self.r.zrem(WEBHOOKS, job_id)

    def claim_webhook(self, job_id: str, until: float) -> bool:
        """Take a due webhook over for a send (one caller wins), holding it until `until`."""
        return bool(self._claim_webhook(keys=[WEBHOOKS], args=[job_id, time.time(), until]))

    def webhook_attempt(self, job_id: str, lock_s: float) -> int | None:
        """Start an attempt at the job's webhook: the attempt's number, or None where it was
        delivered already or another attempt is under way (a lock for `lock_s`)."""
        key = self._key(job_id)
        if self.r.hget(key, "webhook_delivered_at"):
            return None
        if not self.r.set(self._key(job_id, "webhook"), "1", nx=True, ex=max(1, int(lock_s))):
            return None
        return int(self.r.hincrby(key, "webhook_attempts", 1))

    def webhook_answered(self, job_id: str, code: int | None, error: str | None, delivered: bool, done: bool) -> None:
        """Record an attempt's outcome; `done` (delivered, or no attempts left) ends it for good."""
        state = "delivered" if delivered else "given up" if done else "retrying"
        fields = {"webhook_code": "" if code is None else code, "webhook_error": error or "", "webhook_state": state}
        if delivered:
            fields["webhook_delivered_at"] = time.time()
        pipe = self.r.pipeline()
        pipe.hset(self._key(job_id), mapping=fields)
        if done:
            pipe.zrem(WEBHOOKS, job_id)
        pipe.delete(self._key(job_id, "webhook"))
        pipe.execute()

    def files_deleted(self, job_id: str, when: float) -> None:
        """Record that the job's files were deleted (its URLs then say so)."""
        self.r.hset(self._key(job_id), "files_deleted_at", when)

    # --- metrics ----------------------------------------------------------------------

    def count_by_state(self) -> dict[str, int]:
        """Jobs created within the retention window, by state."""
        ids = self.r.zrange(INDEX, 0, -1)
        pipe = self.r.pipeline()
        for job_id in ids:
            pipe.hget(self._key(job_id), "state")
        counts = dict.fromkeys(STATES, 0)
        for state in pipe.execute():
            if state in counts:
                counts[state] += 1
        return counts

    def learn_rate(self, name: str, value: float, weight: float = 0.3) -> None:
        """Fold a newly measured rate into the service's running average of it."""
        old = self.rate(name)
        self.r.hset(RATES, name, value if old is None else (1 - weight) * old + weight * value)

    def rate(self, name: str) -> float | None:
        value = self.r.hget(RATES, name)
        return float(value) if value else None

    def segment_histogram(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.r.hgetall(SEGMENT_SECONDS).items()}


def _observe(pipe, seconds: float) -> None:
    """Add one segment's duration to the cumulative histogram."""
    for le in BUCKETS:
        if seconds <= le:
            pipe.hincrby(SEGMENT_SECONDS, str(le), 1)
    pipe.hincrby(SEGMENT_SECONDS, "+Inf", 1)
    pipe.hincrbyfloat(SEGMENT_SECONDS, "sum", seconds)
    pipe.hincrby(SEGMENT_SECONDS, "count", 1)


def _segment_record(raw: dict) -> dict:
    record = json.loads(raw["plan"])
    record["attempts"] = int(raw.get("attempts", 0))
    length = record["end_frame"] - record["start_frame"] + 1
    record["frames_done"] = length if raw.get("finished_at") else min(length, int(raw.get("frames_done") or 0))
    record["result_attempt"] = int(raw["result_attempt"]) if raw.get("result_attempt") else None
    record["worker"] = raw.get("worker")
    for k in ("started_at", "finished_at"):
        record[k] = float(raw[k]) if raw.get(k) else None
    check = json.loads(raw.get("check") or "{}")
    record["residual"] = check.get("residual")
    return record
