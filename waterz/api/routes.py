"""The HTTP API of the contract. Routes are thin: validate, call the store / storage, answer."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from waterz.api.uploads import safe_filename, store_upload
from waterz.core.errors import FilesDeleted, InvalidRequest, JobFinished, JobNotFound, WeightsMissing
from waterz.jobs import keys
from waterz.jobs.housekeeping import delete_job_files
from waterz.jobs.readiness import refused_by_workers
from waterz.jobs.runtime import Runtime
from waterz.jobs.status import job_status
from waterz.jobs.steps import CANCELLED
from waterz.jobs.webhooks import check_target
from waterz.pipeline.engines import engines
from waterz.pipeline.options import check_options, chosen_engines, detector_names, inpainter_names

router = APIRouter()
_RESULT_NAME = re.compile(r"^([0-9a-f]{32})\.mp4$")
_FILE_FIELD = {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FILE_FIELD}}}}


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


class BoxIn(BaseModel):
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(gt=0)
    h: int = Field(gt=0)
    start_frame: int | None = Field(default=None, ge=0)
    end_frame: int | None = Field(default=None, ge=0)


class ProcessIn(BaseModel):
    task_id: str
    detector: str | None = None
    inpainter: str | None = None
    boxes: list[BoxIn] | None = None
    callback_url: str | None = None


@router.post("/api/upload", openapi_extra=_UPLOAD_BODY)
async def upload(request: Request) -> dict:
    """Store a video (multipart field `file`) and return its `task_id` and properties."""
    rt = _rt(request)
    async with request.form(max_files=1, max_fields=16) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidRequest("The request has no file: send the video as the multipart form field 'file'.")
        return await run_in_threadpool(store_upload, rt, file.file, safe_filename(file.filename))


@router.post("/api/process", status_code=202)
def process(body: ProcessIn, request: Request) -> dict:
    """Start removing the watermark from an uploaded video. Calling it again for the same id changes nothing."""
    rt = _rt(request)
    job = rt.store.get(body.task_id)
    if body.boxes and len(body.boxes) > rt.settings.max_boxes:
        raise InvalidRequest(f"The request gives {len(body.boxes)} boxes; a job takes at most "
                             f"{rt.settings.max_boxes} (MAX_BOXES).")  # fmt: skip
    options = body.model_dump(exclude_none=True, exclude={"task_id", "callback_url"})
    boxes = [b.model_dump() for b in body.boxes or []]
    info = json.loads(job["info"]) if boxes else {"frames": None, "width": 0, "height": 0}
    check_options(body.detector, body.inpainter, boxes, info["frames"], (info["width"], info["height"]))
    _refuse_unready(rt, *chosen_engines(rt.settings, body.detector, body.inpainter, body.boxes))
    if body.callback_url:
        check_target(body.callback_url, rt.settings.webhook_secret, rt.settings.webhook_allow_private)
    if rt.store.claim_processing(body.task_id, options, body.callback_url):
        request.app.state.celery.send_task("watermark.prepare_video", args=[body.task_id])
    return {"task_id": body.task_id, "state": rt.store.get(body.task_id)["state"]}


def _refuse_unready(rt: Runtime, detector: str, inpainter: str) -> None:
    """`WeightsMissing` (422) for an engine the workers cannot run, before the job is queued."""
    refused = refused_by_workers(rt.store, rt.settings)
    why = refused("detector", detector) or refused("inpainter", inpainter)
    if why:
        raise WeightsMissing(why)


@router.delete("/api/jobs/{task_id}")
def cancel(task_id: str, request: Request) -> dict:
    """Cancel a job: segments not started are dropped, a running one's output is discarded, and
    the job's files are deleted. Its status then reads FAILURE, "cancelled by request"."""
    rt = _rt(request)
    job = rt.store.get(task_id)
    if not rt.store.fail(task_id, CANCELLED):
        raise JobFinished(f"The job has already ended ({job['state']}); there is nothing to cancel.")
    delete_job_files(rt.storage, task_id)
    return {"task_id": task_id, "state": "FAILURE", "error": CANCELLED}


@router.get("/api/status/{task_id}")
def status(task_id: str, request: Request) -> dict:
    """State, progress, stage, and every segment with the worker that ran it."""
    return job_status(_rt(request), task_id)


@router.get("/results/{name}")
def result(name: str, request: Request):
    """The cleaned video, streamed."""
    rt = _rt(request)
    match = _RESULT_NAME.match(name)
    if not match:
        raise JobNotFound(f"There is no result named '{name}'.")
    job = rt.store.get(match.group(1))
    _still_stored(rt, job)
    if job["state"] != "SUCCESS":
        raise JobNotFound(f"The result '{name}' is not ready (the job is {job['state']}).")
    stem = job.get("filename", "video").rsplit(".", 1)[0]
    return _send(rt, keys.result_key(match.group(1)), "video/mp4", download=f"{stem}_clean.mp4")


@router.get("/api/options")
def options(request: Request) -> dict:
    """The engines a job may ask for, and the defaults."""
    settings = _rt(request).settings
    return {"detectors": detector_names(), "inpainters": inpainter_names(),
            "detector": settings.detector, "inpainter": settings.inpainter,
            "max_upload_mb": settings.max_upload_mb}  # fmt: skip


@router.get("/api/engines")
def engine_list(request: Request) -> dict:
    """Every detector and inpainter: what it needs, whether it can run here, its licences (what
    `waterz engines --json` prints)."""
    rt = _rt(request)
    return engines(rt.settings, refused_by_workers(rt.store, rt.settings))


@router.get("/api/preview/{task_id}")
def preview(task_id: str, request: Request):
    """The upload's first frame as a JPEG (boxes are given in its pixels)."""
    rt = _rt(request)
    _still_stored(rt, rt.store.get(task_id))
    return _send(rt, keys.preview_key(task_id), "image/jpeg")


@router.get("/api/source/{task_id}")
def source(task_id: str, request: Request):
    """The uploaded video, for the before/after view."""
    rt = _rt(request)
    job = rt.store.get(task_id)
    _still_stored(rt, job)
    return _send(rt, job["input_key"], "video/mp4")


def _still_stored(rt: Runtime, job: dict) -> None:
    if job.get("files_deleted_at"):
        hours = rt.settings.result_ttl_hours
        raise FilesDeleted(f"This job's files were deleted {hours:g} hours after the upload (RESULT_TTL_HOURS); "
                           "upload the video again.")  # fmt: skip


def _send(rt: Runtime, key: str, media_type: str, download: str | None = None):
    """Stream a stored file: directly from disk where the storage has one (range requests work)."""
    size = rt.storage.size(key)
    if size is None:
        raise JobNotFound("That file is no longer in storage.")
    local = getattr(rt.storage, "local_path", None)
    if local:
        return FileResponse(local(key), media_type=media_type, filename=download)
    headers = {"Content-Length": str(size)}
    if download:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(download, safe='')}"
    return StreamingResponse(rt.storage.iter_bytes(key), media_type=media_type, headers=headers)


@router.get("/api/health")
def health(request: Request):
    """Redis reachable, and how many workers answered the fleet monitor's last reading."""
    rt = _rt(request)
    try:
        redis_ok = bool(rt.store.r.ping())
    except Exception:
        redis_ok = False
    workers = request.app.state.fleet.view().online if redis_ok else 0
    body = {"status": "ok" if redis_ok else "degraded", "redis": redis_ok, "workers": workers, "time": time.time()}
    return JSONResponse(body, status_code=200 if redis_ok else 503)

