"""What every process of the service shares: settings, the job store and the storage (the
engines, one per process, are `waterz.pipeline.run.shared_inpainter`'s)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from waterz.core.errors import ConfigError
from waterz.core.settings import Settings, get_settings
from waterz.jobs.leases import Leases
from waterz.jobs.store import JobStore
from waterz.storage import Storage, open_storage

_when_ended: list[Callable[[str], None]] = []


@dataclass
class Runtime:
    settings: Settings
    store: JobStore
    storage: Storage
    leases: Leases


def require_redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL is not set: point it at the Redis that holds the job state, e.g. "
            "REDIS_URL=redis://127.0.0.1:6379/0 (./run.sh starts a private one for you)."
        )
    return settings.redis_url


def when_a_job_ends(send: Callable[[str], None]) -> None:
    """What this process's job store does after it ended a job that has a callback_url:
    `send(job_id)` queues its webhook (the Celery app sets it; see `waterz.jobs.webhooks`)."""
    _when_ended[:] = [send]


def _job_ended(job_id: str) -> None:
    for send in _when_ended:
        send(job_id)


@lru_cache
def get_runtime(role: str = "worker") -> Runtime:
    """The process's runtime. A worker's Redis calls ride out a Redis restart of up to
    `REDIS_RIDE_OUT_S`; the API's fail at once (it answers 503 meanwhile) and wait at most 5 s
    for an answer, so that a stalled Redis cannot hold a request thread."""
    settings = get_settings()
    worker = role == "worker"
    store = JobStore.from_url(require_redis_url(settings), ride_out_s=settings.redis_ride_out_s if worker else 0.0,
                              socket_timeout=30.0 if worker else 5.0, retention_s=settings.retention_s,
                              on_end=_job_ended)  # fmt: skip
    leases = Leases(store, settings.lease_s, requeue_grace_s=settings.visibility_timeout_s)
    return Runtime(settings, store, open_storage(settings.storage_url), leases)
