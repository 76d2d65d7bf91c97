"""A real hierarchical fit: exam scores of 4,059 London students in 65 schools (mlmRev's Exam).

Each school gets its own intercept and its own slope on the intake reading test (standLRT),
correlated, as in Goldstein et al.'s classic analysis. Run: ``python examples/exam.py``.
"""

from __future__ import annotations

import argparse

import pandas as pd

import hdsl
from hdsl.datasets import load

SPEC = """
normexam ~ standLRT + (1 + standLRT | school)
family: gaussian
prior: Intercept ~ normal(0, 2)
prior: b ~ normal(0, 1)
prior: sd ~ half_normal(1)
prior: sigma ~ half_normal(1)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    exam = load("exam")
    print(f"Exam: {len(exam)} students in {exam['school'].nunique()} schools")
    print(SPEC.strip(), "\n")
    fit = hdsl.fit(SPEC, exam, chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(fit.summary().loc[fit.parameter_names])
    t = fit.timings
    print(f"\ncompile {t['compile_s']:.1f} s, warmup {t['warmup_s']:.1f} s, sampling {t['sample_s']:.1f} s, "
          f"total {t['total_s']:.1f} s")


if __name__ == "__main__":
    main()
