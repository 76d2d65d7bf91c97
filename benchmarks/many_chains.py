"""Many chains with a short warmup: window adaptation + NUTS from random or Pathfinder starts, and ChEES +
jittered dynamic HMC from Pathfinder starts, for 4 to hundreds of chains.

Models: the seed article's model on imm10 (``examples/seed.hdsl``) and the scale model
``y ~ x + (1 + x | g)`` at 10k rows / 100 groups (``make_scale_data.py``). One model object per model,
all fits in this process (one after another, same seed), so ratios against window+random at the same
number of chains are like for like. Reported per fit: compile s (all programs, including Pathfinder's),
run s (Pathfinder + warmup + sampling), min bulk ESS and max r_hat over the population-level, sd, cor and
family parameters, min ESS per run second, divergences, then ESS/s and run-time ratios against
window+random.

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/many_chains.py \
        --chains 4,64,256 --scale-chains 4,64 --warmup 200 --draws 200
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(HERE))

from make_scale_data import make_data  # noqa: E402
from scale import SPEC as SCALE_SPEC  # noqa: E402

SEED_SPEC = (REPO_ROOT / "examples" / "seed.hdsl").read_text()
IMM10 = Path(os.environ.get("HDSL_IMM10", REPO_ROOT.parent / "shared/data/imm10/imm10.csv"))
CONFIGS = "window+random,window+pathfinder,chees+pathfinder"  # the first is the reference of the ratios


def one_fit(model, chains: int, warmup: int, draws: int, seed: int, adaptation: str, init: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        fit = model.sample(chains=chains, warmup=warmup, draws=draws, seed=seed, progress=False,
                           adaptation=adaptation, init=init)
        total = time.perf_counter() - t0
    t = fit.timings
    s = fit.summary().loc[model.parameter_names]
    run_s = t.get("pathfinder_s", 0.0) + t["warmup_s"] + t["sample_s"]
    ess = float(s["ess_bulk"].min())
    return {"compile_s": t["compile_s"], "run_s": run_s, "total_s": total, "min_ess": ess, "ess_per_s": ess / run_s,
            "max_rhat": float(s["r_hat"].max()),
            "divergences": int(np.asarray(fit.idata["sample_stats"]["diverging"]).sum()),
            "steps": float(np.asarray(fit.idata["sample_stats"]["n_steps"]).mean())}


def run_model(name: str, model, chain_counts: list[int], args: argparse.Namespace) -> list[dict]:
    rows = []
    configs = [tuple(c.split("+")) for c in args.configs.split(",")]
    for chains in chain_counts:
        base = None
        for adaptation, init in configs:
            r = one_fit(model, chains, args.warmup, args.draws, args.seed, adaptation, init)
            r.update(model=name, chains=chains, method=f"{adaptation}+{init}")
            base = base or r
            r["ess_s_ratio"] = r["ess_per_s"] / base["ess_per_s"]
            r["run_ratio"] = r["run_s"] / base["run_s"]
            rows.append(r)
            print(f"| {name} | {chains} | {r['method']} | {r['compile_s']:.1f} | {r['run_s']:.2f} | "
                  f"{r['min_ess']:.0f} | {r['ess_per_s']:.0f} | {r['max_rhat']:.3f} | {r['divergences']} | "
                  f"{r['steps']:.1f} | {r['run_ratio']:.2f}× | {r['ess_s_ratio']:.2f}× |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", default="4,64,256", help="chain counts for the seed model")
    parser.add_argument("--scale-chains", default="4,64", help="chain counts for the 10k-row scale model")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", default="seed,scale")
    parser.add_argument("--configs", default=CONFIGS, help="adaptation+init pairs; ratios against the first")
    args = parser.parse_args()

    import jax

    import hdsl

    print(f"# many_chains.py {datetime.date.today()} on {platform.node()} ({platform.machine()}, "
          f"{os.cpu_count()} CPUs, {jax.devices()[0].platform}); warmup {args.warmup}, draws {args.draws}, "
          f"seed {args.seed}")
    print("| model | chains | method | compile s | run s | min bulk ESS | ESS/s | max r_hat | divergences | "
          "mean leapfrog steps | run s ratio | ESS/s ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    models = args.models.split(",")
    if "seed" in models:
        run_model("seed (imm10)", hdsl.Model(SEED_SPEC, pd.read_csv(IMM10)),
                  [int(c) for c in args.chains.split(",")], args)
    if "scale" in models:
        run_model("scale 10k", hdsl.Model(SCALE_SPEC, make_data(10_000)),
                  [int(c) for c in args.scale_chains.split(",")], args)


if __name__ == "__main__":
    main()
