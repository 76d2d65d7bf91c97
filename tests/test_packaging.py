"""The wheel ships the grammar inside the package and parses with it when installed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_and_loads_the_grammar(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {out.stderr[-500:]}")
    wheel = next(tmp_path.glob("hdsl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "hdsl/grammars/hdsl.lark" in names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = ("import hdsl, hdsl.parse as p; t = p.parse_spec('y ~ x + (1 | g)'); "
            "print(p._grammar_path())")
    env = dict(os.environ, PYTHONPATH=str(target))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert str(target) in run.stdout  # the packaged grammar, not the source tree's
