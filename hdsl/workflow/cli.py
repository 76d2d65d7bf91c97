"""The ``hdsl`` command: fit a spec file to a CSV and print the summary, or inspect priors and saved fits."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
import warnings
from pathlib import Path

import pandas as pd

from ..errors import DataError, HdslError
from ..inference.options import SamplerOptions

__all__ = ["main", "add_sampler_flags", "sampler_options_from_flags"]


def _read_data(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise DataError(f"no such data file: {path}")
    try:
        if p.suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file
        raise DataError(f"cannot read {path}: {exc}") from None


def _read_spec(path: str) -> str:
    p = Path(path)
    if not p.exists():
        raise HdslError(f"no such spec file: {path}")
    return p.read_text()


def _print_table(df: pd.DataFrame, as_json: bool) -> None:
    if as_json:
        print(json.dumps(json.loads(df.to_json(orient="index")), indent=2))
    else:
        with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 20):
            print(df.to_string(float_format=lambda v: f"{v:.3g}"))


def add_sampler_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`SamplerOptions` (``--target-accept`` for ``target_accept``), its type,
    choices, default and help read from the field, so the command line states none of them again."""
    types = typing.get_type_hints(SamplerOptions)
    for f in dataclasses.fields(SamplerOptions):
        flag = "--" + f.name.replace("_", "-")
        kind = types[f.name]
        text = f.metadata["help"] + (" (default: %(default)s)" if f.default is not None else "")
        if (choices := _literal_values(kind)) is not None:
            parser.add_argument(flag, choices=choices, default=f.default, help=text)
        elif kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=text)
        else:
            parser.add_argument(flag, type=kind, default=f.default, help=text)


def _literal_values(kind) -> tuple | None:
    """The values of ``Literal[...]``, or of the ``Literal`` in ``Literal[...] | None``; None for other types."""
    for t in (kind, *typing.get_args(kind)):
        if typing.get_origin(t) is typing.Literal:
            return typing.get_args(t)
    return None


def sampler_options_from_flags(args: argparse.Namespace) -> SamplerOptions:
    """The flags of :func:`add_sampler_flags` as the options object: checked here, before any file is read."""
    return SamplerOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SamplerOptions)})


def _cmd_fit(args: argparse.Namespace) -> int:
    from .api import fit

    options = sampler_options_from_flags(args)
    data = _read_data(args.data)
    result = fit(_read_spec(args.spec), data, progress=not args.quiet, dtype=args.dtype,
                 **dataclasses.asdict(options))
    if args.out:
        result.save(args.out)
        if not args.quiet:
            print(f"saved to {args.out}", file=sys.stderr)
    summary = result.summary()
    if not args.all:
        summary = summary.loc[[n for n in result.parameter_names if n in summary.index]]
    _print_table(summary, args.json)
    if result.n_dropped:
        print(f"{result.n_dropped} rows with missing values were dropped", file=sys.stderr)
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from .api import load

    result = load(args.fit)
    summary = result.summary()
    if not args.all:
        summary = summary.loc[[n for n in result.parameter_names if n in summary.index]]
    _print_table(summary, args.json)
    return 0


def _cmd_priors(args: argparse.Namespace) -> int:
    from .api import Model

    model = Model(_read_spec(args.spec), _read_data(args.data))
    _print_table(model.default_priors(), args.json)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .api import load

    result = load(args.fit, data=_read_data(args.data))
    newdata = _read_data(args.newdata) if args.newdata else None
    pred = result.predict(newdata, kind=args.kind, draws=args.draws, allow_new_levels=args.allow_new_levels,
                          re_formula=args.re_formula, seed=args.seed)
    values = next(iter(pred["predictions"].to_dataset().data_vars.values())).values
    flat = values.reshape(-1, values.shape[-1])
    lo, hi = (1 - args.prob) / 2, (1 + args.prob) / 2
    table = pd.DataFrame({"mean": flat.mean(axis=0), "sd": flat.std(axis=0, ddof=1),
                          f"{100 * lo:g}%": np.quantile(flat, lo, axis=0),
                          f"{100 * hi:g}%": np.quantile(flat, hi, axis=0)})
    table.index.name = "obs_id"
    _print_table(table, args.json)
    return 0


def _cmd_loo(args: argparse.Namespace) -> int:
    import numpy as np

    from .api import load

    result = load(args.fit)
    loo = result.loo()
    waic = result.waic()
    k = np.asarray(loo.pareto_k)
    table = pd.DataFrame({
        "estimate": [loo.elpd, loo.p, waic.elpd_waic, waic.p_waic],
        "se": [loo.se, np.nan, waic.se, np.nan],
    }, index=["elpd_loo", "p_loo", "elpd_waic", "p_waic"])
    if args.json:
        out = {"elpd_loo": float(loo.elpd), "se": float(loo.se), "p_loo": float(loo.p),
               "elpd_waic": waic.elpd_waic, "se_waic": waic.se, "p_waic": waic.p_waic,
               "n_obs": int(k.size), "pareto_k_above_0.7": int(np.sum(k > 0.7)), "max_pareto_k": float(k.max())}
        print(json.dumps(out, indent=2))
    else:
        _print_table(table, False)
        print(f"Pareto k > 0.7: {int(np.sum(k > 0.7))} of {k.size} observations (max k {float(k.max()):.2f})")
    return 0


def _cmd_cv(args: argparse.Namespace) -> int:
    from .crossval import cross_validate

    options = sampler_options_from_flags(args)
    result = cross_validate(_read_spec(args.spec), _read_data(args.data), folds=args.folds, by=args.by,
                            progress=not args.quiet, baselines=not args.no_baselines, **dataclasses.asdict(options))
    summary = result.summary()
    if args.json:
        folds = result.folds.reset_index()
        out = {"summary": json.loads(summary.to_json(orient="index")),
               "folds": json.loads(folds.to_json(orient="records")),
               "specs": result.specs, "timings": result.timings}
        print(json.dumps(out, indent=2))
    else:
        how = f"leave-group-out by {args.by}" if args.by else f"within groups of {result.group}"
        print(f"{result.k}-fold cross-validation, {how}; {len(result.pointwise)} rows")
        _print_table(summary, False)
        print()
        _print_table(result.folds, False)
    return 0


_PLOTS = ("trace", "forest", "group-lines", "ppc", "conditional", "data", "group-ols")


def _cmd_plot(args: argparse.Namespace) -> int:
    from . import plots
    from .api import load

    needs_data = args.kind not in ("trace", "forest")
    if needs_data and not args.data:
        raise HdslError(f"the '{args.kind}' plot needs the training data: add --data FILE")
    result = load(args.fit, data=_read_data(args.data) if args.data else None)
    if args.kind == "conditional" and not args.effect:
        raise HdslError("the 'conditional' plot needs --effect PREDICTOR")
    make = {
        "trace": lambda: plots.plot_trace(result, args.var),
        "forest": lambda: plots.plot_forest(result, args.group),
        "group-lines": lambda: plots.plot_group_lines(result, args.lines, group=args.group),
        "ppc": lambda: plots.ppc_plot(result, args.lines, args.seed),
        "conditional": lambda: plots.conditional_effects(result, args.effect),
        "data": lambda: plots.plot_data_pooled(result),
        "group-ols": lambda: plots.plot_group_ols(result, group=args.group),
    }
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise HdslError(f"--out must end in .png, .svg or .pdf, got '{out.name}'")
    make[args.kind]().savefig(out, dpi=args.dpi)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hdsl", description="Bayesian hierarchical models from formula text.")
    sub = ap.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit a spec file to data and print the summary")
    f.add_argument("spec", help="spec file (formula, family, priors)")
    f.add_argument("--data", required=True, help="CSV (or parquet) file")
    add_sampler_flags(f)
    f.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="default: float64 on CPU, float32 on GPU")
    f.add_argument("--out", help="save the posterior (netCDF) here")
    f.add_argument("--all", action="store_true", help="also list group-level effects r_g[level,coef]")
    f.add_argument("--json", action="store_true", help="print the summary as JSON")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_cmd_fit)

    s = sub.add_parser("summary", help="print the summary of a saved fit")
    s.add_argument("fit", help="file written by `hdsl fit --out`")
    s.add_argument("--all", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_summary)

    p = sub.add_parser("priors", help="list every valid prior target with the prior in force")
    p.add_argument("spec")
    p.add_argument("--data", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_priors)

    pr = sub.add_parser("predict", help="posterior predictions of a saved fit for new (or the training) data")
    pr.add_argument("fit", help="file written by `hdsl fit --out`")
    pr.add_argument("--data", required=True, help="the training data (CSV or parquet): it fixes the encoding")
    pr.add_argument("--newdata", help="rows to predict (default: the training rows)")
    pr.add_argument("--kind", choices=["mean", "linpred", "response"], default="mean")
    pr.add_argument("--draws", type=int, default=None, help="thin to this many posterior draws")
    pr.add_argument("--allow-new-levels", action="store_true",
                    help="draw effects of unseen group levels from the fitted population distribution")
    pr.add_argument("--re-formula", default=None, help="group terms to include: '~0' for none, '~ (1 | g)'")
    pr.add_argument("--prob", type=float, default=0.95, help="interval probability (default 0.95)")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--json", action="store_true", help="print the table as JSON")
    pr.set_defaults(func=_cmd_predict)

    lo = sub.add_parser("loo", help="PSIS-LOO and WAIC of a saved fit, with the Pareto k diagnostic")
    lo.add_argument("fit", help="file written by `hdsl fit --out`")
    lo.add_argument("--json", action="store_true", help="print the estimates as JSON")
    lo.set_defaults(func=_cmd_loo)

    cv = sub.add_parser("cv", help="cross-validate a hierarchical model against complete and no pooling",
                        description="K-fold cross-validation; all folds of a model run as one vectorized program. "
                        "Without --by, rows are held out within groups (folds stratified by the first grouping "
                        "factor); with --by g, whole levels of g are held out (prediction for new groups; no "
                        "pooling is undefined there).")
    cv.add_argument("spec", help="spec file (formula with at least one group term, family, priors)")
    cv.add_argument("--data", required=True, help="CSV (or parquet) file")
    cv.add_argument("--folds", type=int, default=None,
                    help="number of folds (default: 5 within groups; one per level with --by)")
    cv.add_argument("--by", default=None, help="hold out whole levels of this grouping factor")
    add_sampler_flags(cv)
    cv.add_argument("--no-baselines", action="store_true", help="cross-validate the model only")
    cv.add_argument("--json", action="store_true", help="print summary, folds, specs and timings as JSON")
    cv.add_argument("--quiet", action="store_true", help="no progress bar")
    cv.set_defaults(func=_cmd_cv)

    pl = sub.add_parser("plot", help="draw a figure of a saved fit to a PNG, SVG or PDF file",
                        description="Draw a figure of a saved fit. trace and forest need only the fit; the others "
                                    "also need the training data (--data). Needs the 'plots' extra.")
    pl.add_argument("fit", help="file written by `hdsl fit --out`")
    pl.add_argument("kind", choices=_PLOTS, help="which figure")
    pl.add_argument("--out", required=True, help="output file: .png, .svg or .pdf")
    pl.add_argument("--data", help="the training data (CSV or parquet)")
    pl.add_argument("--effect", help="predictor for the 'conditional' plot")
    pl.add_argument("--group", help="grouping factor (default: the first)")
    pl.add_argument("--var", nargs="+", help="variables for the 'trace' plot (default: all but group effects)")
    pl.add_argument("--lines", type=int, default=50, help="posterior draws drawn in 'group-lines' and 'ppc'")
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--dpi", type=int, default=120)
    pl.set_defaults(func=_cmd_plot)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return args.func(args)
    except HdslError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
