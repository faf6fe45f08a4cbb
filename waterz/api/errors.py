"""Every error maps to one HTTP status and a `{"detail": "<sentence>"}` body, here and nowhere else."""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from waterz.core.errors import (
    ConfigError,
    FilesDeleted,
    InvalidBox,
    InvalidRequest,
    InvalidVideo,
    JobFinished,
    JobNotFound,
    UnknownEngine,
    UploadTooLarge,
    WaterzError,
    WeightsMissing,
)

log = logging.getLogger(__name__)

STATUS = {
    InvalidVideo: 415,
    UploadTooLarge: 413,
    JobNotFound: 404,
    JobFinished: 409,
    FilesDeleted: 410,
    UnknownEngine: 422,
    InvalidBox: 422,
    InvalidRequest: 422,
    WeightsMissing: 422,
    ConfigError: 500,
}


def _status_for(exc: WaterzError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _field(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "the request body"


def validation_sentence(errors: list[dict]) -> str:
    """Pydantic's error list as one sentence, e.g. "Field 'task_id' is required."."""
    sentences = []
    for err in errors[:3]:
        field = _field(err.get("loc", ()))
        if err.get("type") == "missing":
            sentences.append(f"Field '{field}' is required.")
        else:
            sentences.append(f"Field '{field}': {err.get('msg', 'is invalid')}.")
    return " ".join(sentences) or "The request is invalid."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WaterzError)
    async def _waterz(request: Request, exc: WaterzError):
        return JSONResponse({"detail": str(exc)}, status_code=_status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": validation_sentence(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is nothing at {request.url.path}."
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def _redis_down(request: Request, exc: Exception):
        log.warning("Redis unreachable: %s", exc)
        return JSONResponse({"detail": "The job database (Redis) is not reachable right now; try again shortly."},
                            status_code=503)  # fmt: skip
