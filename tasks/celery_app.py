"""The Celery application, built from the one Settings object."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_init

from waterz.core.settings import Settings
from waterz.jobs.runtime import require_redis_url, when_a_job_ends


def create_celery(settings: Settings) -> Celery:
    redis_url = require_redis_url(settings)
    app = Celery("waterz", broker=settings.broker_url or redis_url, backend=redis_url, include=["tasks"])
    redis_options = {"visibility_timeout": settings.visibility_timeout_s}
    app.conf.update(
        # Tasks carry ids only; JSON keeps pickle (code execution from the broker) out.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # One segment at a time per worker: queued segments stay free for idle workers.
        worker_prefetch_multiplier=1,
        # Acknowledge after the work, so a task whose worker dies is delivered again, not lost.
        task_acks_late=True,
        # `inspect active` and results show STARTED while a segment runs.
        task_track_started=True,
        task_ignore_result=False,
        # Bounded connections per process to a shared Redis.
        broker_pool_limit=10,
        # Redis redelivers an unacknowledged task after this; it must outlast the longest task, or a
        # long segment runs twice at once (Settings checks it exceeds TASK_TIME_LIMIT_S). Leases
        # (waterz/jobs/leases.py) find a lost step in seconds anyway. RabbitMQ requeues at once instead.
        broker_transport_options=redis_options,
        result_backend_transport_options=redis_options,
        # Enforced by prefork pools; under the threads pool the job deadline (JOB_DEADLINE_S) is the bound.
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=max(30, settings.task_time_limit_s - 60),
        # Workers started before Redis keep trying instead of exiting.
        broker_connection_retry_on_startup=True,
        # A task sent while the broker restarts (prepare dispatching segments, the reaper) waits for
        # it as long as a worker's own Redis calls do, instead of failing the job.
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": int(settings.redis_ride_out_s / 2) + 4, "interval_start": 0,
                                   "interval_step": 0.5, "interval_max": 2.0},  # fmt: skip
        # Job state lives in our own keys; Celery's per-task results need not pile up.
        result_expires=settings.result_expires_s,
        task_default_queue=settings.task_queue,
    )
    app.conf.waterz_cpu_threads = settings.cpu_threads
    # the job store of this process (API or worker) queues a job's webhook the moment it ends it
    when_a_job_ends(lambda job_id: app.send_task("watermark.notify", args=[job_id]))
    return app


@worker_init.connect
def _limit_cpu_threads(sender=None, **kwargs) -> None:
    """A worker stands for one device: with CPU_THREADS set, OpenCV uses that many cores."""
    threads = getattr(sender.app.conf, "waterz_cpu_threads", None) if sender is not None else None
    if threads:
        import cv2

        cv2.setNumThreads(threads)
