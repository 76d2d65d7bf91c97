"""Memory benchmark: resident memory of an hdsl fit by pipeline stage, against the data plus the draws.

Each size runs in its own subprocess. A thread reads the process's resident set (``/proc/self/statm``)
every 5 ms; the peak is taken over each stage: imports, data, model (design + compile of the log-density),
sampling (with the named draws filled block by block as the sampler hands them over), and building the
ArviZ object with the fit's diagnostics. "data" is the DataFrame's bytes, "draws" the bytes of the returned
posterior (named, constrained) plus sample_stats, "loglik" the pointwise log-likelihood (kept up to
50M values). Two ratios: "ratio" = (peak − resident after imports) / (data + draws + loglik), which
includes the fixed cost of compiling (about 330 MiB here, whatever the size); "growth" = the change in peak
between the first size and each larger one over the change in data + draws + loglik.

The speed of the fit does not change its memory: ``--max-tree-depth`` (default 3) keeps trees short so a
1M-row fit with a few hundred draws runs in minutes.

    cd /work/main && /work/venv/bin/python benchmarks/memory.py --sizes 10k,1M --warmup 20 --draws 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

MIB = 1024.0 ** 2
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class ResidentMonitor:
    """Peak resident memory per stage, sampled on a thread."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = resident_bytes()
        self.stages: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, resident_bytes())
            time.sleep(self.interval)

    def mark(self, stage: str) -> None:
        """End ``stage``: record its peak and the resident memory now; start the next stage's peak."""
        now = resident_bytes()
        self.stages[stage] = {"peak_mib": max(self.peak, now) / MIB, "end_mib": now / MIB}
        self.peak = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def worker(n_rows: int, chains: int, warmup: int, draws: int, depth: int, log_lik: bool) -> dict:
    mon = ResidentMonitor()
    import numpy as np
    from make_scale_data import make_data
    from scale import SPEC

    import hdsl
    import hdsl.workflow.api

    if not log_lik:
        hdsl.workflow.api.LOG_LIK_LIMIT = 0
    mon.mark("imports")
    df = make_data(n_rows)
    mon.mark("data")
    model = hdsl.Model(SPEC, df)
    mon.mark("model")
    original = hdsl.workflow.api.build_datatree

    def build_marked(*args, **kwargs):
        mon.mark("sampling")
        return original(*args, **kwargs)

    hdsl.workflow.api.build_datatree = build_marked
    fit = model.sample(chains=chains, warmup=warmup, draws=draws, seed=1, progress=False,
                       max_tree_depth=depth)
    mon.mark("results")
    mon.stop()
    data_bytes = int(df.memory_usage(deep=True).sum())
    draws_bytes = sum(int(np.asarray(v).nbytes) for group in ("posterior", "sample_stats")
                      for v in fit.idata[group].data_vars.values())
    ll = fit.idata.children.get("log_likelihood")
    ll_bytes = sum(int(np.asarray(v).nbytes) for v in ll.data_vars.values()) if ll is not None else 0
    return {"rows": n_rows, "dim": int(model.dim), "stages": mon.stages, "data_mib": data_bytes / MIB,
            "draws_mib": draws_bytes / MIB, "log_lik_mib": ll_bytes / MIB}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10k,1M")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--max-tree-depth", type=int, default=3)
    p.add_argument("--no-log-lik", action="store_true",
                   help="never keep the pointwise log-likelihood (hdsl keeps it up to 50M values)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.rows, args.chains, args.warmup, args.draws, args.max_tree_depth,
                                not args.no_log_lik)))
        return
    from make_scale_data import parse_size

    stage_names = ("imports", "data", "model", "sampling", "results")
    print(f"memory by stage, MiB (peak / resident at the end); {args.chains} chains × {args.draws} draws")
    print(f"{'rows':>8} {'dim':>6} " + " ".join(f"{s:>13}" for s in stage_names)
          + f" {'data':>6} {'draws':>6} {'loglik':>6} {'ratio':>6} {'growth':>6}")
    first = None
    for label in args.sizes.split(","):
        cmd = [sys.executable, __file__, "--worker", "--rows", str(parse_size(label)), "--chains",
               str(args.chains), "--warmup", str(args.warmup), "--draws", str(args.draws),
               "--max-tree-depth", str(args.max_tree_depth)] + (["--no-log-lik"] if args.no_log_lik else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{label:>8} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        st = r["stages"]
        base = st["data"]["end_mib"] - r["data_mib"]  # after imports, without the data
        peak = max(s["peak_mib"] for s in st.values())
        held = r["data_mib"] + r["draws_mib"] + r["log_lik_mib"]
        ratio = (peak - base) / held
        first = first or (peak, held)
        growth = (peak - first[0]) / (held - first[1]) if held > first[1] else float("nan")
        print(f"{r['rows']:>8} {r['dim']:>6} "
              + " ".join(f"{st[s]['peak_mib']:>6.0f}/{st[s]['end_mib']:<6.0f}" for s in stage_names)
              + f" {r['data_mib']:>6.0f} {r['draws_mib']:>6.0f} {r['log_lik_mib']:>6.0f} {ratio:>6.2f} {growth:>6.2f}",
              flush=True)
    print("ratio = (peak − resident after imports) / (data + draws + loglik); growth = Δpeak / Δ(data + draws"
          " + loglik) from the first size")


if __name__ == "__main__":
    main()
