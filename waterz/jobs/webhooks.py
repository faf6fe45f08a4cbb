"""Webhooks: when a job with a `callback_url` ends, its status JSON is POSTed there, signed.

Who sends: the job store's one terminal transition puts the job in `waterz:webhooks` and calls
its `on_end`, which queues `watermark.notify` (see `waterz.jobs.store`). Each `watermark.notify` makes one
attempt (`attempt`); a failed one is queued again after a back-off doubling from
`WEBHOOK_BACKOFF_S`, up to `WEBHOOK_ATTEMPTS` attempts. Attempts, the last HTTP code and error,
and when it was delivered are kept in the job's record (its status shows them as
`metadata.webhook`). A delivered webhook is never sent again; a lock keeps two attempts from
running at once; every worker's housekeeping sends again what no attempt took up in time
(`resend_due`), so a process that died after ending a job delays its webhook, nothing more.

The body is the status JSON, exactly the bytes that are signed:
`X-Waterz-Signature: sha256=<hex HMAC-SHA256 of the body keyed by WEBHOOK_SECRET>`.

Only http(s) targets whose host resolves to public addresses are called, unless
`WEBHOOK_ALLOW_PRIVATE=1`: loopback, private, link-local (cloud metadata services, such as
169.254.169.254, live there), shared, multicast and reserved addresses are refused when the job
is started (`check_target`, a 422) and again at each attempt, and the connection goes to the
address that was checked (a name that resolves elsewhere by then changes nothing). Redirects are
not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from waterz.core.errors import InvalidRequest, JobNotFound
from waterz.jobs.runtime import Runtime
from waterz.jobs.status import job_status

log = logging.getLogger(__name__)

MAX_URL = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def sign(body: bytes, secret: str) -> str:
    """The `X-Waterz-Signature` header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_target(url: str, secret: str | None, allow_private: bool) -> None:
    """Refuse (`InvalidRequest`, a sentence) a `callback_url` this service will not call."""
    if not secret:
        raise InvalidRequest("This service cannot sign webhooks (WEBHOOK_SECRET is not set), so it takes no "
                             "callback_url; ask its operator to set WEBHOOK_SECRET.")  # fmt: skip
    host, port = _parts(url)
    _addresses(host, port, allow_private)


def _parts(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL, or `InvalidRequest`."""
    shown = url if len(url) <= 80 else url[:77] + "..."
    if len(url) > MAX_URL or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidRequest(f"callback_url '{shown}' is not a usable URL (at most {MAX_URL} characters, "
                             "no spaces or control characters).")  # fmt: skip
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest(f"callback_url must be an http:// or https:// URL; '{shown}' is not.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidRequest(f"callback_url '{shown}' has a port that is not a number from 1 to 65535.") from None
    if not parts.hostname:
        raise InvalidRequest(f"callback_url '{shown}' names no host.")
    return parts.hostname, port


def _addresses(host: str, port: int, allow_private: bool) -> list[Address]:
    """The addresses `host` resolves to, every one of them public unless `allow_private`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidRequest(f"callback_url's host '{host}' does not resolve ({exc.args[-1]}).") from None
    found = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
    for address in found if not allow_private else ():
        why = _not_public(address)
        if why:
            raise InvalidRequest(f"callback_url's host '{host}' is {address}, {why}; this service calls back only "
                                 "public addresses (WEBHOOK_ALLOW_PRIVATE=1 allows others).")  # fmt: skip
    return found


def _not_public(address: Address) -> str | None:
    """Why `address` is not one to call (None: it is public)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for test, why in ((address.is_unspecified, "an unspecified address"), (address.is_loopback, "a loopback address"),
                      (address.is_link_local, "a link-local address (where cloud metadata services answer)"),
                      (address.is_private, "a private address"), (address.is_multicast, "a multicast address"),
                      (address.is_reserved, "a reserved address"), (not address.is_global, "not a public address")):
        if test:
            return why
    return None


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float,
         allow_private: bool) -> tuple[int | None, str | None]:  # fmt: skip
    """POST `body` to `url` on an address checked as `check_target` does; `(HTTP code, None)`, or
    `(None, why)` where there was no answer."""
    try:
        host, port = _parts(url)
        address = _addresses(host, port, allow_private)[0]
    except InvalidRequest as exc:
        return None, str(exc)
    target = httpx.URL(url)
    pinned = target.copy_with(host=str(address))
    sni = {"sni_hostname": host} if target.scheme == "https" else {}
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            answer = client.post(pinned, content=body, headers={**headers, "Host": target.netloc.decode("ascii")},
                                 extensions=sni)  # fmt: skip
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return answer.status_code, None if answer.is_success else f"the receiver answered HTTP {answer.status_code}"


def attempt(rt: Runtime, job_id: str) -> float | None:
    """One attempt at the job's webhook. Returns the seconds to wait before the next attempt, or
    None where there is none to make (delivered, given up, or another attempt under way)."""
    s = rt.settings
    try:
        job = rt.store.get(job_id)
    except JobNotFound:
        job = {}
    if not job.get("callback_url"):  # the job's record expired meanwhile
        rt.store.drop_webhook(job_id)
        return None
    number = rt.store.webhook_attempt(job_id, lock_s=s.webhook_timeout_s + 5)
    if number is None:
        return None
    if number > s.webhook_attempts:  # a notify delivered again after the last attempt was recorded
        rt.store.webhook_answered(job_id, None, job.get("webhook_error"), delivered=False, done=True)
        return None
    rt.store.hold_webhook(job_id, time.time() + s.webhook_timeout_s + rt.store.webhook_grace_s)
    body = json.dumps(job_status(rt, job_id), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "waterz-webhook",
               "X-Waterz-Signature": sign(body, s.webhook_secret or ""), "X-Waterz-Task-Id": job_id}  # fmt: skip
    code, error = post(job["callback_url"], body, headers, s.webhook_timeout_s, s.webhook_allow_private)
    delivered = error is None
    done = delivered or number >= s.webhook_attempts
    rt.store.webhook_answered(job_id, code, error, delivered, done)
    if delivered:
        log.info("job %s: webhook delivered (attempt %d, HTTP %s)", job_id, number, code)
        return None
    if done:
        log.warning("job %s: webhook given up after %d attempts: %s", job_id, number, error)
        return None
    wait = s.webhook_backoff_s * 2 ** (number - 1)
    rt.store.hold_webhook(job_id, time.time() + wait + s.webhook_timeout_s + rt.store.webhook_grace_s)
    log.info("job %s: webhook attempt %d failed (%s); again in %gs", job_id, number, error, wait)
    return wait


def resend_due(rt: Runtime, send: Callable[[str], None]) -> list[str]:
    """Send again the pending webhooks that no attempt took up in time. Returns their job ids.
    Safe to run in every worker at once: one caller takes each."""
    sent = []
    for job_id in rt.store.webhooks_due():
        if rt.store.claim_webhook(job_id, time.time() + rt.store.webhook_grace_s):
            send(job_id)
            sent.append(job_id)
    return sent
