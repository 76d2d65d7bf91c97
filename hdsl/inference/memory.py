"""Give the heap memory that is free back to the operating system.

glibc keeps what a process frees in its arenas (one per thread that allocated: XLA compiles and runs on
many threads), so a fit's resident memory climbs with every compilation and every block of draws even
though little of it is live: at 1M rows the resident set ended 330 MiB above what was in use
(benchmarks/RESULTS.md, "Memory"). ``malloc_trim(0)`` returns the free pages of every arena. It is called
between the stages of a fit, never inside compiled code; elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return free heap pages to the system; True where that was possible (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
