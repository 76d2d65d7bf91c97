"""GPU checks of hdsl that ``gpu_check.sh`` runs on the device machine (and, with tiny sizes, on a CPU).

Three modes, each writing a JSON file for the summary:

- ``correctness``: hdsl's log-density and gradient on the accelerator (float32, hdsl's default there, and
  float64) against the CPU in float64, at ``--points`` random unconstrained points (half uniform(-2, 2) as
  Stan's starting points, half uniform(-0.5, 0.5)), for the seed model (``examples/seed.hdsl``) on a synthetic
  imm10-shaped data set (``make_imm10_like``: the real data is not on the device) and the scale model
  ``y ~ x + (1 + x | g)`` (``make_scale_data.py``). Each model in three variants: hdsl's choice (``auto``:
  centered here, likelihood from per-level sufficient statistics), the same with the row-wise likelihood
  (the ``suff`` entry removed from the data: the gather/scatter path), and non-centered row-wise. CPU
  float32 is also compared, as the error float32 itself costs. float32 runs first with ``jax_enable_x64``
  off (as on a fresh GPU process), then x64 is turned on for float64.
- ``chains``: many chains (``--chains 4,1000``) of the scale 10k model and the seed-shaped model, window
  adaptation, short warmup: compile s, run s, min bulk ESS and max r_hat over the population, sd, cor and
  sigma parameters, ESS/s, divergences, mean leapfrog steps, device peak memory, and ratios against the first
  chain count (same model object, same process, same device).
- ``summary``: merges the JSON files of a run (``scale.py --json`` output as ``scale_hdsl.json`` and
  ``scale_hand.json``) and ``gpu_check.sh``'s step table into ``summary.md`` and ``results.json``.

    PYTHONPATH=. python3 benchmarks/gpu_bench.py correctness --scale-sizes 10k,1M --json /tmp/c.json
    PYTHONPATH=. python3 benchmarks/gpu_bench.py chains --chains 4,1000 --warmup 200 --draws 200 --json /tmp/m.json
    python3 benchmarks/gpu_bench.py summary --dir /tmp/gpu_json --out "$OUT"
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(HERE))

from make_scale_data import make_data, parse_size  # noqa: E402

SEED_SPEC = (REPO_ROOT / "examples" / "seed.hdsl").read_text()
# imm10's schools and their sizes (../shared/data/imm10/SOURCE.md) and its homework distribution
IMM10_SCHOOLS = {7472: 23, 7829: 20, 7930: 24, 24725: 22, 25456: 22, 25642: 20, 62821: 67, 68448: 21, 68493: 21,
                 72292: 20}
IMM10_HOMEWORK = {0: 27, 1: 105, 2: 48, 3: 27, 4: 25, 5: 25, 6: 2, 7: 1}


def make_imm10_like(seed: int = 20261203) -> pd.DataFrame:
    """260 students in imm10's 10 schools (same sizes), columns ``schid, homework, math``: homework drawn from
    imm10's distribution (0-7 hours), math = a_j + b_j homework + N(0, 6.56) rounded, with (a_j, b_j) drawn
    around lme4's fit of the real data (44.77, 2.04; sds 8.33, 4.74; correlation -0.81)."""
    rng = np.random.default_rng(seed)
    sd, cor = np.array([8.33, 4.74]), -0.81
    cov = np.outer(sd, sd) * np.array([[1.0, cor], [cor, 1.0]])
    ab = rng.multivariate_normal([44.77, 2.04], cov, size=len(IMM10_SCHOOLS))
    schid = np.repeat(list(IMM10_SCHOOLS), list(IMM10_SCHOOLS.values()))
    j = np.repeat(np.arange(len(IMM10_SCHOOLS)), list(IMM10_SCHOOLS.values()))
    p = np.array(list(IMM10_HOMEWORK.values()), dtype=float)
    homework = rng.choice(list(IMM10_HOMEWORK), size=len(schid), p=p / p.sum())
    math = np.round(ab[j, 0] + ab[j, 1] * homework + 6.56 * rng.standard_normal(len(schid)))
    return pd.DataFrame({"schid": schid, "homework": homework, "math": math})


def _scale_spec() -> str:
    from scale import SPEC

    return SPEC


def _header(mode: str) -> dict[str, Any]:
    import jax

    info = {"mode": mode, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
            "jax": jax.__version__, "backend": jax.default_backend(),
            "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()]}
    print(f"# gpu_bench.py {mode}: {info['date']} on {info['machine']}; python {info['python']}, jax {info['jax']}, "
          f"backend {info['backend']}, devices {info['devices']}", flush=True)
    return info


def _write(path: str | None, obj: Any) -> None:
    if path:
        Path(path).write_text(json.dumps(obj, indent=1, default=str))


# ---------------------------------------------------------------------------------------------- correctness

VARIANTS = (("auto", True), ("auto", False), ("noncentered", False))
"""(parameterization, sufficient statistics kept); without them the likelihood is summed over rows."""


def _cases(scale_sizes: list[str]) -> list[tuple[str, str, pd.DataFrame]]:
    cases = [("seed (imm10-like, 260 rows)", SEED_SPEC, make_imm10_like())]
    spec = _scale_spec()
    for label in scale_sizes:
        cases.append((f"scale {label}", spec, make_data(parse_size(label))))
    return cases


def _evaluator(model, keep_suff: bool, device):
    """``points (n, dim) -> (log-density (n,), gradient (n, dim))`` on ``device``: one compiled program,
    ``lax.map`` over the points (no n-fold memory at 1M rows)."""
    import functools

    import jax

    from hdsl.model.density import log_density

    data = model.lowered.data if keep_suff else model.lowered.data._replace(suff=None)
    data = jax.device_put(data, device)
    vg = jax.value_and_grad(functools.partial(log_density, model.lowered))
    fn = jax.jit(lambda pts, d: jax.lax.map(lambda x: vg(x, d), pts))

    def run(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pts = jax.device_put(np.asarray(points, dtype=model.dtype), device)
        lp, g = jax.block_until_ready(fn(pts, data))
        assert lp.dtype == np.dtype(model.dtype) and g.dtype == np.dtype(model.dtype), (lp.dtype, g.dtype)
        return np.asarray(lp, dtype=np.float64), np.asarray(g, dtype=np.float64)

    return run


def _errors(got: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """Max over points of |Δ log-density| / max(|ref|, 1) and of max_i |Δ grad_i| / max(max_i |ref grad_i|, 1);
    also the count of non-finite values."""
    (lp, g), (lp_r, g_r) = got, ref
    lp_err = np.abs(lp - lp_r) / np.maximum(np.abs(lp_r), 1.0)
    g_err = np.max(np.abs(g - g_r), axis=1) / np.maximum(np.max(np.abs(g_r), axis=1), 1.0)
    return {"lp_rel": float(np.max(lp_err)), "grad_rel": float(np.max(g_err)),
            "nonfinite": int((~np.isfinite(lp)).sum() + (~np.isfinite(g)).sum())}


def correctness(args: argparse.Namespace) -> None:
    import jax

    import hdsl

    info = _header("correctness")
    accel, cpu = jax.devices()[0], jax.devices("cpu")[0]
    print(f"accelerator {accel} against cpu {cpu}; {args.points} points", flush=True)
    cases = _cases(args.scale_sizes.split(",") if args.scale_sizes else [])
    out: dict[str, Any] = {"info": info, "points": args.points, "rows": []}
    points: dict[str, np.ndarray] = {}
    t_all = time.perf_counter()
    head = (f"{'model':<28} {'variant':<18} {'dim':>6} {'centered':>8}  {'acc f64 lp':>10} {'acc f64 grad':>12}  "
            f"{'acc f32 lp':>10} {'acc f32 grad':>12}  {'cpu f32 lp':>10} {'cpu f32 grad':>12}  verdict")
    print("relative errors against CPU float64 (max over points; grad: max |Δ| / max |grad| per point)")
    print(head)
    print("-" * len(head), flush=True)
    for name, spec, df in cases:  # case by case, so that a time limit keeps the finished cases
        t0 = time.perf_counter()
        # float32 with x64 off (hdsl's default on a GPU, in a fresh process), then float64
        jax.config.update("jax_enable_x64", False)
        f32 = {}
        for param, keep in VARIANTS:
            model = hdsl.Model(spec, df, dtype="float32", parameterization=param)
            if keep and model.lowered.data.suff is None:
                print(f"note: {name}: no sufficient statistics in this model", flush=True)
            if name not in points:
                rng = np.random.default_rng(7)
                half = args.points // 2
                pts = np.concatenate([rng.uniform(-2, 2, (half, model.dim)),
                                      rng.uniform(-0.5, 0.5, (args.points - half, model.dim))])
                points[name] = pts.astype(np.float32).astype(np.float64)  # exact in both precisions
            f32[(param, keep)] = (model.dim, list(model.centered), _evaluator(model, keep, accel)(points[name]),
                                  _evaluator(model, keep, cpu)(points[name]))
        jax.config.update("jax_enable_x64", True)
        for param, keep in VARIANTS:
            model = hdsl.Model(spec, df, dtype="float64", parameterization=param)
            ref = _evaluator(model, keep, cpu)(points[name])
            acc64 = _evaluator(model, keep, accel)(points[name])
            dim, centered, acc32, cpu32 = f32[(param, keep)]
            e64, e32, c32 = _errors(acc64, ref), _errors(acc32, ref), _errors(cpu32, ref)
            ok64 = e64["lp_rel"] < 1e-9 and e64["grad_rel"] < 1e-9 and not e64["nonfinite"]
            # float32 on the accelerator: at most 10 times float32's own error on the CPU (plus 1e-5 of slack)
            ok32 = (e32["lp_rel"] <= 10 * c32["lp_rel"] + 1e-5 and e32["grad_rel"] <= 10 * c32["grad_rel"] + 1e-5
                    and not e32["nonfinite"])
            verdict = "ok" if ok64 and ok32 else "CHECK"
            variant = f"{param}-{'suffstat' if keep else 'rows'}"
            out["rows"].append({"model": name, "variant": variant, "dim": dim, "centered": centered,
                                "accel_f64": e64, "accel_f32": e32, "cpu_f32": c32, "verdict": verdict})
            print(f"{name:<28} {variant:<18} {dim:>6} {str(centered[0]):>8}  {e64['lp_rel']:>10.1e} "
                  f"{e64['grad_rel']:>12.1e}  {e32['lp_rel']:>10.1e} {e32['grad_rel']:>12.1e}  {c32['lp_rel']:>10.1e} "
                  f"{c32['grad_rel']:>12.1e}  {verdict}", flush=True)
        out.setdefault("case_seconds", {})[name] = time.perf_counter() - t0
        _write(args.json, out)
    out["seconds"] = time.perf_counter() - t_all
    out["all_ok"] = all(r["verdict"] == "ok" for r in out["rows"])
    _write(args.json, out)
    print(f"\n{'all ok' if out['all_ok'] else 'SOME CHECKS FAILED'}; {out['seconds']:.0f} s", flush=True)


# ---------------------------------------------------------------------------------------------- many chains

def one_fit(model, chains: int, warmup: int, draws: int, seed: int) -> dict[str, Any]:
    import arviz_stats
    from scale import device_peak_mib

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        fit = model.sample(chains=chains, warmup=warmup, draws=draws, seed=seed, progress=False)
        total = time.perf_counter() - t0
    t = fit.timings
    t0 = time.perf_counter()
    post = fit.idata["posterior"]
    arrays = {n: np.asarray(post[n].transpose("chain", "draw", ...).values) for n in model.parameter_names}
    ess = {n: float(np.min(arviz_stats.ess(a, method="bulk"))) for n, a in arrays.items()}
    rhat = {n: float(np.max(arviz_stats.rhat(a))) for n, a in arrays.items()}
    diag_s = time.perf_counter() - t0
    run_s = t["warmup_s"] + t["sample_s"]
    min_ess = min(ess.values())
    return {"chains": chains, "warmup": warmup, "draws": draws, "compile_s": t["compile_s"],
            "warmup_s": t["warmup_s"], "sample_s": t["sample_s"], "run_s": run_s, "fit_total_s": total,
            "diagnostics_s": diag_s, "min_ess": min_ess, "worst_ess_param": min(ess, key=ess.get),
            "ess_per_s": min_ess / run_s, "ess_per_chain": min_ess / chains, "max_rhat": max(rhat.values()),
            "divergences": int(np.asarray(fit.idata["sample_stats"]["diverging"]).sum()),
            "steps": float(np.asarray(fit.idata["sample_stats"]["n_steps"]).mean()),
            "device_peak_mib": device_peak_mib(), "warnings": [str(w.message)[:200] for w in caught],
            "means": {n: float(a.mean()) for n, a in arrays.items()}}


def chains(args: argparse.Namespace) -> None:
    import jax

    import hdsl

    info = _header("chains")
    counts = [int(c) for c in args.chains.split(",")]
    out: dict[str, Any] = {"info": info, "rows": []}
    models = {"scale": lambda: ("scale 10k", _scale_spec(), make_data(parse_size(args.scale_size))),
              "seed": lambda: ("seed (imm10-like)", SEED_SPEC, make_imm10_like())}
    print(f"window adaptation, random inits; warmup {args.warmup}, draws {args.draws}, seed {args.seed}; "
          f"dtype {hdsl.default_dtype()} on {jax.devices()[0]}; ratios against {counts[0]} chains")
    print("| model | chains | compile s | run s | min bulk ESS | ESS/s | ESS/chain | max r_hat | divergences | "
          "mean leapfrog | dev peak MiB | run s ratio | ESS/s ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for key in args.models.split(","):
        name, spec, df = models[key]()
        if key == "scale" and args.scale_size != "10k":
            name = f"scale {args.scale_size}"
        model = hdsl.Model(spec, df)
        base = None
        for n in counts:
            try:
                r = one_fit(model, n, args.warmup, args.draws, args.seed)
            except Exception as exc:  # keep going: the next model or chain count may work
                print(f"| {name} | {n} | failed: {type(exc).__name__}: {str(exc)[:300]} |", flush=True)
                out["rows"].append({"model": name, "chains": n, "error": f"{type(exc).__name__}: {exc}"[:1000]})
                _write(args.json, out)
                continue
            r["model"] = name
            r["dtype"] = model.dtype
            base = base or r
            r["run_ratio"] = r["run_s"] / base["run_s"]
            r["ess_s_ratio"] = r["ess_per_s"] / base["ess_per_s"]
            out["rows"].append(r)
            _write(args.json, out)
            peak = "-" if r["device_peak_mib"] is None else f"{r['device_peak_mib']:.0f}"
            print(f"| {name} | {n} | {r['compile_s']:.1f} | {r['run_s']:.2f} | {r['min_ess']:.0f} | "
                  f"{r['ess_per_s']:.0f} | {r['ess_per_chain']:.1f} | {r['max_rhat']:.3f} | {r['divergences']} | "
                  f"{r['steps']:.1f} | {peak} | {r['run_ratio']:.2f}× | {r['ess_s_ratio']:.2f}× |", flush=True)
    print("\nposterior means")
    for r in out["rows"]:
        if "means" in r:
            print(f"  {r['model']:<18} {r['chains']:>5} " + " ".join(f"{k}={v:.3f}" for k, v in r["means"].items()))
    for r in out["rows"]:
        for w in r.get("warnings", []):
            print(f"warning {r['model']} {r['chains']} chains: {w}")


# ---------------------------------------------------------------------------------------------- summary

def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summary(args: argparse.Namespace) -> None:
    """summary.md and results.json from the step table and the JSON files in ``--dir``."""
    src, dst = Path(args.dir), Path(args.out)
    steps = []
    if (src / "steps.tsv").exists():
        for line in (src / "steps.tsv").read_text().splitlines():
            name, rc, secs, limit = (line.split("\t") + ["", "", "", ""])[:4]
            steps.append({"step": name, "rc": rc, "seconds": secs, "limit_s": limit})
    data = {k: _load(src / f"{k}.json") for k in ("env", "correctness", "grad", "chains")}
    scale_rows = (_load(src / "scale_hdsl.json") or []) + (_load(src / "scale_hand.json") or [])
    data["scale"] = sorted(scale_rows, key=lambda r: (parse_size(r["size"]), r["tool"]))
    data["steps"] = steps
    (dst / "results.json").write_text(json.dumps(data, indent=1, default=str))

    md = [f"# hdsl GPU check ({'CPU smoke run' if args.smoke else 'device run'})", ""]
    env = data["env"] or {}
    if env:
        md += [f"- date {env.get('date')}; {env.get('machine')}", f"- python {env.get('python')}, "
               f"jax {env.get('jax')}, devices {env.get('devices')}", f"- packages: {env.get('packages')}", ""]
    md += ["## Steps", "", "| step | exit | seconds | limit s |", "|---|---|---|---|"]
    md += [f"| {s['step']} | {s['rc']}{' (timed out)' if s['rc'] in ('124', '137') else ''} | {s['seconds']} | "
           f"{s['limit_s']} |" for s in steps]
    c = data["correctness"]
    md += ["", "## Correctness (relative errors against CPU float64, max over points)", ""]
    if c and c.get("rows"):
        md += ["| model | variant | accel f64 lp | accel f64 grad | accel f32 lp | accel f32 grad | cpu f32 lp | "
               "cpu f32 grad | verdict |", "|---|---|---|---|---|---|---|---|---|"]
        for r in c["rows"]:
            md.append(f"| {r['model']} | {r['variant']} | {r['accel_f64']['lp_rel']:.1e} | "
                      f"{r['accel_f64']['grad_rel']:.1e} | {r['accel_f32']['lp_rel']:.1e} | "
                      f"{r['accel_f32']['grad_rel']:.1e} | {r['cpu_f32']['lp_rel']:.1e} | "
                      f"{r['cpu_f32']['grad_rel']:.1e} | {r['verdict']} |")
        md.append(f"\n{'all ok' if c.get('all_ok') else 'not all ok (or unfinished)'}")
    else:
        md.append("no result (see correctness.log)")
    md += ["", "## Scale table (`scale.py`, 4 chains)", ""]
    sc = data["scale"]
    if sc:
        md += ["| size | warm/draw | tool | dtype | compile s | sample s | total s | min ESS | ESS/s | max r_hat | "
               "div | leapfrog | host peak MiB | device peak MiB |", "|---" * 14 + "|"]
        for r in sc:
            wd = f"{r.get('warmup')}/{r.get('draws')}"
            if "error" in r:
                md.append(f"| {r['size']} | {wd} | {r['tool']} | | {r['error']} |||||||||")
                continue
            dev = r.get("device_peak_mib")
            md.append(f"| {r['size']} | {wd} | {r['tool']} | {r.get('dtype')} | {r['compile_s']:.2f} | "
                      f"{r['sample_s']:.1f} | {r['total_s']:.1f} | {r['min_ess']:.0f} | {r['ess_s']:.2f} | "
                      f"{r['max_rhat']:.3f} | {r['divergences']} | {r['steps']:.1f} | {r['peak_mib']:.0f} | "
                      f"{'-' if dev is None else f'{dev:.0f}'} |")
        by = {(r["size"], r["tool"]): r for r in sc if "error" not in r}
        ratios = [f"- {size}: hdsl-auto / handwritten: sampling s {h['sample_s'] / hw['sample_s']:.2f}, total s "
                  f"{h['total_s'] / hw['total_s']:.2f}, ESS/s {h['ess_s'] / hw['ess_s']:.1f}"
                  for (size, tool), h in by.items() if tool == "hdsl-auto" and (hw := by.get((size, "handwritten")))]
        md += [""] + (ratios or ["(no size with both tools finished)"])
    else:
        md.append("no result (see scale.log)")
    g = (data["grad"] or {}).get("grad")
    md += ["", "## One gradient (`scale.py --grad`, median ms)", ""]
    if g:
        md += ["| size | dtype | hdsl-auto | hdsl-nc | hand | suffstat |", "|---|---|---|---|---|---|"]
        md += [f"| {r['size']} | {r['dtype']} | {r['auto_ms']:.3f} | {r['noncentered_ms']:.3f} | {r['hand_ms']:.3f} | "
               f"{r['suffstat_ms']:.3f} |" for r in g]
    else:
        md.append("no result (see scale.log)")
    ch = data["chains"]
    md += ["", "## Many chains (`gpu_bench.py chains`)", ""]
    if ch and ch.get("rows"):
        md += ["| model | chains | compile s | run s | min ESS | ESS/s | max r_hat | div | leapfrog | run ratio | "
               "ESS/s ratio |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in ch["rows"]:
            if "error" in r:
                md.append(f"| {r['model']} | {r['chains']} | {r['error'][:120]} |||||||||")
                continue
            md.append(f"| {r['model']} | {r['chains']} | {r['compile_s']:.1f} | {r['run_s']:.2f} | "
                      f"{r['min_ess']:.0f} | {r['ess_per_s']:.0f} | {r['max_rhat']:.3f} | {r['divergences']} | "
                      f"{r['steps']:.1f} | {r['run_ratio']:.2f} | {r['ess_s_ratio']:.2f} |")
    else:
        md.append("no result (see chains.log)")
    (dst / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("correctness")
    p.add_argument("--points", type=int, default=20)
    p.add_argument("--scale-sizes", default="10k,1M", help="scale model sizes ('' for the seed model only)")
    p.add_argument("--json", default=None)
    p = sub.add_parser("chains")
    p.add_argument("--chains", default="4,1000", help="chain counts; ratios against the first")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--models", default="scale,seed")
    p.add_argument("--scale-size", default="10k")
    p.add_argument("--json", default=None)
    p = sub.add_parser("summary")
    p.add_argument("--dir", required=True, help="folder with steps.tsv and the JSON files")
    p.add_argument("--out", required=True)
    p.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    {"correctness": correctness, "chains": chains, "summary": summary}[args.mode](args)


if __name__ == "__main__":
    main()
