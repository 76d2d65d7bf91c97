"""The progress report of a fit and of cross-validation: one line on stderr, updated between sampling blocks."""

from __future__ import annotations

import sys
import time

__all__ = ["ProgressBar"]


class ProgressBar:
    """A one-line progress report on stderr, updated between sampling blocks."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.stream = sys.stderr

    def __call__(self, phase: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.t0
        if phase == "warmup" and done == 0:
            msg = f"warmup: compiling done, adapting ({total} steps)..."
        else:
            width = 30
            frac = done / total if total else 1.0
            bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
            msg = f"{phase:8s} [{bar}] {done}/{total}"
        self.stream.write(f"\r{msg:<70s} {elapsed:6.1f}s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
