"""A Python client for the waterz service (what `waterz submit` is built on).

    from waterz.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as service:
        job = service.upload("input.mp4")                    # {"task_id": ..., "frames": ..., ...}
        service.process(job["task_id"], inpainter="unblend")
        for status in service.events(job["task_id"]):        # live, until the job ends
            print(status["progress"], status["eta_s"])
        service.download(status, "clean.mp4")                 # ServiceError where the job failed

Every answer that is not a success raises a `ServiceError` carrying the service's own sentence
(`detail`) and the HTTP status: `Unreachable` (no answer at all), `Unauthorized` (401),
`NotFound` (404, 410), `Rejected` (the request or the file was refused: 400, 409, 413, 415, 422),
`ServerError` (5xx), and `JobFailed` for a result asked of a job that failed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from waterz.core.errors import WaterzError

TERMINAL = ("SUCCESS", "FAILURE")


class ServiceError(WaterzError):
    """The service refused a request or could not be asked. `detail`: its sentence;
    `status_code`: the HTTP status (None where no answer came)."""

    def __init__(self, detail: str, status_code: int | None = None):
        super().__init__(detail)
        self.detail, self.status_code = detail, status_code


class Unreachable(ServiceError):
    """No answer: the server is down, the address is wrong, or the network is in the way."""


class Unauthorized(ServiceError):
    """401: the service needs an API key, or another one."""


class NotFound(ServiceError):
    """404 or 410: no such job, or its files were deleted."""


class Rejected(ServiceError):
    """The service refused the request or the file (400, 409, 413, 415, 422)."""


class ServerError(ServiceError):
    """5xx: the service failed to answer (Redis away, a bug)."""


class JobFailed(ServiceError):
    """The job ended in FAILURE; `detail` is its `error` sentence."""


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = f"The service answered HTTP {response.status_code} {response.reason_phrase}."
    code = response.status_code
    kind = (Unauthorized if code == 401 else NotFound if code in (404, 410) else
            ServerError if code >= 500 else Rejected)  # fmt: skip
    raise kind(str(detail), code)


class Client:
    """The service at `url`; `api_key` where it has `API_KEY` set. `timeout_s`: the longest wait
    for any one answer (an upload's body may take longer to send: only gaps count)."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 60.0, poll_s: float = 1.0):
        self.url = url.rstrip("/")
        self.poll_s = poll_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"The service at {self.url} cannot be reached ({type(exc).__name__}: {exc}).") from exc
        _raise_for(response)
        return response

    def health(self) -> dict:
        """`{"status", "redis", "workers"}`; also proves the API key is accepted."""
        return self._call("GET", "/api/health").json()

    def engines(self) -> dict:
        """Every detector and inpainter the service knows, with what it needs and its licences."""
        return self._call("GET", "/api/engines").json()

    def upload(self, path: str | Path, filename: str | None = None) -> dict:
        """Upload a video; `{"task_id", "filename", "frames", "fps", "width", "height", "duration"}`."""
        path = Path(path)
        with open(path, "rb") as f:
            files = {"file": (filename or path.name, f, "application/octet-stream")}
            return self._call("POST", "/api/upload", files=files).json()

    def process(self, task_id: str, **options) -> dict:
        """Start a job: `detector`, `inpainter`, `boxes`, `callback_url` as the API takes them
        (None values are left out)."""
        body = {"task_id": task_id, **{k: v for k, v in options.items() if v is not None}}
        return self._call("POST", "/api/process", json=body).json()

    def status(self, task_id: str) -> dict:
        return self._call("GET", f"/api/status/{task_id}").json()

    def cancel(self, task_id: str) -> dict:
        return self._call("DELETE", f"/api/jobs/{task_id}").json()

    def events(self, task_id: str) -> Iterator[dict]:
        """The job's status each time it changes, until it ends (the last one yielded is
        SUCCESS or FAILURE): from the live stream `GET /api/events/{id}`, or by polling the
        status every `poll_s` where the stream cannot be had or breaks off."""
        last = None
        try:
            for status in self._stream(task_id):
                last = status
                yield status
                if status["state"] in TERMINAL:
                    return
        except (httpx.TransportError, _StreamGone):
            pass  # polled from here on
        yield from self._poll(task_id, last)

    def _stream(self, task_id: str) -> Iterator[dict]:
        # the server sends at least a heartbeat every 15 s; a stream silent for longer is dead: polled instead
        live = httpx.Timeout(self.http.timeout.connect, read=60.0)
        with self.http.stream("GET", f"/api/events/{task_id}", timeout=live) as response:
            if not response.is_success:
                response.read()
                _raise_for(response)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise _StreamGone
            event, data = "message", []
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    if event == "status":
                        yield json.loads("\n".join(data))
                    elif event == "unavailable":
                        raise _StreamGone
                    event, data = "message", []
        raise _StreamGone  # closed before the job ended (a proxy, a restart)

    def _poll(self, task_id: str, last: dict | None) -> Iterator[dict]:
        while True:
            status = self.status(task_id)
            if status != last:
                yield status
                last = status
            if status["state"] in TERMINAL:
                return
            time.sleep(self.poll_s)

    def wait(self, task_id: str, timeout_s: float | None = None) -> dict:
        """The job's last status once it ended (SUCCESS or FAILURE); `TimeoutError` after `timeout_s`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for status in self.events(task_id):
            if status["state"] in TERMINAL:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Job {task_id} is still {status['state']} after {timeout_s:g} s.")
        raise ServiceError(f"The service stopped telling job {task_id}'s status.")  # pragma: no cover

    def download(self, job: str | dict, dest: str | Path) -> Path:
        """Write the job's result (a task id or a status) to `dest`; `JobFailed` with the job's
        sentence where it failed, `Rejected` where it has not ended yet."""
        status = self.status(job) if isinstance(job, str) else job
        if status["state"] == "FAILURE":
            raise JobFailed(status.get("error") or "The job failed.")
        if status["state"] != "SUCCESS":
            raise Rejected(f"Job {status['task_id']} has not ended yet (it is {status['state']}).")
        dest = Path(dest)
        partial = dest.with_name(dest.name + ".part")
        try:
            with self.http.stream("GET", status["result"]["result_url"]) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                with open(partial, "wb") as f:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise Unreachable(f"The download from {self.url} broke off ({type(exc).__name__}: {exc}).") from exc
        partial.replace(dest)
        return dest


class _StreamGone(Exception):
    """The live stream ended or cannot be used; polling takes over."""
