"""Cross-validation of the seed article's model at its two levels, and what batching the folds saves.

    python benchmarks/cv_imm10.py [--chains 4 --warmup 1000 --draws 1000 --seq-folds 2]

1. Students held out within schools (5 folds, stratified by school): partial vs no vs complete pooling.
2. Whole schools held out (10 folds, one school each): partial vs complete pooling (no pooling cannot
   predict a school it has never seen).

Each model's folds run as one vectorized program (folds × chains chains). For comparison, the partial
pooling model's first ``--seq-folds`` folds are also run one after another (each its own program, as
refitting per fold does); the time for all folds is extrapolated from them, and stated as such.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import hdsl
from hdsl.inference.options import SamplerOptions
from hdsl.inference.sample import sample_nuts
from hdsl.model import density
from hdsl.workflow.crossval import stratified_folds

SPEC = "math ~ homework + (1 + homework | schid)"
IMM10 = Path(os.environ.get("HDSL_IMM10", Path(__file__).resolve().parents[2] / "shared/data/imm10/imm10.csv"))


def _show(title: str, cv: hdsl.CVResult) -> None:
    print(f"\n=== {title}: {cv.k} folds, {len(cv.pointwise)} students ===")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(cv.summary()[["rmsd", "elpd", "elpd_se", "elpd_diff", "diff_se", "n_undefined", "divergences"]]
              .round(2).to_string())
        print()
        print(cv.folds.round(2).to_string())
    for m in ("partial_pooling", "complete_pooling", "no_pooling"):
        t = cv.timings.get(m)
        if t:
            print(f"  {m:17s} compile {t['compile_s']:6.1f} s  warmup {t['warmup_s']:6.1f} s  "
                  f"sampling {t['sample_s']:5.1f} s  scoring {t['score_s']:4.1f} s")
    print(f"  total {cv.timings['total_s']:.1f} s")


def sample_folds_one_by_one(model: hdsl.Model, weights: np.ndarray, options: SamplerOptions) -> dict[str, float]:
    """Each fold its own compiled program, as refitting per fold does; the timings summed over the folds."""
    lowered = model.lowered
    user_weights = np.asarray(lowered.data.weights) if lowered.data.weights is not None else 1.0
    log_density = functools.partial(density.log_density, lowered)
    timings: dict[str, float] = {}
    for w in weights:
        data = lowered.data.with_weights(w * user_weights)
        d = sample_nuts(log_density, model.dim, options, data, dtype=lowered.dtype)
        for key, v in d.timings.items():
            timings[key] = timings.get(key, 0.0) + v
    return timings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seq-folds", type=int, default=2, help="folds run one after another for the comparison")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not IMM10.exists():
        sys.exit(f"imm10 not found at {IMM10} (set HDSL_IMM10)")
    df = pd.read_csv(IMM10)
    run = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws, "seed": args.seed, "progress": False}
    print(f"{SPEC}; {args.chains} chains x ({args.warmup} warmup + {args.draws} draws) per fold")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        within = hdsl.cross_validate(SPEC, df, folds=5, **run)
        _show("students held out within schools", within)
        schools = hdsl.cross_validate(SPEC, df, by="schid", folds=10, **run)
        _show("whole schools held out", schools)

        # the same folds one after another: each fold its own program (compile + warmup + sampling)
        model = hdsl.Model(SPEC, df)
        options = SamplerOptions(chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed)
        fold_id = stratified_folds(model.design.main.groups[0].codes, 5, args.seed)
        weights = (fold_id[None, :] != np.arange(args.seq_folds)[:, None]).astype(float)
        t0 = time.perf_counter()
        tm = sample_folds_one_by_one(model, weights, options)
        seq = time.perf_counter() - t0
    per_fold, per_fold_run = seq / args.seq_folds, (tm["warmup_s"] + tm["sample_s"]) / args.seq_folds

    print(f"\n=== batched vs one fold after another (partial pooling model; {args.seq_folds} folds measured "
          "sequentially, the rest extrapolated) ===")
    print(f"  sequential, per fold: {per_fold:.1f} s wall ({tm['compile_s'] / args.seq_folds:.1f} s compile, "
          f"{per_fold_run:.1f} s warmup + sampling)")
    for name, cv in (("5 folds within schools", within), ("10 folds of schools", schools)):
        t = cv.timings["partial_pooling"]
        batched = t["compile_s"] + t["warmup_s"] + t["sample_s"]
        print(f"  {name}: batched {batched:.1f} s (compile {t['compile_s']:.1f} s) vs sequential "
              f"~{per_fold * cv.k:.1f} s extrapolated ({cv.k} × {per_fold:.1f} s; "
              f"~{per_fold_run * cv.k:.1f} s even if compiled only once): {per_fold * cv.k / batched:.1f}× faster")


if __name__ == "__main__":
    main()
