"""Freed heap memory goes back to the system between the stages of a fit (glibc's malloc_trim)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import numpy as np
import pytest

from hdsl.inference.memory import release_free_memory

PAGE = os.sysconf("SC_PAGE_SIZE")


def _resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


@pytest.mark.skipif(not release_free_memory(), reason="not glibc: nothing to release")
def test_freed_heap_memory_is_returned():
    """64 MiB in 64 KiB blocks (below glibc's mmap threshold, so on the heap), all freed but one block
    above them, which keeps free() from trimming the heap's top: the pages stay resident until
    release_free_memory returns them."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    block, count = 64 * 1024, 1024
    blocks = [libc.malloc(block) for _ in range(count)]
    guard = libc.malloc(block)
    for b in blocks:
        ctypes.memset(b, 1, block)
    touched = _resident()
    for b in blocks:
        libc.free(b)
    freed = _resident()
    assert release_free_memory()
    released = _resident()
    libc.free(guard)
    assert freed > touched - count * block // 2, "free() already returned the pages: the test shows nothing"
    assert freed - released > 0.75 * count * block


def test_fit_stages_release_memory(monkeypatch):
    """A fit calls the release after building the model, after compiling, after each block of draws
    and after building the ArviZ object."""
    import pandas as pd

    import hdsl
    import hdsl.inference.sample
    import hdsl.workflow.api

    calls = []
    monkeypatch.setattr(hdsl.workflow.api, "release_free_memory", lambda: calls.append("api"))
    monkeypatch.setattr(hdsl.inference.sample, "release_free_memory", lambda: calls.append("sample"))
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(5), 8)
    df = pd.DataFrame({"x": rng.normal(size=40), "g": g})
    df["y"] = df["x"] + rng.normal(size=5)[g] + rng.normal(size=40)
    model = hdsl.Model("y ~ x + (1 | g)", df)
    assert calls == ["api"]
    model.sample(chains=2, warmup=20, draws=20, seed=0, progress=False)
    assert calls.count("sample") >= 3 and calls[-1] == "api"
