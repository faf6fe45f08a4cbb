"""`waterz submit`: videos sent to a waterz service, followed live, their results fetched.

Which files and where each result goes are `waterz remove`'s batch rules (`waterz.batch`):
`OUTDIR/<name>.clean.mp4`, a directory standing for the files in it. Before any upload the
service is asked whether it answers, takes the key and knows and can run the engines named; a
"no" there is bad usage (the CLI exits 2). Then each file is uploaded and started in turn and
followed from then on (its live events, `waterz.client.Client.events`), at most `FOLLOW` at once;
a file the service refuses, or a job that fails, is reported with the service's sentence and the
others go on.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from waterz.batch import batch_outputs
from waterz.client import Client, ServiceError
from waterz.core.errors import UnknownEngine, WeightsMissing

FOLLOW = 8  # jobs followed at once (each holds one live stream)


@dataclass
class Submission:
    """One file of the batch and what became of it."""

    source: Path
    output: Path
    task_id: str | None = None
    status: dict = field(default_factory=dict)
    error: str | None = None

    def summary(self) -> dict:
        """The JSON line printed for it at the end."""
        line = {"input": str(self.source), "task_id": self.task_id, "state": self.status.get("state", "FAILURE")}
        if self.error is None:
            meta = self.status["metadata"]
            return {**line, "output": str(self.output), "frames": meta["total_frames"],
                    "segments": meta["total_segments"], "preset": meta.get("preset")}  # fmt: skip
        return {**line, "error": self.error}


def submit(inputs: list[Path], outdir: Path, server: str, api_key: str | None = None, *, detector: str | None = None,
           inpainter: str | None = None, recursive: bool = False, out: TextIO = sys.stdout,
           err: TextIO = sys.stderr) -> int:  # fmt: skip
    """Run the batch (see the module docstring); prints a JSON line per file on `out`. Returns 0
    when every job succeeded, 1 when any failed; raises a `WaterzError` for bad usage or a
    service that cannot be used (nothing uploaded then)."""
    jobs = [Submission(source, output) for source, output in batch_outputs(inputs, outdir, recursive)]
    with Client(server, api_key) as client:
        client.health()  # unreachable, or the key refused: raises before anything is sent
        _check_engines(client.engines(), detector, inpainter)
        display = _display(jobs, err)
        followers = threading.BoundedSemaphore(FOLLOW)
        threads = []
        for job in jobs:
            try:
                job.task_id = client.upload(job.source)["task_id"]
                job.status = client.process(job.task_id, detector=detector, inpainter=inpainter)
            except (ServiceError, OSError) as exc:
                job.error = _sentence(exc)
                display.ended(job)
                continue
            followers.acquire()
            thread = threading.Thread(target=_follow, args=(job, server, api_key, display, followers), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # in slices: Ctrl+C still reaches this thread
        display.close()
    for job in jobs:
        print(json.dumps(job.summary()), file=out, flush=True)
    return 1 if any(job.error for job in jobs) else 0


def _check_engines(listing: dict, detector: str | None, inpainter: str | None) -> None:
    """`UnknownEngine` or `WeightsMissing` for engines (named, or the service's defaults) the
    service does not know or refuses to run."""
    for kind, asked in (("detector", detector), ("inpainter", inpainter)):
        rows = listing[f"{kind}s"]
        row = next((r for r in rows if (r["name"] == asked if asked else r["default"])), None)
        if row is None and asked:
            known = ", ".join(r["name"] for r in rows)
            raise UnknownEngine(f"The service has no {kind} '{asked}'; it knows: {known}.")
        if row is not None and row.get("refused"):
            raise WeightsMissing(f"The service refuses the {kind} '{row['name']}': {row['refused']}")


def _follow(job: Submission, server: str, api_key: str | None, display, done: threading.Semaphore) -> None:
    """Follow one job to its end and fetch its result; records the outcome on `job`."""
    try:
        with Client(server, api_key) as client:
            for status in client.events(job.task_id):
                job.status = status
                display.update(job)
            if job.status["state"] == "FAILURE":
                job.error = job.status.get("error") or "The job failed."
            else:
                job.output.parent.mkdir(parents=True, exist_ok=True)
                client.download(job.status, job.output)
    except (ServiceError, OSError) as exc:
        job.error = _sentence(exc)
    finally:
        display.ended(job)
        done.release()


def _sentence(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"Input file '{exc.filename}' does not exist."
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc)
    return str(exc)


def _display(jobs: list[Submission], err: TextIO):
    return _Bars(jobs, err) if err.isatty() else _Lines(err)


class _Lines:
    """Plain lines on stderr: each job's stage as it changes, and every 10 % of its progress."""

    def __init__(self, err: TextIO):
        self.err = err
        self.lock = threading.Lock()
        self.shown: dict[str, tuple[str, int]] = {}

    def update(self, job: Submission) -> None:
        s = job.status
        step = (s.get("stage", ""), s.get("progress", 0) // 10)
        if self.shown.get(job.task_id) != step and s["state"] not in ("SUCCESS", "FAILURE"):
            self.shown[job.task_id] = step
            self._say(f"{job.source.name}: {s.get('stage') or s['state'].lower()} {s.get('progress', 0)}%{_eta(s)}")

    def ended(self, job: Submission) -> None:
        if job.error:
            self._say(f"waterz: {job.source}: {job.error}")
        else:
            self._say(f"{job.source.name}: done, {job.output}")

    def close(self) -> None:
        pass

    def _say(self, line: str) -> None:
        with self.lock:
            print(line, file=self.err, flush=True)


class _Bars(_Lines):
    """One bar per job on a terminal, its stage and the time left beside it."""

    def __init__(self, jobs: list[Submission], err: TextIO):
        from tqdm import tqdm

        super().__init__(err)
        width = max(len(j.source.name) for j in jobs)
        self.bars = {id(j): tqdm(total=100, desc=j.source.name.ljust(width), position=k, file=err, unit="%",
                                 bar_format="{desc} {bar} {n:.0f}%{postfix}") for k, j in enumerate(jobs)}  # fmt: skip

    def update(self, job: Submission) -> None:
        s = job.status
        with self.lock:
            bar = self.bars[id(job)]
            bar.n = s.get("progress", 0)
            bar.set_postfix_str(f"{s.get('stage', '')}{_eta(s)}")

    def ended(self, job: Submission) -> None:
        with self.lock:
            bar = self.bars[id(job)]
            if job.error:
                bar.set_postfix_str("failed")
                bar.write(f"waterz: {job.source}: {job.error}", file=self.err)
            else:
                bar.n = 100
                bar.set_postfix_str("done")

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _eta(status: dict) -> str:
    eta = status.get("eta_s")
    return f", about {eta:.0f} s left" if eta else ""
