"""Which requests a browser may make here: the Host header must name this service (no DNS
rebinding of a loopback service), and a page of another site may not change anything (a
multipart upload is a CORS "simple" request, sent without asking) unless CORS_ORIGINS lists it."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(host: str) -> str:
    """`Host` header -> name without port, lower case: `[::1]:8000` -> `::1`, `A.b:80` -> `a.b`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def names_of(address: str) -> set[str]:
    """The names a request that arrived on local `address` may call this service by."""
    names = {address.lower()}
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return names | LOOPBACK_NAMES
    return names | {socket.gethostname().lower(), socket.getfqdn().lower()}


class HostAndOriginGuard:
    """ASGI middleware. `allowed_hosts`: names the Host header may give (`*`: any; empty: the
    names of the address each request arrived on). `origins`: other sites whose pages may send
    state-changing requests (`*`: any)."""

    def __init__(self, app: ASGIApp, allowed_hosts: set[str], origins: set[str]):
        self.app, self.allowed_hosts, self.origins = app, allowed_hosts, origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = {k: v.decode("latin-1") for k, v in scope["headers"] if k in (b"host", b"origin")}
        host, origin = wanted.get(b"host", ""), wanted.get(b"origin")
        refusal = self._host_refusal(host, scope.get("server")) or self._origin_refusal(scope["method"], host, origin)
        if refusal:
            await JSONResponse({"detail": refusal[1]}, status_code=refusal[0])(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _host_refusal(self, host: str, server) -> tuple[int, str] | None:
        if "*" in self.allowed_hosts:
            return None
        allowed = self.allowed_hosts or (names_of(server[0]) if server else set())
        if host_name(host) in allowed:
            return None
        return 400, f"This service does not answer to the host name '{host[:100]}'; add it to ALLOWED_HOSTS."

    def _origin_refusal(self, method: str, host: str, origin: str | None) -> tuple[int, str] | None:
        if method in SAFE_METHODS or not origin or "*" in self.origins or origin in self.origins:
            return None
        if urlsplit(origin).netloc.lower() == host.lower():  # the service's own page
            return None
        return 403, (f"Requests from pages of {origin[:100]} may not change anything here; "
                     "list that origin in CORS_ORIGINS to allow it.")  # fmt: skip
