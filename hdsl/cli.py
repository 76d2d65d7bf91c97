"""The ``hdsl`` command: fit a spec file to a CSV and print the summary, or inspect priors and saved fits."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

from .errors import DataError, HdslError

__all__ = ["main"]


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


def _cmd_fit(args: argparse.Namespace) -> int:
    from .api import fit

    data = _read_data(args.data)
    result = fit(_read_spec(args.spec), data, chains=args.chains, warmup=args.warmup, draws=args.draws,
                 seed=args.seed, progress=not args.quiet, dtype=args.dtype)
    if args.out:
        result.save(args.out)
        if not args.quiet:
            print(f"saved to {args.out}", file=sys.stderr)
    summary = result.summary()
    if not args.all:
        summary = summary.loc[[n for n in result.parameter_names if n in summary.index]]
    _print_table(summary, args.json)
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


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hdsl", description="Bayesian hierarchical models from formula text.")
    sub = ap.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit a spec file to data and print the summary")
    f.add_argument("spec", help="spec file (formula, family, priors)")
    f.add_argument("--data", required=True, help="CSV (or parquet) file")
    f.add_argument("--chains", type=int, default=4)
    f.add_argument("--warmup", type=int, default=1000)
    f.add_argument("--draws", type=int, default=1000)
    f.add_argument("--seed", type=int, default=0)
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
