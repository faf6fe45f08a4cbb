"""The FastAPI application: upload, process, status, results, health."""

from waterz.api.app import create_api

__all__ = ["create_api"]
