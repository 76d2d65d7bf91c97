"""Scale benchmark: hdsl against a hand-written BlackJAX program on ``y ~ x + (1 + x | g)`` from 10k rows /
100 groups to 1M rows / 10k groups (``make_scale_data.py``).

Each fit runs in its own subprocess so that its peak resident memory (``ru_maxrss``) is its own; within a
size the order of the tools alternates from one size to the next. Reported per fit: compile s, sampling
s (warmup + draws), total s, min bulk ESS over b, sd, cor, sigma, ESS per sampling second, max r_hat,
peak memory, then hdsl/handwritten ratios. ``--grad`` instead times one gradient evaluation
(``jax.jit(jax.grad(log_density))``) of hdsl's model, the hand-written one, and a hand-written one on
per-group sufficient statistics, all in one process, alternating. ``--cache-startup`` times fresh
processes fitting the seed model with and without ``hdsl.enable_compilation_cache`` (HDSL_CACHE_DIR).

``--dtype`` (default ``auto``: hdsl's default for the backend, float64 on CPU and float32 on a GPU) is the
precision of both tools; ``--json PATH`` writes every result (rewritten after each fit).
On a GPU the fits' subprocesses share the device: JAX's preallocation is turned off
(``XLA_PYTHON_CLIENT_PREALLOCATE=false`` unless set) and each fit also reports the device's peak memory.

    cd /work/main && /work/venv/bin/python benchmarks/scale.py --sizes 10k,100k --warmup 1000,300 \
        --draws 1000,300 [--parameterization auto,noncentered] [--adaptation window,stan] [--grad]
    cd /work/main && /work/venv/bin/python benchmarks/scale.py --cache-startup --warmup 200 --draws 200
    python3 benchmarks/scale.py --sizes 10k,100k,1M --tools hdsl --dtype float32 --warmup 500,500,300 \
        --draws 500,500,300 --json scale.json          # on a GPU (gpu_check.sh)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(HERE))

from make_scale_data import make_data, parse_size  # noqa: E402

SPEC = """
y ~ x + (1 + x | g)
prior: Intercept ~ normal(0, 5)
prior: b ~ normal(0, 5)
prior: sd ~ normal(0, 2)
prior: cor ~ lkj(2)
prior: sigma ~ normal(0, 2)
"""
"""The same priors as ``handwritten_scale.py`` (a normal prior on a positive parameter is a half-normal)."""

HDSL_NAMES: dict[str, str] = {
    "b0": "b_Intercept", "b1": "b_x", "sd0": "sd_g__Intercept", "sd1": "sd_g__x",
    "cor": "cor_g__Intercept__x", "sigma": "sigma",
}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _stats(draws: dict[str, np.ndarray]) -> dict[str, float]:
    import arviz_stats

    return {
        "min_ess": min(float(arviz_stats.ess(d, method="bulk")) for d in draws.values()),
        "max_rhat": max(float(arviz_stats.rhat(d)) for d in draws.values()),
        "means": {k: float(np.mean(d)) for k, d in draws.items()},
    }


def device_peak_mib() -> float | None:
    """Peak memory in use on the default device (GPU), when the backend reports it (not on CPU)."""
    import jax

    try:
        stats = jax.local_devices()[0].memory_stats()
    except Exception:  # a backend without memory statistics
        return None
    return stats["peak_bytes_in_use"] / 2**20 if stats and "peak_bytes_in_use" in stats else None


def worker(tool: str, n_rows: int, chains: int, warmup: int, draws: int, seed: int,
           dtype: str = "float64") -> dict[str, Any]:
    """One fit in this process; returns the measurements as a JSON-able dict."""
    df = make_data(n_rows)
    if tool == "handwritten":
        import jax
        from handwritten_scale import run_handwritten

        jax.config.update("jax_enable_x64", dtype == "float64")  # handwritten.py turns it on at import
        res = run_handwritten(df, chains=chains, warmup=warmup, draws=draws, seed=seed, dtype=dtype)
        out = {"compile_s": res["compile_s"], "sample_s": res["sample_s"], "total_s": res["total_s"],
               "divergences": res["divergences"], "steps": res["mean_steps"]}
        out.update(_stats(res["draws"]))
    else:
        import warnings

        import hdsl

        _, param, *rest = tool.split("-")
        adaptation = rest[0] if rest else "window"
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = hdsl.fit(SPEC, df, chains=chains, warmup=warmup, draws=draws, seed=seed, progress=False,
                           parameterization=param, adaptation=adaptation, dtype=dtype)
        total_s = time.perf_counter() - t0
        t = fit.timings
        post = fit.idata["posterior"]
        d = {ours: np.asarray(post[theirs].transpose("chain", "draw").values) for ours, theirs in HDSL_NAMES.items()}
        out = {"compile_s": t["compile_s"], "sample_s": t["warmup_s"] + t["sample_s"], "total_s": total_s,
               "divergences": int(np.asarray(fit.idata["sample_stats"]["diverging"]).sum()),
               "steps": float(np.asarray(fit.idata["sample_stats"]["n_steps"]).mean()),
               "centered": list(fit.model.centered), "warnings": [str(w.message) for w in caught]}
        out.update(_stats(d))
    out["peak_mib"] = _peak_mib()
    out["device_peak_mib"] = device_peak_mib()
    out["dtype"] = dtype
    return out


def run_in_subprocess(tool: str, n_rows: int, args: argparse.Namespace, warmup: int, draws: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", tool, "--rows", str(n_rows), "--chains", str(args.chains),
           "--warmup", str(warmup), "--draws", str(draws), "--seed", str(args.seed), "--dtype", args.dtype]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}"}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t0
    return res


def _per_size(value: str, n: int) -> list[int]:
    vals = [int(v) for v in str(value).split(",")]
    return vals + [vals[-1]] * (n - len(vals))


def grad_timings(labels: list[str], repeats: int, dtype: str = "float64") -> list[dict[str, Any]]:
    """One gradient evaluation: hdsl (auto and non-centered), hand-written, hand-written on per-group
    sufficient statistics; median of ``repeats`` calls after a warm-up call, alternating order."""
    import jax
    import jax.numpy as jnp
    from handwritten_scale import prepare

    import hdsl

    # handwritten.py turns x64 on at import; the hand-written float32 program needs it off (NumPyro's
    # corr_cholesky transform scatters onto default-dtype zeros: "lax.scatter requires ... the same dtypes")
    jax.config.update("jax_enable_x64", dtype == "float64")
    print(f"{'size':>5} {'rows':>8} {'groups':>6} {'hdsl-auto ms':>12} {'hdsl-nc ms':>10} {'hand ms':>8} "
          f"{'suffstat ms':>11}  ratios auto/hand nc/hand hand/suffstat", flush=True)
    rows: list[dict[str, Any]] = []
    for label in labels:
        n = parse_size(label)
        df = make_data(n)
        fns: dict[str, tuple[Any, jax.Array]] = {}
        for param in ("auto", "noncentered"):
            m = hdsl.Model(SPEC, df, parameterization=param, dtype=dtype)
            x0 = jax.random.uniform(jax.random.key(0), (m.dim,), jnp.dtype(dtype), -0.5, 0.5)
            fns[param] = (jax.jit(jax.grad(m.log_density)), x0)
        ld, dim = prepare(df, dtype)
        x0 = jax.random.uniform(jax.random.key(0), (dim,), jnp.dtype(dtype), -0.5, 0.5)
        fns["hand"] = (jax.jit(jax.grad(ld)), x0)
        fns["suffstat"] = (jax.jit(jax.grad(_suffstat_logdensity(df, dtype))), x0)
        for f, x in fns.values():
            jax.block_until_ready(f(x))
        times: dict[str, list[float]] = {k: [] for k in fns}
        for r in range(repeats):
            for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                f, x = fns[k]
                t0 = time.perf_counter()
                jax.block_until_ready(f(x))
                times[k].append(time.perf_counter() - t0)
        ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        rows.append({"size": label, "rows": n, "dtype": dtype, **{f"{k}_ms": v for k, v in ms.items()}})
        print(f"{label:>5} {n:>8} {n // 100:>6} {ms['auto']:>12.3f} {ms['noncentered']:>10.3f} {ms['hand']:>8.3f} "
              f"{ms['suffstat']:>11.3f}  {ms['auto'] / ms['hand']:>16.2f} {ms['noncentered'] / ms['hand']:>7.2f} "
              f"{ms['hand'] / ms['suffstat']:>13.1f}", flush=True)
    return rows


def _suffstat_logdensity(df, dtype: str = "float64"):
    """The hand-written model's log-density with the Gaussian likelihood summed per group from sufficient
    statistics (n_g, Σ z zᵀ, Σ z y, Σ y² with z = (1, x)): O(groups) per evaluation instead of O(rows)."""
    import jax.numpy as jnp
    import pandas as pd
    from handwritten_scale import _CORR, LKJ_ETA, _half_normal_lpdf, _normal_lpdf, nd

    codes, levels = pd.factorize(df["g"], sort=True)
    J = len(levels)
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    Z = np.stack([np.ones_like(x), x], axis=1)
    W = np.zeros((J, 2, 2))
    np.add.at(W, codes, Z[:, :, None] * Z[:, None, :])
    v = np.zeros((J, 2))
    np.add.at(v, codes, Z * y[:, None])
    W, v, syy, n = jnp.asarray(W, dtype=dtype), jnp.asarray(v, dtype=dtype), float(np.sum(y * y)), len(y)

    def logdensity(theta):
        b, log_sd, u_l, log_sigma = theta[0:2], theta[2:4], theta[4:5], theta[5]
        z = theta[6:].reshape(J, 2)
        sd, sigma = jnp.exp(log_sd), jnp.exp(log_sigma)
        L = _CORR(u_l)
        lp = jnp.sum(_normal_lpdf(b, 0.0, 5.0)) + jnp.sum(_half_normal_lpdf(sd, 2.0)) + _half_normal_lpdf(sigma, 2.0)
        lp += jnp.sum(log_sd) + log_sigma
        lp += nd.LKJCholesky(2, LKJ_ETA).log_prob(L) + _CORR.log_abs_det_jacobian(u_l, L)
        lp += jnp.sum(_normal_lpdf(z, 0.0, 1.0))
        c = b + (z @ L.T) * sd  # (J, 2) per-group coefficients
        ss = syy - 2.0 * jnp.sum(c * v) + jnp.einsum("ja,jab,jb->", c, W, c)
        return lp - 0.5 * ss / sigma**2 - n * log_sigma - 0.5 * n * float(np.log(2 * np.pi))

    return logdensity


CACHE_FIT = """
import sys, time
t0 = time.perf_counter()
import pandas as pd, hdsl
sys.path.insert(0, {here!r})
from seed import SPEC
df = pd.read_csv({data!r})
fit = hdsl.fit(SPEC, df, chains=4, warmup={warmup}, draws={draws}, seed=1, progress=False)
print(time.perf_counter() - t0, fit.timings["compile_s"])
"""


def cache_startup(warmup: int, draws: int) -> None:
    """Seed model (imm10) in fresh processes: two without the cache, two with a new cache directory (the
    first fills it, the second reads it). Process wall time includes imports, compile and sampling."""
    import tempfile

    from handwritten import DEFAULT_DATA

    code = CACHE_FIT.format(here=str(HERE), data=str(DEFAULT_DATA.resolve()), warmup=warmup, draws=draws)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("no cache", "cache"):
            env = {k: v for k, v in os.environ.items() if k != "HDSL_CACHE_DIR"}
            env["PYTHONPATH"] = str(REPO_ROOT)
            if label == "cache":
                env["HDSL_CACHE_DIR"] = str(Path(tmp) / "jax")
            for i in (1, 2):
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    sys.exit(proc.stderr[-2000:])
                in_proc, compile_s = (float(v) for v in proc.stdout.split()[-2:])
                rows.append((label, i, wall, in_proc, compile_s))
        n_files = sum(1 for p in (Path(tmp) / "jax").rglob("*") if p.is_file())
    print(f"seed model, chains=4 warmup={warmup} draws={draws}; cache entries written: {n_files}")
    print(f"{'run':<12} {'process s':>9} {'import+fit s':>12} {'compile s':>9}")
    for label, i, wall, in_proc, compile_s in rows:
        print(f"{label + ' #' + str(i):<12} {wall:>9.2f} {in_proc:>12.2f} {compile_s:>9.2f}")
    second = {label: (wall, compile_s) for label, i, wall, _, compile_s in rows if i == 2}
    print(f"second process, cache / no cache: process time {second['cache'][0] / second['no cache'][0]:.2f}, "
          f"compile {second['cache'][1] / second['no cache'][1]:.3f}")


def _fmt(v: Any, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1M")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", default="1000", help="one value, or one per size (comma-separated)")
    parser.add_argument("--draws", default="1000", help="one value, or one per size (comma-separated)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parameterization", default="auto", help="hdsl runs: auto, noncentered or both")
    parser.add_argument("--adaptation", default="window",
                        help="hdsl runs: window (hdsl's warmup), stan (Stan's exactly) or both; tools named "
                             "hdsl-<parameterization>[-stan]")
    parser.add_argument("--timeout", type=float, default=480.0, help="seconds per fit")
    parser.add_argument("--tools", default="handwritten,hdsl", help="which programs to run")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "float64"),
                        help="precision of both tools; auto: hdsl's default (float64 on CPU, float32 on GPU)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--grad", action="store_true", help="time one gradient evaluation instead")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cache-startup", action="store_true",
                        help="time fresh processes fitting the seed model with and without hdsl's compilation cache")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    # fits run in subprocesses that share one GPU with this process: no process takes 75% of it up front
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.worker:
        if args.dtype == "auto":
            import hdsl

            args.dtype = hdsl.default_dtype()
        res = worker(args.worker, args.rows, args.chains, int(args.warmup), int(args.draws), args.seed,
                     args.dtype)
        print(json.dumps(res))
        return

    import jax

    if args.dtype == "auto":
        import hdsl

        args.dtype = hdsl.default_dtype()
    jax.config.update("jax_enable_x64", args.dtype == "float64")
    labels = args.sizes.split(",")
    print(f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"machine   {platform.platform()}, {os.cpu_count()} CPUs; jax {jax.__version__} "
          f"backend={jax.default_backend()} devices={[d.device_kind for d in jax.devices()]} dtype={args.dtype}",
          flush=True)
    if args.grad:
        rows = grad_timings(labels, args.repeats, args.dtype)
        if args.json:
            Path(args.json).write_text(json.dumps({"grad": rows}, indent=1))
        return
    if args.cache_startup:
        cache_startup(int(args.warmup), int(args.draws))
        return
    warmups, drawss = _per_size(args.warmup, len(labels)), _per_size(args.draws, len(labels))
    tools = ["handwritten"] + [f"hdsl-{p}" + ("" if a == "window" else f"-{a}")
                               for p in args.parameterization.split(",") for a in args.adaptation.split(",")]
    tools = [t for t in tools if t.split("-")[0] in args.tools.split(",")]
    print(f"settings  chains={args.chains} seed={args.seed} timeout={args.timeout:.0f}s per fit")
    head = (f"{'size':>5} {'warm/draw':>9} {'tool':<16} {'compile s':>9} {'sample s':>9} {'total s':>8} "
            f"{'min ESS':>8} {'ESS/s':>7} {'max R^':>7} {'div':>4} {'peak MiB':>8} {'leapfrog':>8}")
    print(head)
    print("-" * len(head), flush=True)
    results: dict[tuple[str, str], dict] = {}
    for i, label in enumerate(labels):
        n = parse_size(label)
        for tool in tools if i % 2 == 0 else tools[::-1]:
            r = run_in_subprocess(tool, n, args, warmups[i], drawss[i])
            results[(label, tool)] = r
            wd = f"{warmups[i]}/{drawss[i]}"
            if "error" not in r:
                r["ess_s"] = r["min_ess"] / r["sample_s"]
            if args.json:
                Path(args.json).write_text(json.dumps(
                    [{"size": k[0], "tool": k[1], "warmup": warmups[labels.index(k[0])],
                      "draws": drawss[labels.index(k[0])], **v} for k, v in results.items()], indent=1))
            if "error" in r:
                print(f"{label:>5} {wd:>9} {tool:<16} {r['error']}", flush=True)
                continue
            print(f"{label:>5} {wd:>9} {tool:<16} {r['compile_s']:>9.2f} {r['sample_s']:>9.1f} {r['total_s']:>8.1f} "
                  f"{r['min_ess']:>8.0f} {r['ess_s']:>7.2f} {r['max_rhat']:>7.3f} {r['divergences']:>4d} "
                  f"{r['peak_mib']:>8.0f} {r.get('steps', float('nan')):>8.1f}", flush=True)
    print()
    print("ratios hdsl / handwritten (compile, sampling s, total s, ESS/s, peak memory, mean leapfrog steps)")
    for label in labels:
        hand = results.get((label, "handwritten"), {})
        for tool in tools[1:]:
            h = results.get((label, tool), {})
            if "error" in h or "error" in hand or not h or not hand:
                continue
            print(f"{label:>5} {tool:<16} compile {h['compile_s'] / hand['compile_s']:.2f}  "
                  f"sampling {h['sample_s'] / hand['sample_s']:.2f}  total {h['total_s'] / hand['total_s']:.2f}  "
                  f"ESS/s {h['ess_s'] / hand['ess_s']:.2f}  memory {h['peak_mib'] / hand['peak_mib']:.2f}  "
                  f"leapfrog {h['steps'] / hand['steps']:.2f}  "
                  f"(centered={h.get('centered')})")
    stan_pairs = [(t, f"{t}-stan") for t in tools[1:] if f"{t}-stan" in tools]
    if stan_pairs:
        print()
        print("ratios hdsl's warmup / Stan's (hdsl-<p> / hdsl-<p>-stan): sampling s, ESS/s, mean leapfrog steps")
        for label in labels:
            for ours, theirs in stan_pairs:
                h, st = results.get((label, ours), {}), results.get((label, theirs), {})
                if "error" in h or "error" in st or not h or not st:
                    continue
                print(f"{label:>5} {ours:<16} sampling {h['sample_s'] / st['sample_s']:.2f}  "
                      f"ESS/s {h['ess_s'] / st['ess_s']:.2f}  leapfrog {h['steps'] / st['steps']:.2f}")
    print()
    print("posterior means (truth b0=1, b1=0.5, sd0=1, sd1=0.5, cor=0.3, sigma=1)")
    for (label, tool), r in results.items():
        if "means" in r:
            print(f"{label:>5} {tool:<16} " + " ".join(f"{k}={v:.3f}" for k, v in r["means"].items()))
    if any(r.get("device_peak_mib") for r in results.values()):
        print()
        print("device peak memory (MiB, peak_bytes_in_use of the fit's process)")
        for (label, tool), r in results.items():
            if r.get("device_peak_mib"):
                print(f"{label:>5} {tool:<16} {r['device_peak_mib']:.0f}")
    for (label, tool), r in results.items():
        for w in r.get("warnings", []):
            print(f"warning {label} {tool}: {w}")


if __name__ == "__main__":
    main()
