"""Run the tutorial on imm10 and write its page (docs/tutorial/index.md), figures (docs/tutorial/img/) and
numbers (docs/tutorial/results.json).

Every code block on the page is executed here, in order, in one namespace; what it prints is put under it,
and a ``fig`` it leaves behind is saved as the step's PNG. So the page shows what the code really gives.

    python docs/tutorial/build.py            # imm10 from ../shared/data/imm10/ or $HDSL_IMM10

Runs two fits of 4 chains × 1000 warmup + 1000 draws (a few minutes on a laptop CPU).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import platform
import sys
import textwrap
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMG = HERE / "img"
IMM10 = Path(os.environ.get("HDSL_IMM10", ROOT.parent / "shared/data/imm10/imm10.csv"))

# (name, markdown before the code, code, caption of the figure the code leaves in `fig`)
STEPS: list[tuple[str, str, str, str]] = [
    ("data", """
## The data

The seed article predicts the math score of 260 eighth-graders in 10 schools (`imm10`, a subset of the
NELS-88 study) from the time they spend on homework each week. `schid` identifies the school.
""", """
import pandas as pd
import hdsl
from hdsl import plots

df = pd.read_csv("imm10.csv")
print(df[["schid", "homework", "math"]].describe().round(2).to_string())
print(df.groupby("schid").size().rename("students").to_frame().T.to_string())
""", ""),
    ("pooled", """
## First look: one line for everyone

A model can be compiled without sampling; the figures of the data need only that. `plot_data_pooled`
draws the data with one ordinary least-squares line through all of it, ignoring schools (the article calls
this the *unpooled* fit; in the usual terms it is *complete pooling*: every school shares one line).
Homework takes whole numbers of hours, so the points are jittered sideways a little.
""", """
spec = '''
math ~ homework + (1 + homework || schid)
family: gaussian
prior: Intercept ~ normal(40, 50)
prior: b[homework] ~ normal(0, 10)
prior: sd[schid, Intercept] ~ normal(0, 50)
prior: sd[schid, homework] ~ normal(0, 5)
prior: sigma ~ cauchy(0, 5)
'''
model = hdsl.Model(spec, df)
fig = plots.plot_data_pooled(model)
""", "The data with the pooled OLS line"),
    ("group_ols", """
## One line per school

Fitting each school on its own (*no pooling*; the article's "pooled regression lines fit on each school")
shows how much the relationship varies. Some lines lean on a few points with high homework values.
""", """
fig = plots.plot_group_ols(model)
import numpy as np
rows = []
for school, d in df.groupby("schid"):
    slope, intercept = np.polyfit(d.homework, d.math, 1)
    rows.append((school, len(d), round(intercept, 1), round(slope, 2)))
ols = pd.DataFrame(rows, columns=["schid", "n", "ols_intercept", "ols_slope"]).set_index("schid")
print(ols.to_string())
""", "OLS line per school, with the pooled line dashed"),
    ("model", """
## The hierarchical model

The article's PyMC3 model gives each school an intercept `a[j] ~ Normal(mu_a, sigma_a)` and a slope
`b[j] ~ Normal(mu_b, sigma_b)`, independently, with `y ~ Normal(a[school] + b[school]·homework, eps)`.
In hdsl that is the spec above, line by line:

| PyMC3 | hdsl |
|---|---|
| `mu_a = Normal(40, 50)` | `prior: Intercept ~ normal(40, 50)` |
| `sigma_a = HalfNormal(50)` | `prior: sd[schid, Intercept] ~ normal(0, 50)` (truncated at 0: a half-normal) |
| `mu_b = Normal(0, 10)` | `prior: b[homework] ~ normal(0, 10)` |
| `sigma_b = HalfNormal(5)` | `prior: sd[schid, homework] ~ normal(0, 5)` |
| `eps = HalfCauchy(5)` | `prior: sigma ~ cauchy(0, 5)` |
| `a`, `b` independent per school | `(1 + homework \\|\\| schid)`: `\\|\\|` means uncorrelated |

hdsl writes each school's coefficients as the population value plus a deviation (`b_Intercept +
r_schid[j, Intercept]`), as brms and lme4 do; `b + r` is the article's `a[j]`. Every prior target of the
model and the prior in force:
""", """
print(model.default_priors().to_string())
""", ""),
    ("fit", """
## Sampling

Four chains of 1000 warmup and 1000 kept draws (brms's default, used for the reference numbers on the
[comparison page](../comparison.md); the article keeps 2000 after 1000 tuning steps). All chains run in one
compiled, vectorized program.
""", """
fit = model.sample(chains=4, warmup=1000, draws=1000, seed=1, progress=False)
print(fit.summary().loc[fit.parameter_names].round(2).to_string())
print({k: round(v, 3) for k, v in fit.diagnostics().items()})
""", ""),
    ("trace", """
## Trace plot

Left, the posterior density of each parameter per chain; right, the draws in order. The chains overlap
and wander without trends: they agree.
""", """
fig = fit.plot_trace()
""", "Trace plot of the population-level, sd and sigma parameters"),
    ("forest", """
## Intercepts and slopes per school

`plot_forest` shows each school's intercept and slope (`b + r`) with 95% intervals, over the population
mean and interval (grey).
""", """
fig = fit.plot_forest()
post = fit.idata["posterior"]
slopes = (post["b_homework"] + post["r_schid"].sel(schid__coef="homework")).mean(("chain", "draw"))
shrink = ols.assign(posterior_slope=slopes.to_series().round(2).set_axis(ols.index))
print(shrink.to_string())
""", "Posterior mean and 95% interval of each school's intercept and slope"),
    ("lines", """
## Posterior regression lines per school

Fifty regression lines drawn from the posterior of each school (grey), the posterior-mean line (blue) and
the school's own OLS line (red, dashed). Every school's slope is pulled toward the population slope, most
where a school has few students at high homework values to pin its line down (the negative slopes of 7472,
25456 and 25642; compare the `ols_slope` and `posterior_slope` columns above); there the fans of lines are
widest. School 62821, with 67 students spread over the whole range, keeps close to its own OLS line, as the
article notes: a data-rich school needs little help from the others.
""", """
fig = fit.plot_group_lines(n_lines=50)
""", "Posterior regression lines per school over the data"),
    ("conditional", """
## Beyond the article

The population-level line from `mu_a` and `mu_b`, which the article omits, is brms's
`conditional_effects`: the mean over a grid of the predictor, with a 95% credible band.
""", """
fig = fit.conditional_effects("homework", points=True)
""", "Population-level effect of homework with its 95% credible band"),
    ("ppc", """
A posterior-predictive check overlays the density of data sets replicated from the posterior on the observed
one. The model reproduces the spread of scores but smooths over the two humps of the observed distribution
(the low-scoring and high-scoring schools).
""", """
fig = fit.ppc_plot(n_draws=50)
""", "Posterior-predictive check: replicated (blue) and observed (black) densities of math"),
    ("correlated", """
The article's model keeps intercepts and slopes independent. Writing `|` instead of `||` estimates their
correlation too (an LKJ prior on the correlation matrix, `lkj(1)` by default):
""", """
corr = hdsl.fit(spec.replace("||", "|"), df, chains=4, warmup=1000, draws=1000, seed=1, progress=False)
print(corr.summary().loc[corr.parameter_names].round(2).to_string())
""", ""),
    ("cv", """
## Cross-validation at two levels

The article proposes to compare the models by cross-validation at two levels: hold out students within
schools, and hold out whole schools (impossible for the per-school model, which knows nothing of a school it
has not seen). `hdsl.cross_validate` does both, with the article's two baselines, complete pooling (one
regression) and no pooling (one regression per school). All folds of a model run as one vectorized program
(folds × chains), each fold being the full data with its held-out rows weighted 0; a held-out school is then
a level with no data, whose effects come from the population distribution. RMSD is the root-mean-square
deviation of the posterior-mean prediction from the held-out scores; ELPD the expected log predictive
density of the held-out scores (higher is better). Shorter chains keep this step quick.
""", """
within = hdsl.cross_validate(spec, df, folds=5, chains=2, warmup=300, draws=300, seed=1, progress=False)
print(within.summary()[["rmsd", "elpd", "elpd_se", "elpd_diff", "diff_se"]].round(2).to_string())
schools = hdsl.cross_validate(spec, df, by="schid", chains=2, warmup=300, draws=300, seed=1, progress=False)
print(schools.summary()[["rmsd", "elpd", "elpd_se", "elpd_diff", "diff_se"]].round(2).to_string())

def verdict(result, other):
    s = result.summary()
    d = s.loc["partial_pooling", "elpd"] - s.loc[other, "elpd"]
    se = s.loc[other, "diff_se"]
    word = "better than" if d > 2 * se else ("worse than" if d < -2 * se else "level with")
    return f"partial pooling is {word} {other.replace('_', ' ')} ({d:+.1f} ± {se:.1f} ELPD)"

print("students held out:", verdict(within, "complete_pooling") + ";", verdict(within, "no_pooling"))
print("schools held out:", verdict(schools, "complete_pooling"))
""", ""),
]


def _run_steps() -> tuple[str, dict]:
    namespace: dict = {}
    parts: list[str] = []
    cwd = os.getcwd()
    os.chdir(IMM10.parent)  # the code reads "imm10.csv" as a reader would
    try:
        for name, text, code, caption in STEPS:
            code = textwrap.dedent(code).strip()
            out = io.StringIO()
            with contextlib.redirect_stdout(out), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(code, f"<tutorial step {name}>", "exec"), namespace)  # noqa: S102
            parts.append(textwrap.dedent(text).strip())
            parts.append(f"```python\n{code}\n```")
            if out.getvalue().strip():
                parts.append(f"```text\n{out.getvalue().rstrip()}\n```")
            fig = namespace.pop("fig", None)
            if fig is not None:
                fig.savefig(IMG / f"{name}.png", dpi=110)
                parts.append(f"![{caption}](img/{name}.png)")
            print(f"step {name} done", file=sys.stderr)
    finally:
        os.chdir(cwd)
    return "\n\n".join(parts), namespace


def _results(ns: dict) -> dict:
    fit, corr = ns["fit"], ns["corr"]
    s = fit.summary().loc[fit.parameter_names]
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "seed_model": {n: {"mean": round(float(s.loc[n, "mean"]), 2), "sd": round(float(s.loc[n, "sd"]), 2)}
                       for n in s.index},
        "seed_timings_s": {k: round(v, 2) for k, v in fit.timings.items()},
        "seed_diagnostics": {k: round(v, 3) for k, v in fit.diagnostics().items()},
        "correlated_timings_s": {k: round(v, 2) for k, v in corr.timings.items()},
    }


def main() -> None:
    if not IMM10.exists():
        sys.exit(f"imm10 not found at {IMM10}; set HDSL_IMM10")
    IMG.mkdir(exist_ok=True)
    body, ns = _run_steps()
    results = _results(ns)
    t = results["seed_timings_s"]
    head = textwrap.dedent(f"""
    # Tutorial: the seed article, step by step

    <!-- generated by docs/tutorial/build.py; edit that file, then run it -->

    This page reproduces *Introduction to hierarchical modeling* (Surya Krishnamurthy, 2020), which fits
    school-level intercepts and slopes of math score on homework with PyMC3, using hdsl. Every block of
    code below was run to make this page ({results['date']}, {results['machine']}); the output under it and
    the figures are what it gave. `fig` is a matplotlib Figure: `fig.savefig("name.png")` writes it.
    The seed model took {t.get('compile_s', 0):.1f} s to compile and {t.get('warmup_s', 0) + t.get('sample_s', 0):.1f} s
    to warm up and sample (on a machine shared with other jobs; see the [comparison](../comparison.md)).
    """).strip()
    (HERE / "index.md").write_text(head + "\n\n" + body + "\n")
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
