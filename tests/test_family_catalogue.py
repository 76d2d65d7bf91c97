"""The family and prior catalogues (hdsl.language: metadata, no JAX) agree with their numerics
(hdsl.model): every family and distribution has both, each link has an inverse, censoring, categories and
additions are backed by the functions they need, and every default prior is valid for its parameter."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdsl
from hdsl.language.distributions import PRIOR_DISTRIBUTIONS, Support
from hdsl.language.expand import expand_spec
from hdsl.language.families import ALIASES, FAMILIES, Addition, Categories, Link, PriorScale, family_named
from hdsl.language.parse import parse_spec
from hdsl.model.default_priors import default_aux_prior
from hdsl.model.distributions import PRIOR_NUMERICS, truncation_log_mass
from hdsl.model.families import FAMILY_NUMERICS, numerics_for
from hdsl.model.links import inverse_link

jax.config.update("jax_enable_x64", True)

ETA = jnp.linspace(-6.0, 6.0, 25)
RESPONSES = [np.array([0.0, 1.0, 3.0, 8.0, 20.0, 2.0]), np.exp(np.linspace(0.0, 12.0, 101)), np.array([0.5])]


def test_every_family_has_numerics_and_every_numerics_a_family():
    assert list(FAMILY_NUMERICS) == list(FAMILIES)
    for family in FAMILIES.values():
        assert numerics_for(family).family is family
        for link in family.links:
            assert numerics_for(family.with_link(link)) is numerics_for(family)


def test_names_and_aliases_give_one_record():
    for name in [*FAMILIES, *ALIASES]:
        family = family_named(name)
        assert family is FAMILIES[ALIASES.get(name, name)]
    with pytest.raises(hdsl.FamilyError, match="did you mean 'poisson'"):
        family_named("poison")


def test_the_catalogue_lists_each_family_once_at_its_default_link():
    for family in FAMILIES.values():
        assert family.link is family.default_link is family.links[0]
        assert len(set(family.links)) == len(family.links)
        assert len({a.name for a in family.aux}) == len(family.aux)
        assert set(family.required_additions) <= set(family.additions)
        assert Addition.WEIGHTS in family.additions
    with pytest.raises(ValueError, match="does not allow"):
        FAMILIES["gaussian"].with_link(Link.LOGIT)


@pytest.mark.parametrize("link", list(Link))
def test_every_link_has_a_finite_inverse(link):
    mu = np.asarray(inverse_link(link)(ETA + 7.0 if link in (Link.INVERSE, Link.SQRT) else ETA))
    assert mu.shape == ETA.shape and np.all(np.isfinite(mu))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_metadata_and_numerics_agree(name):
    family, numerics = FAMILIES[name], FAMILY_NUMERICS[name]
    # families not written through mu are exactly the categorical ones, and they compute under every link
    assert (numerics.on_eta is not None) == (family.categories is not None)
    assert (numerics.log_lik is None) == (numerics.sample is None) == (family.categories is not None)
    for link in family.links if numerics.on_eta is not None else ():
        assert all(callable(f) for f in numerics.on_eta(link))
    # cens() is accepted exactly where the CDF and survival function exist
    assert (Addition.CENS in family.additions) == (numerics.log_cdf is not None) == (numerics.log_sf is not None)
    assert set(numerics.eta_log_lik) <= set(family.links)
    assert family.prior_link is None or family.prior_link in Link
    # the compatibility interface reads the record
    assert (numerics.name, numerics.links, numerics.discrete, numerics.categories) == \
        (family.name, family.links, family.discrete, family.categories)
    assert tuple(a.name for a in numerics.aux) == family.aux_names


def test_categories_and_trials_where_brms_has_them():
    assert {n for n, f in FAMILIES.items() if f.categories is Categories.ORDERED} == {"cumulative"}
    assert {n for n, f in FAMILIES.items() if f.categories is Categories.NOMINAL} == {"categorical"}
    assert {n for n, f in FAMILIES.items() if f.required_additions} == {"binomial"}
    assert [n for n, f in FAMILIES.items() if f.linear_gaussian] == ["gaussian"]
    assert not FAMILIES["gaussian"].with_link(Link.LOG).linear_gaussian


def _fits_support(dist: str, args: tuple[float, ...], lower: float, upper: float) -> bool:
    """Whether a prior can be put on a parameter with these bounds (as the priors stage allows it)."""
    support = PRIOR_DISTRIBUTIONS[dist].support
    if support is Support.REAL:
        return truncation_log_mass(PRIOR_DISTRIBUTIONS[dist], args, lower, upper) > -math.inf
    if support is Support.POSITIVE:
        return lower >= 0.0
    if support is Support.INTERVAL:
        lo, hi = args if dist == "uniform" else (0.0, 1.0)
        return lower <= lo and hi <= upper
    return False


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_default_prior_is_valid_for_its_parameter(name):
    for aux in FAMILIES[name].aux:
        assert aux.lower < aux.upper
        written = aux.default_prior
        assert PRIOR_DISTRIBUTIONS[written.name].accepts(written), (name, aux.name)
        if aux.prior_scale is not PriorScale.FIXED:
            assert PRIOR_DISTRIBUTIONS[written.name].params[-1] in PRIOR_DISTRIBUTIONS[written.name].positive
        for y in RESPONSES:
            prior = default_aux_prior(aux, y)
            assert PRIOR_DISTRIBUTIONS[prior.name].accepts(prior), (name, aux.name, prior)
            assert _fits_support(prior.name, prior.args, aux.lower, aux.upper), (name, aux.name, prior)
        # a parameter's own formula (sigma ~ x) maps every linear predictor into its support
        value = np.asarray(inverse_link(aux.link)(ETA))
        assert np.all((value >= aux.lower) & (value <= aux.upper)), (name, aux.name)


def test_every_prior_distribution_has_numerics():
    assert list(PRIOR_NUMERICS) == list(PRIOR_DISTRIBUTIONS)
    for name, d in PRIOR_DISTRIBUTIONS.items():
        numerics = PRIOR_NUMERICS[name]
        assert numerics.distribution is d
        example = expand_spec(parse_spec(f"y ~ x\nprior: b ~ {d.example}")).priors[0].distribution
        assert example.name == name and d.accepts(example)
        if d.support is Support.REAL and name != "flat":
            assert numerics.cdf is not None, name
        if numerics.build is None:
            assert name in ("flat", "lkj")
            continue
        dist = numerics.build(*(jnp.asarray(a) for a in example.args))
        point = {Support.REAL: 0.3, Support.POSITIVE: 0.7, Support.INTERVAL: 0.6}[d.support]
        assert np.isfinite(float(dist.log_prob(jnp.asarray(point)))), name


def test_argument_checks_name_the_argument():
    normal, uniform = PRIOR_DISTRIBUTIONS["normal"], PRIOR_DISTRIBUTIONS["uniform"]
    assert normal.argument_error((0.0, 1.0)) is None
    assert normal.argument_error((0.0, -1.0)) == "normal: sigma must be positive, got -1"
    assert normal.argument_error((math.inf, 1.0)) == "normal: mu must be a finite number, got inf"
    assert uniform.argument_error((2.0, 1.0)) == "uniform: lower (2) must be below upper (1)"
