"""The fan-out's bookkeeping in Redis: a job's chunks (to detect in, to encode), which of them
are done and by which attempt, which segments' outputs are final, the one-time claims that
start the next step, and what each task cost (where it ran, its CPU and wall seconds).

Keys (under `waterz:job:<id>`, beside `waterz.jobs.store`'s):
  ``<id>:step:<step>``     hash per step (attempts, worker, started_at, from `waterz.jobs.leases`),
                           with `result_attempt`, `finished_at` and `frames_done`
  ``<id>:<phase>:done``    set of the done chunks (`detect`, `encode`) or second looks (`again`)
  ``<id>:<phase>:chunks``  the phase's chunks, JSON
  ``<id>:final``           set of segments whose output is final (no second look can change it)
  ``<id>:claim:<name>``    set once (SET NX): the call that completes a phase starts the next once
  ``<id>:tasks``           hash: step -> JSON `{"worker", "cpu_s", "wall_s", "started_at", "finished_at"}`

Steps: `prepare`, `detect:<k>`, `plan`, `seg:<i>` (its hash is `waterz.jobs.store`'s segment record),
`again:<i>` (a segment cleaned a second time), `encode:<k>`, `finalize`.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

from waterz.jobs.leases import step_key
from waterz.jobs.store import JobStore
from waterz.pipeline.fanout import Chunk

SERIAL_STEPS = ("prepare", "plan", "finalize")  # the steps no second worker can share

class Phases:
    def __init__(self, store: JobStore) -> None:
        self.store, self.r = store, store.r

    def _key(self, job_id: str, *parts) -> str:
        return self.store._key(job_id, *parts)

    def _expiring(self, pipe, key: str) -> None:
        pipe.expire(key, self.store.retention_s)

    # --- chunks -----------------------------------------------------------------------

    def set_chunks(self, job_id: str, phase: str, chunks: list[Chunk], waits: list[list[int]] | None = None) -> None:
        """The phase's chunks, and for each the segments it waits for (encode chunks)."""
        data = [{**c.as_dict(), "waits": w} for c, w in zip(chunks, waits or [[]] * len(chunks), strict=True)]
        key = self._key(job_id, phase, "chunks")
        pipe = self.r.pipeline()
        pipe.set(key, json.dumps(data))
        self._expiring(pipe, key)
        pipe.execute()

    def chunks(self, job_id: str, phase: str) -> list[tuple[Chunk, list[int]]]:
        """The phase's chunks and what each waits for; empty before `set_chunks`."""
        raw = self.r.get(self._key(job_id, phase, "chunks"))
        return [(Chunk.from_dict(d), d.get("waits", [])) for d in json.loads(raw or "[]")]

    # --- finishing steps ----------------------------------------------------------------

    def finish(self, job_id: str, phase: str, index: int, attempt: int) -> tuple[bool, int]:
        """Record attempt `attempt` of `<phase>:<index>` as its result: (accepted, how many of the
        phase are done). Refused for an attempt a newer one superseded; a repeat changes nothing."""
        added, count = self.store.finish(step_key(job_id, f"{phase}:{index}"), self.store.done_key(job_id, phase),
                                         index, attempt)  # fmt: skip
        return added >= 0, count

    def is_done(self, job_id: str, phase: str, index: int) -> bool:
        return self.store.step_done(job_id, f"{phase}:{index}")

    def done(self, job_id: str, phase: str) -> set[int]:
        return {int(i) for i in self.r.smembers(self.store.done_key(job_id, phase))}

    def result_attempt(self, job_id: str, step: str) -> int | None:
        value = self.r.hget(step_key(job_id, step), "result_attempt")
        return int(value) if value else None

    def note(self, job_id: str, step: str, **fields) -> None:
        """Set fields of a step's record (a detection chunk's preset, frames done so far)."""
        self.r.hset(step_key(job_id, step), mapping={k: json.dumps(v) for k, v in fields.items()})

    def record(self, job_id: str, step: str) -> dict:
        """A step's record, its values as they were noted."""
        raw = self.r.hgetall(step_key(job_id, step))
        return {k: _loads(v) for k, v in raw.items()}

    def chunk_work(self, job_id: str, phase: str) -> tuple[int, int, float | None]:
        """A chunked phase's frames, the frames its steps have gone through so far, and when its
        first step started (None: none yet)."""
        frames = done = 0
        starts = []
        for chunk, _ in self.chunks(job_id, phase):
            record = self.record(job_id, f"{phase}:{chunk.index}")
            frames += chunk.length
            done += chunk.length if record.get("result_attempt") else min(chunk.length, record.get("frames_done") or 0)
            if record.get("started_at"):
                starts.append(float(record["started_at"]))
        return frames, done, min(starts, default=None)

    # --- segments' final outputs ------------------------------------------------------------

    def make_final(self, job_id: str, *indexes: int) -> None:
        if indexes:
            key = self._key(job_id, "final")
            pipe = self.r.pipeline()
            pipe.sadd(key, *indexes)
            self._expiring(pipe, key)
            pipe.execute()

    def finals(self, job_id: str) -> set[int]:
        return {int(i) for i in self.r.smembers(self._key(job_id, "final"))}

    def claim(self, job_id: str, name: str) -> bool:
        """True for exactly one caller per job and `name`."""
        return bool(self.r.set(self._key(job_id, "claim", name), "1", nx=True, ex=self.store.retention_s))

    # --- what tasks cost -------------------------------------------------------------------

    @contextmanager
    def measured(self, job_id: str, step: str, worker: str):
        """Record the step's worker, CPU seconds (of this whole process: a worker runs one task
        at a time, and the codecs' threads are the task's too) and wall seconds once it ends."""
        started, cpu, wall = time.time(), time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            record = {"worker": worker, "cpu_s": round(time.process_time() - cpu, 3),
                      "wall_s": round(time.perf_counter() - wall, 3), "started_at": started,
                      "finished_at": time.time()}  # fmt: skip
            key = self._key(job_id, "tasks")
            pipe = self.r.pipeline()
            pipe.hset(key, step, json.dumps(record))
            self._expiring(pipe, key)
            pipe.execute()

    def tasks(self, job_id: str) -> list[dict]:
        """Every task run for the job so far, in the order they started."""
        raw = self.r.hgetall(self._key(job_id, "tasks"))
        return sorted(({"step": k, **json.loads(v)} for k, v in raw.items()), key=lambda t: t["started_at"])


def serial_share(tasks: list[dict]) -> float | None:
    """The share of the job's CPU seconds spent in steps only one worker could do."""
    total = sum(t["cpu_s"] for t in tasks)
    serial = sum(t["cpu_s"] for t in tasks if t["step"] in SERIAL_STEPS)
    return round(serial / total, 4) if total > 0 else None


def _loads(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value
