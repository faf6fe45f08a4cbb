"""The optional API key: with `API_KEY` set, every `/api` route needs it."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request

# Where a browser cannot send a header (EventSource, <img>, <video>), `?api_key=` is taken instead.
QUERY_KEY_ROUTES = ("/api/events/", "/api/preview/", "/api/source/")


def require_api_key(request: Request) -> None:
    """`Authorization: Bearer <key>`; `?api_key=<key>` only on QUERY_KEY_ROUTES (logs mask it)."""
    expected = request.app.state.settings.api_key
    # /results/<uuid4>.mp4 are unguessable links (a <video> cannot send a header); /metrics is for scrapers.
    path = request.url.path
    if not expected or not path.startswith("/api/"):
        return
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        given = header[7:].strip()
    else:
        given = request.query_params.get("api_key", "") if path.startswith(QUERY_KEY_ROUTES) else ""
    if not (given and secrets.compare_digest(given.encode(), expected.encode())):
        detail = "This service needs an API key: send it as 'Authorization: Bearer <key>'."
        raise HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})
