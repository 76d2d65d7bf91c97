"""Chains spread across several devices (CPU devices forced by XLA_FLAGS, as on a multi-GPU host)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SMALL_DATA = textwrap.dedent("""
    import numpy as np, pandas as pd
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(8), 12)
    df = pd.DataFrame({"x": rng.normal(size=g.size), "g": g.astype(str)})
    df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 1, 8)[g] + rng.normal(0, 0.5, g.size)
""")
"""96 rows in 8 groups, b_x = 0.5: the data of the subprocess scripts that fit across devices or processes."""

SCRIPT = SMALL_DATA + textwrap.dedent("""
    import json, warnings
    import jax, hdsl
    warnings.simplefilter("ignore")
    fit = hdsl.fit("y ~ x + (1 | g)", df, chains=4, warmup=150, draws=100, seed=4, progress=False)
    again = hdsl.fit("y ~ x + (1 | g)", df, chains=4, warmup=150, draws=100, seed=4, progress=False)
    s = fit.summary()
    print(json.dumps({
        "devices": len(jax.devices()),
        "b_x": float(s.loc["b_x", "mean"]),
        "r_hat": float(s.loc[fit.parameter_names, "r_hat"].max()),
        "same": bool(np.array_equal(fit.idata["posterior"]["b_x"].values, again.idata["posterior"]["b_x"].values)),
    }))
""")


def test_chains_sharded_over_four_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4
    assert abs(result["b_x"] - 0.5) < 0.3
    assert result["r_hat"] < 1.05
    assert result["same"]  # reproducible on the same device layout
