"""Seed benchmark: hdsl against a hand-written BlackJAX program, same model, data and settings.

Both run in one process so they share the machine state; with ``--repeat > 1`` the order alternates so
that neither always pays the cold start (JAX backend initialisation, imports) first. The table reports
compile, warmup+sampling and total seconds, the minimum bulk ESS over the five population-level
parameters and ESS per total second, then the hdsl/handwritten ratios. For hdsl the total is the wall
time of the whole ``hdsl.fit`` call (parse, bind, compile, sample), the cost a user actually pays.

    cd /work/main && /work/venv/bin/python benchmarks/seed.py [--only handwritten|hdsl] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the hdsl checkout, whether or not it is installed
sys.path.insert(0, str(Path(__file__).resolve().parent))

import arviz_stats  # noqa: E402
import jax  # noqa: E402
from handwritten import DEFAULT_DATA, PARAMS, run_handwritten  # noqa: E402

SPEC = (REPO_ROOT / "examples" / "seed.hdsl").read_text()

HDSL_NAMES: dict[str, str] = {
    "mu_a": "b_Intercept",
    "mu_b": "b_homework",
    "sd_a": "sd_schid__Intercept",
    "sd_b": "sd_schid__homework",
    "sigma": "sigma",
}
"""Hand-written parameter name -> hdsl posterior variable name."""

REFERENCE: dict[str, tuple[float, float]] = {
    "mu_a": (44.8, 3.2),
    "mu_b": (1.98, 1.62),
    "sd_a": (9.30, 2.79),
    "sd_b": (4.79, 1.27),
    "sigma": (6.60, 0.30),
}
"""brms posterior mean and sd, to catch a fast but wrong sampler."""


@dataclass
class Run:
    """One fit's measurements; ``compile_s``/``sample_s`` are None when the tool does not report them."""

    tool: str
    compile_s: float | None
    sample_s: float | None
    total_s: float
    draws: dict[str, np.ndarray]  # hand-written names -> (chain, draw)
    divergences: int | None

    @property
    def min_ess(self) -> float:
        return min(float(arviz_stats.ess(d, method="bulk")) for d in self.draws.values())

    @property
    def max_rhat(self) -> float:
        return max(float(arviz_stats.rhat(d)) for d in self.draws.values())

    @property
    def ess_per_s(self) -> float:
        return self.min_ess / self.total_s


def run_hand(df: pd.DataFrame, args: argparse.Namespace) -> Run:
    res = run_handwritten(df, chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed)
    return Run(
        "handwritten", res["compile_s"], res["sample_s"], res["total_s"], res["draws"], res["divergences"]
    )


def run_hdsl(df: pd.DataFrame, args: argparse.Namespace, parameterization: str = "auto") -> Run:
    import hdsl

    if not hasattr(hdsl, "fit"):
        sys.exit("hdsl.fit is not available yet in this checkout; run with --only handwritten")
    t0 = time.perf_counter()
    fit = hdsl.fit(
        SPEC,
        data=df,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        seed=args.seed,
        progress=False,
        parameterization=parameterization,
    )
    total_s = time.perf_counter() - t0
    timings: dict[str, float] = getattr(fit, "timings", None) or {}
    post = fit.idata["posterior"]
    draws = {
        ours: np.asarray(post[theirs].transpose("chain", "draw").values)
        for ours, theirs in HDSL_NAMES.items()
    }
    sample_s = timings["warmup_s"] + timings["sample_s"] if "sample_s" in timings else None
    name = "hdsl" if parameterization == "noncentered" else f"hdsl-{parameterization}"
    return Run(name, timings.get("compile_s"), sample_s, total_s, draws, _divergences(fit))


def _divergences(fit: Any) -> int | None:
    """Post-warmup divergences from ``sample_stats.diverging``, if hdsl records them."""
    try:
        return int(np.asarray(fit.idata["sample_stats"]["diverging"].values).sum())
    except (KeyError, AttributeError, TypeError):
        return None


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def print_header(args: argparse.Namespace) -> None:
    import blackjax

    dev = jax.devices()[0]
    print(f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(
        f"machine   {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"jax       {jax.__version__} backend={jax.default_backend()} device={dev.device_kind} "
        f"x{jax.device_count()}; blackjax {blackjax.__version__}; python {platform.python_version()}"
    )
    print(
        f"settings  chains={args.chains} warmup={args.warmup} draws={args.draws} seed={args.seed} "
        f"repeat={args.repeat} data={args.data}"
    )
    print()


def print_table(runs: list[tuple[int, Run]]) -> None:
    head = (
        f"{'rep':>3} {'tool':<12} {'compile s':>9} {'warm+samp s':>11} {'total s':>8} "
        f"{'min ESS':>8} {'ESS/s':>7} {'max R^':>7} {'div':>4}"
    )
    print(head)
    print("-" * len(head))
    for rep, r in runs:
        print(
            f"{rep:>3} {r.tool:<12} {_fmt(r.compile_s):>9} {_fmt(r.sample_s):>11} {r.total_s:>8.2f} "
            f"{r.min_ess:>8.0f} {r.ess_per_s:>7.1f} {r.max_rhat:>7.3f} {_fmt(r.divergences, 'd'):>4}"
        )


def print_ratios(runs: list[tuple[int, Run]]) -> None:
    """hdsl/handwritten per repeat, and the median when repeated."""
    by_rep: dict[int, dict[str, Run]] = {}
    for rep, r in runs:
        by_rep.setdefault(rep, {})[r.tool] = r
    print()
    for tool in ("hdsl", "hdsl-auto"):
        pairs = [(d[tool], d["handwritten"]) for d in by_rep.values() if tool in d and "handwritten" in d]
        if not pairs:
            continue
        total = [h.total_s / w.total_s for h, w in pairs]
        eps = [h.ess_per_s / w.ess_per_s for h, w in pairs]
        print(
            f"{tool + ' / handwritten:':<27} total time "
            + " ".join(f"{x:.2f}" for x in total)
            + f"  (median {statistics.median(total):.2f});  ESS/s "
            + " ".join(f"{x:.2f}" for x in eps)
            + f"  (median {statistics.median(eps):.2f})"
        )


def print_posteriors(runs: list[tuple[int, Run]]) -> None:
    """Posterior mean ± sd of the last run of each tool next to the brms reference, with the gap in
    Monte Carlo standard errors (sd / sqrt(ESS)) so a wrong model shows up even when it is fast."""
    last = {r.tool: r for _, r in runs}
    print()
    print(f"{'param':<6} {'brms':>16}" + "".join(f" {t:>28}" for t in last))
    for name in PARAMS:
        ref_m, ref_s = REFERENCE[name]
        row = f"{name:<6} {ref_m:>8.2f} ± {ref_s:<5.2f}"
        for r in last.values():
            d = r.draws[name]
            mean, sd = float(d.mean()), float(d.std(ddof=1))
            mcse = sd / np.sqrt(float(arviz_stats.ess(d, method="mean")))
            row += f" {mean:>9.2f} ± {sd:<5.2f} ({(mean - ref_m) / mcse:+5.1f} MCSE)"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA.resolve())
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", choices=["hdsl", "hdsl-auto", "handwritten"], default=None)
    args = parser.parse_args()

    df = pd.read_csv(args.data)
    print_header(args)
    runners = {
        "handwritten": run_hand,
        # like for like: the same non-centered parameterization as the hand-written program
        "hdsl": lambda d, a: run_hdsl(d, a, "noncentered"),
        # hdsl's default: the parameterization chosen from the data (centered for imm10)
        "hdsl-auto": lambda d, a: run_hdsl(d, a, "auto"),
    }
    order = ["handwritten", "hdsl", "hdsl-auto"] if args.only is None else [args.only]
    runs: list[tuple[int, Run]] = []
    for rep in range(1, args.repeat + 1):
        for tool in order if rep % 2 else order[::-1]:
            runs.append((rep, runners[tool](df, args)))
    print_table(runs)
    print_ratios(runs)
    print_posteriors(runs)


if __name__ == "__main__":
    main()
