"""A real service for tests: a private redis-server, Celery workers and the API, as subprocesses
started by the same code as `waterz up`."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx

from waterz.service import free_port, start_api, start_redis, start_worker, stop


class Service:
    def __init__(self, workdir: Path, workers: int = 2, env: dict | None = None, redis_url: str | None = None,
                 pin: bool = False):  # fmt: skip
        """`pin`: worker i runs on core i - 1 alone (`taskset`)."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.procs = []
        if redis_url is None:
            port = free_port()
            self.procs.append(start_redis(port, workdir, workdir / "redis.log"))
            redis_url = f"redis://127.0.0.1:{port}/0"
        self.redis_url = redis_url
        self.env = {**os.environ, "REDIS_URL": redis_url, "STORAGE_URL": f"file://{workdir / 'storage'}",
                    "CPU_THREADS": "1", **(env or {})}  # fmt: skip
        self.workers = []
        for i in range(1, workers + 1):
            wenv = {**self.env, "TMPDIR": str(self._private_tmp(f"worker{i}"))}
            cpu = (i - 1) % (os.cpu_count() or 1) if pin else None
            self.workers.append(start_worker(f"worker{i}", wenv, workdir / f"worker{i}.log", cpu))
        self.procs += self.workers
        self.port = free_port()
        self.procs.append(start_api(self.port, {**self.env, "TMPDIR": str(self._private_tmp("api"))},
                                    workdir / "api.log"))  # fmt: skip
        key = self.env.get("API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60, headers=headers)
        self.wait_for_workers(workers)

    def _private_tmp(self, name: str) -> Path:
        path = self.workdir / "tmp" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.http.get("/api/health").json().get("workers", 0) >= count:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{count} workers did not come online; see {self.workdir}/worker*.log")

    def active_tasks(self) -> list[dict]:
        """The tasks the workers are running now, as `/api/workers` shows them."""
        return [a for w in self.http.get("/api/workers").json()["workers"] for a in w["active"]]

    def wait_until_idle(self, timeout: float = 60) -> None:
        """Until no worker runs a task (a job cancelled without waiting for its end may still be
        stopping)."""
        deadline = time.monotonic() + timeout
        while self.active_tasks():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers were still busy after {timeout} s; see {self.workdir}/worker*.log")
            time.sleep(0.2)

    def upload(self, path: Path, name: str | None = None) -> httpx.Response:
        with open(path, "rb") as f:
            return self.http.post("/api/upload", files={"file": (name or path.name, f, "video/mp4")})

    def run_job(self, path: Path, timeout: float = 300, **options) -> dict:
        """Upload, process, and wait for the job to end; returns the last status."""
        task_id = self.upload(path).raise_for_status().json()["task_id"]
        self.http.post("/api/process", json={"task_id": task_id, **options}).raise_for_status()
        return self.wait(task_id, timeout)

    def wait(self, task_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.http.get(f"/api/status/{task_id}").json()
            if status["state"] in ("SUCCESS", "FAILURE"):
                return status
            time.sleep(0.5)
        raise TimeoutError(f"job {task_id} still {status['state']} after {timeout}s; see {self.workdir}")

    def download(self, status: dict, dest: Path) -> Path:
        with self.http.stream("GET", status["result"]["result_url"]) as r:
            r.raise_for_status()
            with open(dest, "wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
        return dest

    def api_temp_bytes(self) -> int:
        """Bytes of temp files the API holds: those in its TMPDIR, and deleted ones it keeps open."""
        named = sum(p.stat().st_size for p in (self.workdir / "tmp" / "api").rglob("*") if p.is_file())
        held = 0
        for fd in Path(f"/proc/{self.procs[-1].pid}/fd").iterdir():
            try:
                if os.readlink(fd).endswith("(deleted)"):
                    held += fd.stat().st_size
            except OSError:
                continue
        return named + held

    def close(self) -> None:
        self.http.close()
        stop(list(reversed(self.procs)))


def chunked_upload(port: int, megabytes: int) -> tuple[bytes, int]:
    """A multipart upload without Content-Length, sent in 64 KB chunks until the server answers;
    returns the answer and how many bytes of the body were sent."""
    boundary = "waterzboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()  # fmt: skip
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((f"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode())  # fmt: skip
    sent, chunk = 0, b"\0" * (64 << 10)
    answer = b""
    try:
        for part in [head] + [chunk] * (megabytes * 16):
            sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sent += len(part)
            sock.setblocking(False)
            try:
                answer = sock.recv(65536)
            except BlockingIOError:
                pass
            sock.setblocking(True)
            if answer:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(30)
    try:
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    return answer, sent


def processes() -> dict[int, tuple[int, str]]:
    """Every process on this machine: pid -> (parent pid, command line)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            found[int(stat.parent.name)] = ppid, (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue  # gone meanwhile
    return found


def children(pid: int) -> dict[int, str]:
    """The processes `pid` started: pid -> command line."""
    return {child: cmd for child, (ppid, cmd) in processes().items() if ppid == pid}


def descendants(pid: int) -> set[int]:
    """The processes `pid` started, and theirs, down to the last."""
    table = processes()
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _) in table.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found
