"""Encodings with a basis: categorical levels and contrasts, orthogonal polynomials, brms names.

Everything here is computed once on the training data and kept in a plain ``dict`` (the *state*),
so new data are encoded with exactly the same levels, reference level and polynomial basis.

Coefficient names follow brms, which takes the column names R's ``model.matrix`` gives
(variable name + level, no separator: ``TrtA``; interactions joined by ``:``: ``zBase:Trt1``;
matrix columns numbered: ``poly(x, 2)1``) and passes them through its internal ``rename``:
``" ( ) [ ] , \\" ' ?`` are deleted and ``+ - * / ^ = $`` become ``P M MU D E EQ USD``
(brms's ``R/rename.R``). So ``log(x + 1)`` → ``logxP1``, ``I(x^2)`` → ``IxE2``,
``poly(x, 2)`` → ``polyx21``, ``polyx22``, a level ``"a b"`` of ``f`` → ``fab``. ``:`` ``.`` ``_`` and
every other character are kept, as in brms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = [
    "CategoricalColumn",
    "brms_name",
    "level_label",
    "fit_levels",
    "encode_levels",
    "contrast_columns",
    "poly_fit",
    "poly_eval",
    "CONTRASTS",
]

_BRMS_DELETE = (" ", "(", ")", "[", "]", ",", '"', "'", "?")
_BRMS_REPLACE = (("+", "P"), ("-", "M"), ("*", "MU"), ("/", "D"), ("^", "E"), ("=", "EQ"), ("$", "USD"))

CONTRASTS = {
    "treatment": "treatment", "contr.treatment": "treatment",
    "sum": "sum", "contr.sum": "sum",
}


def brms_name(name: str) -> str:
    """A coefficient name as brms writes it (``rename`` in brms's ``R/rename.R``).

    >>> brms_name("poly(x, 2)1"), brms_name("I(x^2):fa b")
    ('polyx21', 'IxE2:fab')
    """
    for ch in _BRMS_DELETE:
        name = name.replace(ch, "")
    for ch, sub in _BRMS_REPLACE:
        name = name.replace(ch, sub)
    return name


def level_label(value: object) -> str:
    """The text of a level as R prints a factor level: ``1`` not ``1.0``, ``TRUE`` not ``True``."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class CategoricalColumn:
    """A factor evaluated on data: level code per row, the levels, the contrast and the name stem."""

    codes: np.ndarray  # (n,) int, index into levels
    levels: tuple[str, ...]
    contrast: str  # "treatment" or "sum"
    stem: str  # what level names are appended to in coefficient names
    state: Mapping[str, Any]


def fit_levels(col: pd.Series, explicit: Sequence[str] | None) -> tuple[str, ...]:
    """Levels of a training column: explicit ones, pandas category order, FALSE/TRUE, or sorted values."""
    if explicit is not None:
        return tuple(explicit)
    if isinstance(col.dtype, pd.CategoricalDtype):
        present = set(col.dropna().unique())
        return tuple(level_label(c) for c in col.cat.categories if c in present)
    if pd.api.types.is_bool_dtype(col):
        return ("FALSE", "TRUE")
    values = col.dropna().unique()
    try:
        ordered = sorted(values)
    except TypeError:
        ordered = sorted(values, key=str)
    return tuple(dict.fromkeys(level_label(v) for v in ordered))


def encode_levels(col: pd.Series, levels: tuple[str, ...], column: str) -> np.ndarray:
    """Codes of each row in ``levels``; a level not among them is a DataError naming it."""
    labels = col.map(level_label) if not isinstance(col.dtype, pd.CategoricalDtype) else \
        col.astype(object).map(level_label)
    lookup = {lv: i for i, lv in enumerate(levels)}
    codes = labels.map(lookup)
    if codes.isna().any():
        unseen = labels[codes.isna()].iloc[0]
        raise DataError(
            f"column '{column}' has level '{unseen}', which is not one of its levels "
            f"({', '.join(levels)})",
            column=column,
            hint="new data can only use the levels seen in the training data" if levels else None,
        )
    return codes.to_numpy(dtype=np.int64)


def contrast_columns(cat: CategoricalColumn, full: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    """The columns a factor contributes to a term, and their names (before brms renaming).

    ``full`` is R's indicator coding (every level a column), used where a lower-order margin of the
    term is absent from the model. Otherwise treatment coding drops the first (reference) level and
    sum coding (R's ``contr.sum``) has columns ``1 … k-1`` with the last level coded -1.
    """
    k = len(cat.levels)
    if full:
        basis = np.eye(k)
        names = tuple(cat.stem + lv for lv in cat.levels)
    elif cat.contrast == "sum":
        basis = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
        names = tuple(f"{cat.stem}{j}" for j in range(1, k))
    else:
        basis = np.eye(k)[:, 1:]
        names = tuple(cat.stem + lv for lv in cat.levels[1:])
    return basis[cat.codes], names


def poly_fit(x: np.ndarray, degree: int, label: str) -> dict[str, Any]:
    """The basis of R's ``poly(x, degree)``: recurrence coefficients ``alpha`` and ``norm2``.

    These are what R stores in ``attr(, "coefs")`` and what ``predict.poly`` uses on new data; the
    three-term recurrence below reproduces R's QR construction (same signs, same scale).
    """
    n_unique = len(np.unique(x))
    if degree >= n_unique:
        raise DataError(f"'{label}': degree {degree} must be less than the number of distinct values "
                        f"({n_unique})", column=label)
    alpha: list[float] = []
    norm2 = [1.0, float(len(x))]
    p_prev, p = np.zeros_like(x), np.ones_like(x)
    for _ in range(degree):
        a = float(np.sum(x * p**2) / np.sum(p**2))
        alpha.append(a)
        p_prev, p = p, (x - a) * p - (norm2[-1] / norm2[-2]) * p_prev
        norm2.append(float(np.sum(p**2)))
    return {"alpha": tuple(alpha), "norm2": tuple(norm2)}


def poly_eval(x: np.ndarray, state: Mapping[str, Any]) -> np.ndarray:
    """R's ``predict.poly``: the orthogonal polynomial columns of ``x`` in a stored basis."""
    alpha, norm2 = state["alpha"], state["norm2"]
    degree = len(alpha)
    z = np.ones((len(x), degree + 1))
    z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        z[:, i + 1] = (x - alpha[i]) * z[:, i] - (norm2[i + 1] / norm2[i]) * z[:, i - 1]
    return z[:, 1:] / np.sqrt(np.asarray(norm2[2:]))
