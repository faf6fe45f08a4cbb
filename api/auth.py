"""The optional API key: with `API_KEY` set, every `/api` route needs it."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request


def require_api_key(request: Request) -> None:
    """`Authorization: Bearer <key>`, or `?api_key=<key>` where a header cannot be sent (EventSource)."""
    expected = request.app.state.settings.api_key
    # /results/<uuid4>.mp4 are unguessable links (a <video> cannot send a header); /metrics is for scrapers.
    if not expected or not request.url.path.startswith("/api/"):
        return
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else request.query_params.get("api_key", "")
    if not (given and secrets.compare_digest(given.encode(), expected.encode())):
        detail = "This service needs an API key: send it as 'Authorization: Bearer <key>'."
        raise HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})
