"""Cooperative stopping: long loops (an engine's frames or chunks) call `checkpoint()`, which raises
`Stopped` once the condition installed by `stop_when` holds (a cancelled job, a lease taken over).
Outside `stop_when` a checkpoint costs a lookup and never raises."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

_condition: ContextVar[Callable[[], bool] | None] = ContextVar("waterz_stop_condition", default=None)


class Stopped(Exception):
    """The work was asked to stop; what it made so far is not wanted."""


@contextmanager
def stop_when(condition: Callable[[], bool]):
    token = _condition.set(condition)
    try:
        yield
    finally:
        _condition.reset(token)


def checkpoint(done: int = 0, total: int = 0) -> None:
    condition = _condition.get()
    if condition is not None and condition():
        raise Stopped(f"stopped after {done} of {total}" if total else "stopped")
