"""Cooperative stopping and progress: long loops (an engine's frames or chunks) call `checkpoint()`,
which raises `Stopped` once the condition installed by `stop_when` holds (a cancelled job, a lease
taken over), and tells the listener installed by `report_to` how far the work has come.
Outside both a checkpoint costs two lookups and never raises.

An engine whose work has several passes marks each with `phase(start, end)`: the checkpoints
inside it count for that share of the whole, so the reported fraction never runs back to 0 when
the next pass begins."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

_condition: ContextVar[Callable[[], bool] | None] = ContextVar("waterz_stop_condition", default=None)
_listener: ContextVar[Callable[[float], None] | None] = ContextVar("waterz_progress_listener", default=None)
_span: ContextVar[tuple[float, float]] = ContextVar("waterz_progress_span", default=(0.0, 1.0))


class Stopped(Exception):
    """The work was asked to stop; what it made so far is not wanted."""


@contextmanager
def stop_when(condition: Callable[[], bool]):
    token = _condition.set(condition)
    try:
        yield
    finally:
        _condition.reset(token)


@contextmanager
def report_to(listener: Callable[[float], None]):
    """`listener(fraction)` (0-1 of the whole work) is called at every checkpoint inside."""
    token, span = _listener.set(listener), _span.set((0.0, 1.0))
    try:
        yield
    finally:
        _listener.reset(token)
        _span.reset(span)


@contextmanager
def phase(start: float, end: float):
    """The checkpoints inside cover the share `start`..`end` (0-1) of the enclosing span."""
    lo, hi = _span.get()
    token = _span.set((lo + (hi - lo) * start, lo + (hi - lo) * end))
    _tell(0, 1)
    try:
        yield
    finally:
        _span.reset(token)


def checkpoint(done: int = 0, total: int = 0) -> None:
    condition = _condition.get()
    if condition is not None and condition():
        raise Stopped(f"stopped after {done} of {total}" if total else "stopped")
    _tell(done, total)


def _tell(done: int, total: int) -> None:
    listener = _listener.get()
    if listener is not None and total > 0:
        lo, hi = _span.get()
        listener(lo + (hi - lo) * min(done, total) / total)
