"""Builds the FastAPI app from the Settings, the Celery app, the job store and the storage."""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from api import live
from api.auth import require_api_key
from api.errors import install_error_handlers
from api.routes import router
from jobs.runtime import get_runtime
from waterz.settings import Settings

STATIC = Path(__file__).resolve().parent.parent / "static"


def create_api(settings: Settings, celery: Celery) -> FastAPI:
    app = FastAPI(title="waterz", description="Video watermark removal: upload, process, download.",
                  version="0.1.0")  # fmt: skip
    app.state.settings = settings
    app.state.celery = celery
    app.state.runtime = get_runtime("api")
    install_error_handlers(app)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # other sites' pages may call the API (still with the key, when one is set)
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)  # fmt: skip
    # Every /api route needs the key when API_KEY is set (see api/auth.py for what does not).
    app.include_router(router, dependencies=[Depends(require_api_key)])
    app.include_router(live.router, dependencies=[Depends(require_api_key)])
    if STATIC.is_dir():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app
