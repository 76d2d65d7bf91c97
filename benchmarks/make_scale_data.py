"""Synthetic data for the scale benchmark: ``y ~ x + (1 + x | g)`` with 100 rows per group.

True values: b = (1, 0.5), group sd = (1, 0.5), correlation 0.3, sigma = 1; ``x`` is standard normal.
The data are generated in memory from a fixed seed (the same call gives the same frame); ``main`` also
writes them as ``.npz`` under ``benchmarks/.data/`` (git-ignored) for use outside Python.

    cd /work/main && /work/venv/bin/python benchmarks/make_scale_data.py [--sizes 10k,100k,1M]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

ROWS_PER_GROUP = 100
SIZES: dict[str, int] = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
"""Size label -> number of rows (groups = rows / 100)."""

TRUE_B = (1.0, 0.5)
TRUE_SD = (1.0, 0.5)
TRUE_COR = 0.3
TRUE_SIGMA = 1.0
DATA_DIR = Path(__file__).resolve().parent / ".data"


def make_data(n_rows: int, seed: int = 20261125) -> pd.DataFrame:
    """Rows ``y, x, g`` (``g`` an integer group label, 100 rows per group, sorted by group)."""
    n_groups = n_rows // ROWS_PER_GROUP
    rng = np.random.default_rng(seed + n_rows)
    cov = np.array([[TRUE_SD[0] ** 2, TRUE_COR * TRUE_SD[0] * TRUE_SD[1]],
                    [TRUE_COR * TRUE_SD[0] * TRUE_SD[1], TRUE_SD[1] ** 2]])
    r = rng.multivariate_normal(np.zeros(2), cov, size=n_groups)
    g = np.repeat(np.arange(n_groups), ROWS_PER_GROUP)
    x = rng.standard_normal(n_groups * ROWS_PER_GROUP)
    mu = TRUE_B[0] + r[g, 0] + (TRUE_B[1] + r[g, 1]) * x
    y = mu + TRUE_SIGMA * rng.standard_normal(len(x))
    return pd.DataFrame({"y": y, "x": x, "g": g})


def parse_size(label: str) -> int:
    """'10k' -> 10000, '1M' -> 1000000, '2500' -> 2500."""
    if label in SIZES:
        return SIZES[label]
    mult = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}
    return int(float(label[:-1]) * mult[label[-1]]) if label[-1] in mult else int(label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1M")
    args = parser.parse_args()
    DATA_DIR.mkdir(exist_ok=True)
    for label in args.sizes.split(","):
        df = make_data(parse_size(label))
        path = DATA_DIR / f"scale_{label}.npz"
        np.savez(path, **{c: df[c].to_numpy() for c in df.columns})
        print(f"{path}: {len(df)} rows, {df['g'].nunique()} groups")


if __name__ == "__main__":
    main()
