"""What the workers are doing, read by one background thread of the API, so that no request ever
waits on the broker: `/api/health`, `/api/workers` and `/metrics` answer from the last reading.

Celery's control commands (`ping`, `inspect`) each take a broker connection from a pool of
`broker_pool_limit` and hold it while they wait for replies; run from request threads, a dozen
concurrent health probes exhausted the pool and every later request waited on it for good.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from celery import Celery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetView:
    """One reading. `workers`: as `inspect_workers` returns them; `online`: workers that answered;
    `queue_length`: tasks waiting (None where the broker does not say); `read_at`: unix seconds of
    the reading (None before the first one ended); `error`: why the last reading failed, if it did."""

    workers: list[dict] = field(default_factory=list)
    online: int = 0
    queue_length: int | None = None
    read_at: float | None = None
    error: str | None = None


def inspect_workers(celery: Celery, timeout: float) -> list[dict]:
    """Every worker that answers `inspect stats`/`active` within `timeout` s: its name, pool,
    concurrency, tasks processed, and what it runs now (with the job id and segment of each task)."""
    with ThreadPoolExecutor(2) as pool:  # each waits the whole timeout for replies: wait once, not twice
        asked = [pool.submit(getattr(celery.control.inspect(timeout=timeout), what)) for what in ("stats", "active")]
        stats, active = (a.result() or {} for a in asked)
    workers = []
    for name in sorted(set(stats) | set(active)):
        pool = stats.get(name, {}).get("pool", {})
        workers.append({
            "name": name,
            "pool": pool.get("implementation", "").rsplit(":", 1)[0].rsplit(".", 1)[-1] or None,
            "concurrency": pool.get("max-concurrency"),
            "processed": stats.get(name, {}).get("total", {}),
            "active": [_running(task) for task in active.get(name, [])],
        })  # fmt: skip
    return workers


def _running(task: dict) -> dict:
    args = task.get("args") or []
    entry = {"task": task.get("name"), "id": task.get("id"), "started": task.get("time_start")}
    if task.get("name") == "watermark.process_segment" and len(args) == 2:
        entry.update(task_id=args[0], segment=args[1])
    elif args:
        entry.update(task_id=args[0])
    return entry


def without_ids(workers: list[dict]) -> list[dict]:
    """The same workers with no job or task id: what anyone without the API key may see."""
    hidden = {"id", "task_id", "segment"}
    return [{**w, "active": [{k: v for k, v in a.items() if k not in hidden} for a in w["active"]]} for w in workers]


def queue_length(celery: Celery, queue: str, redis_client: redis.Redis | None) -> int | None:
    """Tasks waiting in `queue`: the list's length on Redis, a passive declare on RabbitMQ."""
    broker_url = celery.conf.broker_url
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        client = redis_client or redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
        return int(client.llen(queue))
    try:
        with celery.connection_for_read() as conn:
            return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception:  # not declared yet, or the broker is away: the metric is left out
        return None


class FleetMonitor:
    """Reads the fleet every `interval_s` (each reading waits `timeout_s` for replies) in a daemon
    thread; `view()` returns the last reading at once."""

    def __init__(self, celery: Celery, queue: str, redis_client: redis.Redis | None = None,
                 interval_s: float = 1.0, timeout_s: float = 1.0):  # fmt: skip
        self.celery, self.queue, self.redis_client = celery, queue, redis_client
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self._view = FleetView()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def view(self) -> FleetView:
        return self._view

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="waterz-fleet", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def read_once(self) -> FleetView:
        """One reading, kept as the current view; a failed one keeps the last workers, says why."""
        try:
            workers = inspect_workers(self.celery, self.timeout_s)
            view = FleetView(workers, len(workers), queue_length(self.celery, self.queue, self.redis_client),
                             time.time())  # fmt: skip
        except Exception as exc:  # the broker is away: health says so, the last reading stays visible
            log.warning("reading the workers failed: %s", exc)
            old = self._view
            view = FleetView(old.workers, 0, old.queue_length, old.read_at, error=type(exc).__name__)
        self._view = view
        return view

    def _run(self) -> None:
        while not self._stop.is_set():
            self.read_once()
            self._stop.wait(self.interval_s)
