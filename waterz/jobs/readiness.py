"""Which engines the workers can run, as they tell it: a job naming one whose weights are missing
is refused when it is started (422), not failed once a worker picks it up.

The API may run where the weights are not (a CPU host in front of GPU workers), so each worker
reports what it would refuse (`waterz.pipeline.engines.refusals`, about its own packages, WEIGHTS_DIR and
YOLO_WEIGHTS) every few seconds, and an engine is refused when every worker heard from lately
refuses it. Until any worker has reported, the API judges by its own settings.

Keys:
  ``waterz:engines``   hash: worker name -> JSON `{"at": unix_s, "refused": {"kind:name": sentence | null}}`
"""

from __future__ import annotations

import json
import time

from waterz.core.settings import Settings
from waterz.jobs.store import JobStore
from waterz.pipeline.engines import refusal, refusals

KEY = "waterz:engines"


def publish(store: JobStore, worker: str, settings: Settings) -> None:
    """Tell the API what this worker refuses."""
    store.r.hset(KEY, worker, json.dumps({"at": time.time(), "refused": refusals(settings)}))


def refused_by_workers(store: JobStore, settings: Settings, fresh_s: float = 60.0):
    """`refused(kind, name)`: the sentence where every worker heard from in the last `fresh_s`
    seconds refuses the engine (None where one of them takes it), by these `settings` where none was."""
    now = time.time()
    reports = [json.loads(v) for v in store.r.hvals(KEY)]
    recent = [r["refused"] for r in reports if r.get("at", 0) > now - fresh_s]

    def refused(kind: str, name: str) -> str | None:
        if not recent:
            return refusal(kind, name, settings)
        answers = [r.get(f"{kind}:{name}") for r in recent]
        return None if any(a is None for a in answers) else answers[0]

    return refused


def workers_heard(store: JobStore, fresh_s: float = 60.0) -> int:
    """How many workers told what they run in the last `fresh_s` seconds (they do every few
    seconds while they run): how many to split a job's work for, without waiting on a ping."""
    now = time.time()
    return sum(1 for v in store.r.hvals(KEY) if json.loads(v).get("at", 0) > now - fresh_s)
