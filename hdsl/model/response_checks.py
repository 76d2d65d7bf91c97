"""Checks of a bound response's values, per kind of response (real, positive, in (0, 1), counts, 0/1) and
of the binomial's trials: each raises a DataError naming the column and the first offending (0-based) row.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import DataError

__all__ = ["check_real", "check_positive", "check_unit_open", "check_counts", "check_binary", "check_trials"]



def _reject(y: np.ndarray, bad: np.ndarray, column: str, what: str) -> None:
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"response '{column}' {what}; row {row} holds {y[row].item()!r}", column=column, row=row)


def _as_float(y: np.ndarray) -> np.ndarray:
    return np.asarray(y, dtype=float)


def check_real(y: np.ndarray, column: str) -> None:
    y = _as_float(y)
    _reject(y, ~np.isfinite(y), column, "has a non-finite value")


def check_positive(y: np.ndarray, column: str) -> None:
    y = _as_float(y)
    check_real(y, column)
    _reject(y, y <= 0, column, "must be greater than 0")


def check_unit_open(y: np.ndarray, column: str) -> None:
    y = _as_float(y)
    check_real(y, column)
    _reject(y, (y <= 0) | (y >= 1), column, "must lie strictly between 0 and 1 for the beta family")


def check_counts(y: np.ndarray, column: str) -> None:
    y = _as_float(y)
    check_real(y, column)
    _reject(y, y < 0, column, "must be a non-negative count")
    _reject(y, y != np.round(y), column, "must hold whole numbers (counts)")


def check_binary(y: np.ndarray, column: str) -> None:
    y = _as_float(y)
    check_real(y, column)
    _reject(y, (y != 0) & (y != 1), column, "must be 0/1 or true/false for the bernoulli family")


def check_trials(y: np.ndarray, additions: Mapping[str, np.ndarray], column: str) -> None:
    if "trials" not in additions:
        raise DataError(f"the binomial family needs the number of trials: write '{column} | trials(n)'",
                        column=column, hint="for 0/1 responses use family: bernoulli")
    n = _as_float(additions["trials"])
    y = _as_float(y)
    _reject(n, ~np.isfinite(n) | (n < 0) | (n != np.round(n)), f"trials of {column}",
            "must hold non-negative whole numbers")
    if (y > n).any():
        row = int(np.argmax(y > n))
        raise DataError(f"response '{column}' has more successes than trials; row {row} holds {y[row].item()!r} "
                        f"successes of {n[row].item()!r} trials", column=column, row=row)
