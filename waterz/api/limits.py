"""Request bodies are counted while they arrive: one that grows past its route's limit is cut off
with 413 (at once, when its Content-Length says it will), one that stalls with 408."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

JSON_BODY_LIMIT = (1 << 20, "The request body is larger than 1 MB, the most this route takes.")


class BodyTooLarge(HTTPException):
    def __init__(self, sentence: str):
        super().__init__(413, sentence)


class BodyStalled(HTTPException):
    def __init__(self, idle_s: float):
        super().__init__(408, f"The request body stopped arriving for {idle_s:g} s; send it again.")


class BodyLimits:
    """ASGI middleware. `limit_for(path)` is the most bytes a body may have on that path and the
    sentence that refuses more; each part of a body must arrive within `idle_s` of the one
    before. Both raise HTTPExceptions from the app's own `receive`, so the app's error handlers
    answer them (and FastAPI's body parsing passes them through instead of calling them a parse
    error)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], tuple[int, str]], idle_s: float):
        self.app, self.limit_for, self.idle_s = app, limit_for, idle_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, sentence = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:  # refused before a byte of it is read
            await self.app(scope, _refusing(BodyTooLarge(sentence)), send)
            return
        seen, done = 0, False

        async def counted() -> Message:
            nonlocal seen, done
            if done:  # the body is in; later calls wait for a disconnect, for as long as a stream lasts
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.idle_s)
            except asyncio.TimeoutError:
                raise BodyStalled(self.idle_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    log.warning("%s %s: body cut off after %d bytes read (limit %d)", scope["method"],
                                scope["path"], seen, limit)  # fmt: skip
                    raise BodyTooLarge(sentence)
                done = not message.get("more_body", False)
            return message

        await self.app(scope, counted, send)


def _refusing(error: HTTPException) -> Receive:
    async def receive() -> Message:
        raise error

    return receive
