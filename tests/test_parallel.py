"""`waterz.core.parallel.in_order`: work on threads, results in order, an early stop cheap."""

from __future__ import annotations

import threading
import time

import pytest

from waterz.core.parallel import in_order


def test_results_come_in_the_order_of_the_items_whatever_order_they_finish_in():
    def slow_first(k: int) -> int:
        time.sleep(0.05 if k % 3 == 0 else 0.0)
        return k * k

    assert list(in_order(slow_first, range(20), threads=4)) == [k * k for k in range(20)]
    assert list(in_order(slow_first, range(5), threads=1)) == [k * k for k in range(5)]


def test_a_caller_that_stops_early_leaves_the_rest_unstarted():
    started, lock = [], threading.Lock()

    def work(k: int) -> int:
        with lock:
            started.append(k)
        time.sleep(0.01)
        return k

    results = in_order(work, range(1000), threads=2)
    taken = []
    for _ in range(3):
        taken.append(next(results))
        time.sleep(0.05)  # a slow consumer: the pool must not run far ahead of it
    assert taken == [0, 1, 2]
    assert len(started) <= 3 + 2 * 2  # those yielded, and at most two per thread started ahead
    results.close()  # what a `Stopped` raised in the caller's loop does
    time.sleep(0.05)
    assert len(started) <= 3 + 2 * 2  # nothing more started once the caller stopped


def test_an_error_in_the_work_reaches_the_caller():
    def work(k: int) -> int:
        if k == 4:
            raise ValueError("frame 4 is broken")
        return k

    with pytest.raises(ValueError, match="frame 4"):
        list(in_order(work, range(10), threads=2))
