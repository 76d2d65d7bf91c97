"""float32 models (the default on GPUs) on this CPU: the log-density agrees with float64, and a float32 fit
gives the same draws whether or not a float64 model has turned on ``jax_enable_x64`` in the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CORR_SPEC

import hdsl

FIT = dict(chains=2, warmup=200, draws=200, seed=5, progress=False)


def test_float32_log_density_and_gradient_match_float64(corr_data):
    """A correlated term (LKJ, the correlation Cholesky transform) in float32 after a float64 model turned x64
    on: values and gradients within float32 rounding of the float64 ones."""
    m64 = hdsl.Model(CORR_SPEC, corr_data, dtype="float64")
    m32 = hdsl.Model(CORR_SPEC, corr_data, dtype="float32")
    assert jax.config.jax_enable_x64
    grad64, grad32 = jax.jit(jax.value_and_grad(m64.log_density)), jax.jit(jax.value_and_grad(m32.log_density))
    rng = np.random.default_rng(7)
    for _ in range(10):
        x = rng.uniform(-1.5, 1.5, m64.dim)
        v64, g64 = grad64(jnp.asarray(x, jnp.float64))
        v32, g32 = grad32(jnp.asarray(x, jnp.float32))
        assert v32.dtype == jnp.float32 and g32.dtype == jnp.float32
        assert float(v32) == pytest.approx(float(v64), rel=2e-5)
        np.testing.assert_allclose(np.asarray(g32), np.asarray(g64), rtol=1e-3, atol=1e-3 * np.abs(g64).max())


FRESH = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np, pandas as pd, jax
    import hdsl
    warnings.simplefilter("ignore")
    df = pd.read_csv(sys.argv[1])
    fit = hdsl.fit(sys.argv[2], df, dtype="float32", **json.loads(sys.argv[3]))
    assert not jax.config.jax_enable_x64
    np.save(sys.argv[4], fit.idata["posterior"]["b_x"].values)
""")


def test_float32_fit_after_float64_equals_a_fresh_process(corr_data, corr_fit, tmp_path):
    """Same seed, same draws: a float32 fit in this process (x64 on, turned on by float64 models) and in a
    fresh one where x64 was never on. Its posterior agrees with the float64 fit of the same data."""
    hdsl.Model(CORR_SPEC, corr_data, dtype="float64")
    assert jax.config.jax_enable_x64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hdsl.fit(CORR_SPEC, corr_data, dtype="float32", **FIT)
    here = fit.idata["posterior"]["b_x"].values
    assert here.dtype == np.float32
    data, out = tmp_path / "data.csv", tmp_path / "b_x.npy"
    corr_data.to_csv(data, index=False)
    env = dict(os.environ, JAX_ENABLE_X64="0")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", FRESH, str(data), CORR_SPEC, json.dumps(FIT), str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_array_equal(np.load(out), here)
    s32, s64 = fit.summary(), corr_fit.summary()
    for name in ("b_Intercept", "b_x", "sd_g__Intercept", "sd_g__x", "cor_g__Intercept__x", "sigma"):
        mcse = np.hypot(s32.loc[name, "sd"] / np.sqrt(s32.loc[name, "ess_bulk"]),
                        s64.loc[name, "sd"] / np.sqrt(s64.loc[name, "ess_bulk"]))
        assert abs(s32.loc[name, "mean"] - s64.loc[name, "mean"]) < 4 * mcse, name


@pytest.mark.parametrize("k", [2, 3, 5])
def test_correlation_cholesky_transform_is_numpyros_in_any_dtype(k):
    """hdsl's transform gives NumPyro's factor exactly in float64 (batched too), and its own dtype in float32."""
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import biject_to

    from hdsl.model.bijectors import CorrCholesky

    with jax.enable_x64(True):
        ours, numpyro_t = CorrCholesky(), biject_to(constraints.corr_cholesky)
        u = np.random.default_rng(k).normal(0, 1.5, (6, k * (k - 1) // 2))
        u64 = jnp.asarray(u, jnp.float64)
        np.testing.assert_array_equal(np.asarray(ours(u64)), np.asarray(numpyro_t(u64)))
        np.testing.assert_allclose(np.asarray(ours.inv(ours(u64))), u, atol=1e-10)
        L32 = ours(jnp.asarray(u, jnp.float32))
        assert L32.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(L32), np.asarray(numpyro_t(u64)), atol=1e-4)
