"""Live views: a job's events (Server-Sent Events), the workers, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import json
import time

import redis
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from waterz.api import fleet, metrics
from waterz.jobs import TERMINAL
from waterz.jobs.status import job_status

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


@router.get("/api/workers")
def workers(request: Request) -> dict:
    """Online workers, their pool, and what each runs now (the fleet monitor's last reading).
    Job ids are shown only where the API key guards this route; without one, anyone could read them."""
    view = request.app.state.fleet.view()
    found = view.workers if request.app.state.settings.api_key else fleet.without_ids(view.workers)
    return {"workers": found, "count": len(found), "read_at": view.read_at}


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(request: Request) -> PlainTextResponse:
    """Jobs by state, a histogram of segment seconds, the queue length, online workers."""
    view = request.app.state.fleet.view()
    text = metrics.render(request.app.state.runtime.store, view.queue_length, view.online)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
