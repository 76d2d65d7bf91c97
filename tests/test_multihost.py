"""Two processes (jax.distributed on CPU, as two hosts would be) sampling one model: each runs half the
chains, and both end with the whole posterior. One joins by ``hdsl.initialize_distributed``, the other
by the HDSL_COORDINATOR environment variables read at ``import hdsl``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_sharding import SMALL_DATA

import hdsl

SCRIPT = textwrap.dedent("""
    import hashlib, json, sys, warnings
    import hdsl  # process 1 joins through HDSL_COORDINATOR etc. at import, process 0 by the call below
    if sys.argv[2] == "0":
        hdsl.initialize_distributed(f"localhost:{sys.argv[1]}", 2, 0)
    import jax
    warnings.simplefilter("ignore")
""") + SMALL_DATA + textwrap.dedent("""
    fit = hdsl.fit("y ~ x + (1 | g)", df, chains=4, warmup=150, draws=100, seed=4, progress=False)
    b = fit.idata["posterior"]["b_x"].transpose("chain", "draw").values
    s = fit.summary()
    print(json.dumps({
        "processes": jax.process_count(),
        "chains": int(b.shape[0]),
        "digest": hashlib.sha256(np.ascontiguousarray(b).tobytes()).hexdigest(),
        "b_x": float(s.loc["b_x", "mean"]),
        "r_hat": float(s.loc[fit.parameter_names, "r_hat"].max()),
        "halves_differ": bool(not np.allclose(b[:2], b[2:])),
    }))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_split_the_chains_and_both_return_all_draws():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    port = str(_free_port())
    by_env = dict(env, HDSL_COORDINATOR=f"localhost:{port}", HDSL_NUM_PROCESSES="2", HDSL_PROCESS_ID="1")
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, port, str(i)], env=env if i == 0 else by_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _ in outs)
    assert first["processes"] == second["processes"] == 2
    assert first["chains"] == second["chains"] == 4
    assert first["digest"] == second["digest"]  # both processes hold the same, whole posterior
    assert first["halves_differ"]  # the two processes' chains came from different keys
    assert abs(first["b_x"] - 0.5) < 0.3 and first["r_hat"] < 1.05


@pytest.mark.parametrize(("count", "index", "message"), [
    ("two", "0", "HDSL_NUM_PROCESSES must be an integer: got 'two'"),
    (None, "0", "HDSL_NUM_PROCESSES must be an integer: it is not set"),
    ("2", "2", "HDSL_PROCESS_ID=2 must be between 0 and HDSL_NUM_PROCESSES - 1 = 1"),
])
def test_bad_environment_names_the_variable_and_value(monkeypatch, count, index, message):
    """Checked before JAX is touched: nothing is initialized."""
    from hdsl.inference.distributed import initialize_distributed_from_env

    monkeypatch.setenv("HDSL_COORDINATOR", "localhost:1")
    monkeypatch.setenv("HDSL_PROCESS_ID", index)
    if count is None:
        monkeypatch.delenv("HDSL_NUM_PROCESSES", raising=False)
    else:
        monkeypatch.setenv("HDSL_NUM_PROCESSES", count)
    with pytest.raises(hdsl.HdslError) as err:
        initialize_distributed_from_env()
    assert message in str(err.value)
