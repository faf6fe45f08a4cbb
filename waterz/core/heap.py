"""Memory the process freed handed back to the system.

glibc keeps what a process freed in its heaps for reuse, and numpy's large temporaries end up
there once its dynamic mmap threshold has grown: after a stage that made many of them (detection,
a segment's inpainting), the process's resident memory stays at that stage's peak although
almost nothing of it is live (measured after the static detector on a 720p clip: 535 MB
resident, 1 MB of live Python and numpy objects, 122 MB after a trim). The next stage's peak then
adds to it. Trimming between stages keeps each stage's peak its own."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


def give_back() -> None:
    """Return the freed parts of the heaps to the system, where the C library can (glibc)."""
    trim = _trim()
    if trim is not None:
        trim(0)
