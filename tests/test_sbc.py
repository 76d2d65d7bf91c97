"""A small simulation-based calibration run (benchmarks/sbc.py has the full one): 20 data sets of the
binomial random-intercept model, fitted as one batched program; no rank p-value below 0.001."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_sbc_small():
    import jax
    import sbc

    jax.config.update("jax_enable_x64", True)  # the float64 models sbc.run_model builds need it on
    rows = sbc.run_model(sbc.MODELS["binomial"], 20, chains=2, warmup=150, draws=200, thin=4, seed=11)
    assert {r["parameter"] for r in rows} == {"b_Intercept", "b_x", "sd_g__Intercept"}
    for r in rows:
        assert r["chi2_p"] >= 0.001 and r["ks_p"] >= 0.001, r
