"""The persistent compilation cache: enabling it points JAX at the directory, and a fit in a fresh
process (cache turned on by HDSL_CACHE_DIR at import) writes compiled programs there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax

import hdsl
from hdsl.inference.cache import CACHE_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]

SMALL_FIT = """
import numpy as np, pandas as pd, hdsl
rng = np.random.default_rng(0)
g = np.repeat(np.arange(5), 8)
df = pd.DataFrame({"y": rng.normal(size=40) + g * 0.3, "g": g})
hdsl.fit("y ~ 1 + (1 | g)", df, chains=1, warmup=10, draws=10, seed=1, progress=False)
"""


def test_enable_sets_jax_config(tmp_path: Path) -> None:
    previous = jax.config.jax_compilation_cache_dir
    try:
        path = hdsl.enable_compilation_cache(tmp_path / "cache")
        assert path == tmp_path / "cache" and path.is_dir()
        assert jax.config.jax_compilation_cache_dir == str(path)
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)
        from jax.experimental.compilation_cache import compilation_cache as cc

        cc.reset_cache()


def test_env_var_fit_in_subprocess_writes_entries(tmp_path: Path) -> None:
    cache = tmp_path / "jaxcache"
    env = dict(os.environ, **{CACHE_ENV: str(cache)})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", SMALL_FIT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    entries = [p for p in cache.rglob("*") if p.is_file()]
    assert entries, f"no cache entries written under {cache}"
