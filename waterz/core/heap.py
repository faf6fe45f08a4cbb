"""Memory the process freed handed back to the system.

glibc keeps what a process freed in its heaps for reuse, and numpy's large temporaries end up
there once its dynamic mmap threshold has grown: after a stage that made many of them (detection,
a segment's inpainting), the process's resident memory stays at that stage's peak although
almost nothing of it is live (measured after the static detector on a 720p clip: 535 MB
resident, 1 MB of live Python and numpy objects, 122 MB after a trim). The next stage's peak then
adds to it. Trimming between stages keeps each stage's peak its own.

The same heaps hold what the H.264 encoder allocates, and x264's macroblock-tree rate control
(on by default) reads some of its buffers before writing them: the same frames gave other bytes
from run to run, depending on what the process had freed before (`filled`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

M_PERTURB = -6  # glibc's mallopt parameter: fill each block it hands out (and frees) with one byte
FILL = 0xA5
_filling = threading.Lock()
_fillers = 0  # the `filled` blocks open in the process


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _trim():
    return getattr(_libc(), "malloc_trim", None)  # not glibc: nothing to trim


@contextmanager
def filled() -> Iterator[None]:
    """While open, every heap block the C library hands out comes filled with one byte, not with
    whatever was freed there before, so code that reads memory it never wrote (x264's
    macroblock tree, see the module docstring) reads the same values every time: the encode of
    the same frames gives the same bytes. Nothing where the C library is not glibc. Blocks may
    nest and run on several threads."""
    global _fillers
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        yield
        return
    with _filling:
        _fillers += 1
        if _fillers == 1:
            mallopt(M_PERTURB, FILL)
    try:
        yield
    finally:
        with _filling:
            _fillers -= 1
            if _fillers == 0:
                mallopt(M_PERTURB, 0)


def give_back() -> None:
    """Return the freed parts of the heaps to the system, where the C library can (glibc)."""
    trim = _trim()
    if trim is not None:
        trim(0)
