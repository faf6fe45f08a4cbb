"""Builds the FastAPI app from the Settings, the Celery app, the job store and the storage."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from celery import Celery
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from waterz.api import live
from waterz.api.auth import require_api_key
from waterz.api.errors import install_error_handlers
from waterz.api.fleet import FleetMonitor
from waterz.api.guard import HostAndOriginGuard, host_name
from waterz.api.limits import JSON_BODY_LIMIT, BodyLimits
from waterz.api.routes import router
from waterz.api.uploads import too_large
from waterz.core.settings import Settings
from waterz.jobs.housekeeping import private_tmp
from waterz.jobs.runtime import get_runtime

STATIC = Path(__file__).resolve().parent.parent.parent / "static"


def create_api(settings: Settings, celery: Celery) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # uploads in progress (multipart spools, copies being checked) go to a directory of this
        # process's own; what an API killed mid-upload left is deleted here (waterz.jobs.housekeeping)
        before, tempfile.tempdir = tempfile.tempdir, str(private_tmp("api"))
        app.state.fleet.start()
        yield
        app.state.fleet.stop()
        shutil.rmtree(tempfile.tempdir, ignore_errors=True)
        tempfile.tempdir = before

    app = FastAPI(title="waterz", description="Video watermark removal: upload, process, download.",
                  version="0.1.0", lifespan=lifespan)  # fmt: skip
    app.state.settings = settings
    app.state.celery = celery
    app.state.runtime = rt = get_runtime("api")
    same_redis = (settings.broker_url or settings.redis_url) == settings.redis_url
    app.state.fleet = FleetMonitor(celery, settings.task_queue, rt.store.r if same_redis else None)
    install_error_handlers(app)
    # the file and its multipart framing
    upload_limit = ((settings.max_upload_mb << 20) + (1 << 20), too_large(settings.max_upload_mb).args[0])
    app.add_middleware(BodyLimits, idle_s=settings.body_idle_s,
                       limit_for=lambda path: upload_limit if path == "/api/upload" else JSON_BODY_LIMIT)  # fmt: skip
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # other sites' pages may call the API (still with the key, when one is set)
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)  # fmt: skip
    hosts = {host_name(h) for h in settings.allowed_hosts.split(",") if h.strip()}
    app.add_middleware(HostAndOriginGuard, allowed_hosts=hosts, origins=set(origins))
    # Every /api route needs the key when API_KEY is set (see api/auth.py for what does not).
    app.include_router(router, dependencies=[Depends(require_api_key)])
    app.include_router(live.router, dependencies=[Depends(require_api_key)])
    if STATIC.is_dir():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app
