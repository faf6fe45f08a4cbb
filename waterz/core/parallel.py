"""Work spread over threads, its results taken in order: OpenCV and numpy let go of the GIL for
their heavy calls, so per-frame work of an engine runs on as many cores as the process may use."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import cv2

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """Pieces of independent work a process does at once: as many as OpenCV may use cores
    (`CPU_THREADS` in a worker, where one worker stands for one device)."""
    return max(1, cv2.getNumThreads())


def in_order(fn: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """`fn(item)` for each item, on `threads` threads, yielded in the items' order. At most two
    items per thread are started ahead of the one yielded, so a caller that stops early (a
    cancelled job) waits only for those already running, and results do not pile up."""
    items = iter(items)
    if threads <= 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="waterz-work")
    try:
        pending = deque(pool.submit(fn, item) for _, item in zip(range(2 * threads), items))
        while pending:
            result = pending.popleft().result()
            for item in items:
                pending.append(pool.submit(fn, item))
                break
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
