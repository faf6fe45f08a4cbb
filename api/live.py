"""Live views: a job's events (Server-Sent Events), the workers, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import json
import time

import redis
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from api import metrics
from api.views import job_status
from jobs import TERMINAL

router = APIRouter()
HEARTBEAT_S = 15.0


@router.get("/api/events/{task_id}")
async def events(task_id: str, request: Request):
    """`event: status` with the status object whenever it changes, until the job ends.
    Clients that cannot keep the stream open poll `/api/status/{task_id}` instead."""
    rt = request.app.state.runtime
    first = await run_in_threadpool(job_status, rt, task_id)  # unknown id: 404 before streaming

    async def stream():
        yield "retry: 2000\n\n"
        status, last, beat = first, None, time.monotonic()
        while True:
            data = json.dumps(status)
            if data != last:
                yield f"event: status\ndata: {data}\n\n"
                last, beat = data, time.monotonic()
            elif time.monotonic() - beat > HEARTBEAT_S:
                yield ": still here\n\n"  # keeps proxies from closing an idle stream
                beat = time.monotonic()
            if status["state"] in TERMINAL or await request.is_disconnected():
                return
            await asyncio.sleep(0.5)
            try:
                status = await run_in_threadpool(job_status, rt, task_id)
            except redis.exceptions.RedisError:
                yield 'event: unavailable\ndata: {"detail": "The job database is not reachable right now."}\n\n'
                return

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _inspect(celery, timeout: float = 1.0) -> list[dict]:
    inspect = celery.control.inspect(timeout=timeout)
    stats = inspect.stats() or {}
    active = inspect.active() or {}
    workers = []
    for name in sorted(set(stats) | set(active)):
        pool = stats.get(name, {}).get("pool", {})
        segments = []
        for task in active.get(name, []):
            args = task.get("args") or []
            entry = {"task": task.get("name"), "id": task.get("id"), "started": task.get("time_start")}
            if task.get("name") == "watermark.process_segment" and len(args) == 2:
                entry.update(task_id=args[0], segment=args[1])
            elif args:
                entry.update(task_id=args[0])
            segments.append(entry)
        workers.append({
            "name": name,
            "pool": pool.get("implementation", "").rsplit(":", 1)[0].rsplit(".", 1)[-1] or None,
            "concurrency": pool.get("max-concurrency"),
            "processed": stats.get(name, {}).get("total", {}),
            "active": segments,
        })  # fmt: skip
    return workers


@router.get("/api/workers")
def workers(request: Request) -> dict:
    """Online workers, their pool, and what each runs now (from `celery inspect`)."""
    found = _inspect(request.app.state.celery)
    return {"workers": found, "count": len(found)}


def _queue_length(rt, celery) -> int | None:
    """Tasks waiting in the queue: the list's length on Redis, a passive declare on RabbitMQ."""
    broker_url, queue = celery.conf.broker_url, rt.settings.task_queue
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        client = rt.store.r if broker_url == rt.settings.redis_url else redis.Redis.from_url(broker_url)
        return int(client.llen(queue))
    try:
        with celery.connection_for_read() as conn:
            return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception:  # not declared yet, or the broker is away: the metric is left out
        return None


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(request: Request) -> PlainTextResponse:
    """Jobs by state, a histogram of segment seconds, the queue length, online workers."""
    rt = request.app.state.runtime
    celery = request.app.state.celery
    online = len(celery.control.ping(timeout=0.5) or [])
    text = metrics.render(rt.store, _queue_length(rt, celery), online)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
