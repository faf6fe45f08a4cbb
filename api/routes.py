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

from api.uploads import safe_filename, store_upload, too_large
from detector import DETECTORS
from detector.box import BoxDetector
from jobs.runtime import Runtime
from propainter import INPAINTERS
from waterz.errors import InvalidRequest, JobNotFound

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


@router.post("/api/upload", openapi_extra=_UPLOAD_BODY)
async def upload(request: Request) -> dict:
    """Store a video (multipart field `file`) and return its `task_id` and properties."""
    rt = _rt(request)
    limit_mb = rt.settings.max_upload_mb
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > (limit_mb << 20) + (1 << 20):
        raise too_large(limit_mb)
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
    options = body.model_dump(exclude_none=True, exclude={"task_id"})
    if body.detector:
        DETECTORS.get(body.detector)
    if body.inpainter:
        INPAINTERS.get(body.inpainter)
    if body.boxes:
        info = json.loads(job["info"])
        BoxDetector([b.model_dump() for b in body.boxes]).detect(None, info["frames"], (info["width"], info["height"]))
    if rt.store.claim_processing(body.task_id, options):
        request.app.state.celery.send_task("watermark.prepare_video", args=[body.task_id])
    return {"task_id": body.task_id, "state": rt.store.get(body.task_id)["state"]}


@router.get("/api/status/{task_id}")
def status(task_id: str, request: Request) -> dict:
    """State, progress, stage, and every segment with the worker that ran it."""
    rt = _rt(request)
    rt.store.check_deadline(task_id)
    job = rt.store.get(task_id)
    total = int(job.get("total_segments") or 0)
    info = json.loads(job["info"])
    options = json.loads(job.get("options") or "{}")
    out = {
        "task_id": task_id,
        "state": job["state"],
        "progress": int(float(job.get("progress") or 0)),
        "stage": job.get("stage", ""),
        "filename": job.get("filename"),
        "metadata": {
            "total_segments": total,
            "total_frames": int(job["total_frames"]),
            "segments": rt.store.segments(task_id, total),
            "video": info,
            "detector": "box" if options.get("boxes") else options.get("detector") or rt.settings.detector,
            "inpainter": options.get("inpainter") or rt.settings.inpainter,
            "frames_with_mark": int(job["frames_with_mark"]) if job.get("frames_with_mark") else None,
            "finalize_runs": int(job.get("finalize_runs") or 0),
            "created_at": float(job["created_at"]),
            "finished_at": float(job["finished_at"]) if job.get("finished_at") else None,
        },
    }
    if job["state"] == "SUCCESS":
        out["result"] = {"result_url": f"/results/{job['result_key'].rsplit('/', 1)[-1]}"}
    if job["state"] == "FAILURE":
        out["error"] = job.get("error") or "The job failed."
    return out


@router.get("/results/{name}")
def result(name: str, request: Request):
    """The cleaned video, streamed."""
    rt = _rt(request)
    match = _RESULT_NAME.match(name)
    if not match:
        raise JobNotFound(f"There is no result named '{name}'.")
    job = rt.store.get(match.group(1))
    key = f"results/{name}"
    size = rt.storage.size(key) if job["state"] == "SUCCESS" else None
    if size is None:
        raise JobNotFound(f"The result '{name}' is not ready (the job is {job['state']}).")
    stem = job.get("filename", "video").rsplit(".", 1)[0]
    download = f"{stem}_clean.mp4"
    local = getattr(rt.storage, "local_path", None)
    if local:
        return FileResponse(local(key), media_type="video/mp4", filename=download)
    disposition = f"attachment; filename*=UTF-8''{quote(download, safe='')}"
    headers = {"Content-Length": str(size), "Content-Disposition": disposition}
    return StreamingResponse(rt.storage.iter_bytes(key), media_type="video/mp4", headers=headers)


@router.get("/api/health")
def health(request: Request):
    """Redis reachable, and how many workers answer a ping."""
    rt = _rt(request)
    try:
        redis_ok = bool(rt.store.r.ping())
    except Exception:
        redis_ok = False
    workers = len(request.app.state.celery.control.ping(timeout=0.5) or []) if redis_ok else 0
    body = {"status": "ok" if redis_ok else "degraded", "redis": redis_ok, "workers": workers, "time": time.time()}
    return JSONResponse(body, status_code=200 if redis_ok else 503)

