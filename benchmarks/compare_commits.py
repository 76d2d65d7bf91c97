"""Two checkouts of hdsl against each other on the same fits: the seed model (imm10, 260 rows, 4 chains of
1000 + 1000 steps) and the scale model at 100k rows (``make_scale_data.py``, 4 chains of 500 + 500 steps).

Each fit runs in a fresh subprocess with ``PYTHONPATH`` set to one checkout (so every fit pays the same
cold start), the checkouts alternate (A B B A A B ...), and the table reports per fit and checkout the
median of each stage's seconds (``Fit.timings``) and of the wall time of ``hdsl.fit``, the ratios B / A,
and whether the draws are the same bit for bit (a hash of every posterior variable).

    git worktree add /tmp/hdsl-before <commit>
    python benchmarks/compare_commits.py /tmp/hdsl-before . --repeat 3
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "imm10" / "imm10.csv"

FITS = {
    "seed": {"warmup": 1000, "draws": 1000},
    "scale 100k": {"warmup": 500, "draws": 500},
}


def worker(name: str) -> None:
    """One fit in this process (``hdsl`` from ``PYTHONPATH``); prints its timings and draws' hash as JSON."""
    import time
    import warnings

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE))
    import hdsl

    if name == "seed":
        root = Path(hdsl.__file__).resolve().parents[1]
        spec, df = (root / "examples" / "seed.hdsl").read_text(), pd.read_csv(DATA)
    else:
        from make_scale_data import make_data
        from scale import SPEC as spec

        df = make_data(100_000)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hdsl.fit(spec, df, chains=4, seed=1, progress=False, **FITS[name])
    wall = time.perf_counter() - t0
    digest = hashlib.sha256()
    post = fit.idata["posterior"]
    for var in sorted(post.data_vars):
        digest.update(np.ascontiguousarray(post[var].values).tobytes())
    print(json.dumps({"wall_s": wall, **{k: float(v) for k, v in fit.timings.items()},
                      "hash": digest.hexdigest()[:16]}))


def run(checkout: Path, name: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout.resolve()))
    out = subprocess.run([sys.executable, __file__, "--worker", name], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, nargs="?", help="the checkout measured first (before)")
    ap.add_argument("b", type=Path, nargs="?", help="the other checkout (after)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fits", default=",".join(FITS))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return
    print(f"date {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
          f"{platform.platform()}, {os.cpu_count()} CPUs; A = {args.a}, B = {args.b}")
    for name in args.fits.split(","):
        results: dict[str, list[dict]] = {"A": [], "B": []}
        for i in range(args.repeat):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            for which in order:
                results[which].append(run(args.a if which == "A" else args.b, name))
                print(f"  {name} {which} #{len(results[which])}: {results[which][-1]}", flush=True)
        keys = [k for k in results["A"][0] if k != "hash"]
        print(f"\n{name}: medians of {args.repeat} fits (seconds)")
        print(f"  {'stage':<12} {'A':>8} {'B':>8} {'B/A':>6}")
        for k in keys:
            a = statistics.median(r[k] for r in results["A"])
            b = statistics.median(r[k] for r in results["B"])
            print(f"  {k:<12} {a:8.2f} {b:8.2f} {b / a:6.2f}")
        hashes = {r["hash"] for r in results["A"] + results["B"]}
        print(f"  draws: {'the same bit for bit in every fit' if len(hashes) == 1 else f'{len(hashes)} different'}")


if __name__ == "__main__":
    main()
