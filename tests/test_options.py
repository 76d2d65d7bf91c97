"""The sampler's options: one object, checked once, taken by the same names by ``hdsl.fit``, ``Model.sample``,
``hdsl.cross_validate`` and the command line; and the warnings users filter, all exported from ``hdsl``."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
import subprocess
import sys
import typing
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hdsl
from hdsl.inference.options import SamplerKeywords, SamplerOptions
from hdsl.workflow import api, crossval
from hdsl.workflow.cli import add_sampler_flags, main, sampler_options_from_flags

ROOT = Path(__file__).resolve().parents[1]
NAMES = [f.name for f in dataclasses.fields(SamplerOptions)]
SPEC = "y ~ x + (1 | g)"

# each value the sampler cannot run, and the message it gets (the messages of hdsl before the options object)
BAD = [
    ({"chains": 0}, "chains must be a positive whole number, got 0"),
    ({"chains": 2.5}, "chains must be a positive whole number, got 2.5"),
    ({"chains": True}, "chains must be a positive whole number, got True"),
    ({"draws": -5}, "draws must be a positive whole number, got -5"),
    ({"warmup": -1}, "warmup must be a whole number ≥ 0, got -1"),
    ({"target_accept": 1.5}, "target_accept must be between 0 and 1, got 1.5"),
    ({"target_accept": "0.9"}, "target_accept must be between 0 and 1, got '0.9'"),
    ({"max_tree_depth": 0}, "max_tree_depth must be a whole number from 1 to 20, got 0"),
    ({"seed": "1"}, "seed must be a whole number, got '1'"),
    ({"init": "zero"}, "init must be one of 'random', 'pathfinder', got 'zero'"),
    ({"adaptation": "meads"}, "adaptation must be one of 'window', 'stan', 'chees', got 'meads'"),
    ({"pool_adaptation": "no"}, "pool_adaptation must be True or False, got 'no'"),
    ({"chains": 2, "adaptation": "chees"},
     "adaptation='chees' adapts across chains and needs at least 4, got chains=2"),
]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(8), 8)
    return pd.DataFrame({"y": rng.normal(size=g.size) + 0.5 * g, "x": rng.normal(size=g.size),
                         "g": [f"g{i}" for i in g]})


@pytest.fixture(scope="module")
def model(data) -> hdsl.Model:
    return hdsl.Model(SPEC, data)


def _refuse(*_, **__):
    raise AssertionError("reached compilation with a bad option")


# ---- one definition ---------------------------------------------------------------------------------


def test_keywords_are_the_fields_of_the_options_object():
    assert list(SamplerKeywords.__annotations__) == NAMES
    assert typing.get_type_hints(SamplerKeywords) == typing.get_type_hints(SamplerOptions)


@pytest.mark.parametrize("function", [hdsl.fit, hdsl.Model.sample, hdsl.cross_validate])
def test_public_signatures_show_every_option_with_its_default(function):
    params = inspect.signature(function).parameters
    for f in dataclasses.fields(SamplerOptions):
        assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[f.name].default == f.default
    for name in NAMES:  # the docstrings (mkdocstrings reads the source, where they are **options) name them all
        assert name in function.__doc__, name


def test_getting_started_lists_every_option():
    page = (ROOT / "docs/getting-started.md").read_text()
    table = page[page.index("## Sampler options"):]
    for name in NAMES:
        assert f"`{name}`" in table, name


def test_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SamplerOptions().chains = 8


def test_effective_init_and_pooling():
    assert SamplerOptions().effective_init == "random"
    assert SamplerOptions(chains=4, adaptation="chees").effective_init == "pathfinder"
    assert SamplerOptions(init="random", adaptation="chees", chains=4).effective_init == "random"
    assert SamplerOptions().effective_pool_adaptation
    assert not SamplerOptions(pool_adaptation=False).effective_pool_adaptation
    assert not SamplerOptions(adaptation="stan").effective_pool_adaptation


def test_numpy_whole_numbers_and_booleans_are_accepted():
    o = SamplerOptions(chains=np.int64(2), draws=np.int32(5), seed=np.int64(3), pool_adaptation=np.bool_(False))
    assert o.chains == 2 and not o.effective_pool_adaptation


# ---- checked once, the same everywhere, before anything is compiled --------------------------------


@pytest.mark.parametrize("kwargs, message", BAD)
def test_bad_option_same_error_everywhere_before_compiling(kwargs, message, data, model, monkeypatch):
    match = re.escape(message)
    with pytest.raises(hdsl.SamplingError, match=match):
        SamplerOptions(**kwargs)
    monkeypatch.setattr(api, "lower_model", _refuse)
    monkeypatch.setattr(api, "sample_nuts", _refuse)
    monkeypatch.setattr(api, "compile_over_draws", _refuse)
    monkeypatch.setattr(crossval, "parse_spec", _refuse)
    monkeypatch.setattr(crossval, "sample_nuts", _refuse)
    with pytest.raises(hdsl.SamplingError, match=match):
        hdsl.fit(SPEC, data, progress=False, **kwargs)
    with pytest.raises(hdsl.SamplingError, match=match):
        model.sample(progress=False, **kwargs)
    with pytest.raises(hdsl.SamplingError, match=match):
        hdsl.cross_validate(SPEC, data, progress=False, **kwargs)


@pytest.mark.parametrize("flags, message", [
    (["--chains", "0"], "chains must be a positive whole number, got 0"),
    (["--draws", "-5"], "draws must be a positive whole number, got -5"),
    (["--warmup", "-1"], "warmup must be a whole number ≥ 0, got -1"),
    (["--target-accept", "1.5"], "target_accept must be between 0 and 1, got 1.5"),
    (["--max-tree-depth", "21"], "max_tree_depth must be a whole number from 1 to 20, got 21"),
    (["--chains", "2", "--adaptation", "chees"],
     "adaptation='chees' adapts across chains and needs at least 4, got chains=2"),
])
@pytest.mark.parametrize("command", ["fit", "cv"])
def test_cli_bad_option_is_reported_before_reading_the_files(command, flags, message, tmp_path, capsys):
    """The data file does not exist: the option's error comes first."""
    assert main([command, str(tmp_path / "m.hdsl"), "--data", str(tmp_path / "none.csv"), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err


def test_unknown_option_is_a_type_error_with_a_suggestion(data, model):
    with pytest.raises(TypeError, match=r"fit\(\) got an unexpected keyword argument 'chain' — did you mean 'chains'"):
        hdsl.fit(SPEC, data, chain=2)
    with pytest.raises(TypeError, match=r"sample\(\) got an unexpected keyword argument 'pool_metric'"):
        model.sample(pool_metric=False)
    with pytest.raises(TypeError, match=r"cross_validate\(\) got an unexpected keyword argument 'batched'"):
        hdsl.cross_validate(SPEC, data, batched=False)


# ---- the command line builds its flags from the options object -------------------------------------


def test_cli_flags_are_built_from_the_options():
    parser = argparse.ArgumentParser()
    add_sampler_flags(parser)
    assert sampler_options_from_flags(parser.parse_args([])) == SamplerOptions()
    args = parser.parse_args(["--target-accept", "0.95", "--chains", "8", "--max-tree-depth", "12", "--init",
                              "pathfinder", "--adaptation", "stan", "--no-pool-adaptation", "--seed", "3",
                              "--warmup", "10", "--draws", "20"])
    assert sampler_options_from_flags(args) == SamplerOptions(
        chains=8, warmup=10, draws=20, seed=3, target_accept=0.95, max_tree_depth=12, init="pathfinder",
        adaptation="stan", pool_adaptation=False)


@pytest.mark.parametrize("command", ["fit", "cv"])
def test_cli_help_lists_every_option(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    for name in NAMES:
        assert "--" + name.replace("_", "-") in out, name
    assert "--no-pool-adaptation" in out and "--per-chain-adaptation" not in out


# ---- the same options give the same draws, whichever way in ----------------------------------------


def test_fit_and_model_sample_give_the_same_draws(data, model):
    options = {"chains": 2, "warmup": 50, "draws": 30, "seed": 11, "target_accept": 0.85, "max_tree_depth": 8,
               "adaptation": "stan", "pool_adaptation": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hdsl.SamplingWarning)
        a = hdsl.fit(SPEC, data, progress=False, **options)
        b = model.sample(progress=False, **options)
    for v in a.idata["posterior"].data_vars:
        np.testing.assert_array_equal(a.idata["posterior"][v].values, b.idata["posterior"][v].values)
    assert a.idata.attrs["hdsl_seed"] == 11 and a.idata.attrs["hdsl_adaptation"] == "stan"
    assert a.idata.attrs["hdsl_pool_adaptation"] == 0 and a.idata.attrs["hdsl_init"] == "random"


def test_cross_validate_hands_every_option_to_the_sampler(data, monkeypatch):
    seen = []
    real = crossval.sample_nuts

    def spy(log_density, dim, options, *args, **kwargs):
        seen.append(options)
        return real(log_density, dim, options, *args, **kwargs)

    monkeypatch.setattr(crossval, "sample_nuts", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hdsl.SamplingWarning)
        cv = hdsl.cross_validate(SPEC, data, folds=2, baselines=False, progress=False, chains=2, warmup=30, draws=20,
                                 seed=4, adaptation="stan", pool_adaptation=False, target_accept=0.9)
    assert seen == [SamplerOptions(chains=2, warmup=30, draws=20, seed=4, adaptation="stan", pool_adaptation=False,
                                   target_accept=0.9)]
    assert np.isfinite(cv.pointwise["lpd_partial_pooling"]).all()


# ---- warnings ---------------------------------------------------------------------------------------

WARNINGS = ["HdslWarning", "MissingRowsWarning", "GroupingFactorWarning", "SamplingWarning", "ParetoKWarning",
            "WaicWarning"]


@pytest.mark.parametrize("name", WARNINGS)
def test_warnings_are_exported_from_hdsl(name):
    cls = getattr(hdsl, name)
    assert name in hdsl.__all__ and cls.__module__ == "hdsl.errors"
    assert issubclass(cls, hdsl.HdslWarning) and issubclass(cls, UserWarning)


def test_every_warning_class_of_hdsl_is_exported():
    import hdsl.errors

    defined = {n for n, v in vars(hdsl.errors).items() if isinstance(v, type) and issubclass(v, Warning)}
    assert defined == set(WARNINGS)


def test_importing_the_warnings_loads_no_pipeline():
    code = ("import sys, hdsl; hdsl.SamplingWarning, hdsl.MissingRowsWarning, hdsl.ParetoKWarning; "
            "print(sorted(m for m in ('blackjax', 'hdsl.workflow.api', 'hdsl.workflow.model_comparison', "
            "'hdsl.model.design') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
    assert out.strip() == "[]"


def test_the_code_raises_the_exported_warnings(data):
    from hdsl.language.expand import expand_spec
    from hdsl.language.parse import parse_spec
    from hdsl.model.bind import bind_design

    with pytest.warns(hdsl.MissingRowsWarning, match="dropped 1 of 64 rows"):
        bind_design(expand_spec(parse_spec(SPEC)), data.assign(x=data["x"].where(data.index != 0)))
    with pytest.warns(hdsl.GroupingFactorWarning, match="'id' is numeric"):
        bind_design(expand_spec(parse_spec("y ~ x + (1 | id)")), data.assign(id=np.arange(len(data))))
