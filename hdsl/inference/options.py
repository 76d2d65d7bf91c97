"""The sampler's options: one frozen dataclass, checked once, when it is made.

``hdsl.fit``, ``Model.sample``, ``hdsl.cross_validate`` and the ``hdsl`` command take these options as
keywords of the same names, and :func:`~hdsl.inference.sample.sample_nuts` takes the object. The public
functions declare them once, as ``**options: Unpack[SamplerKeywords]`` (type checkers and IDEs check the
names and types; :func:`expand_sampler_keywords` shows them with their defaults to ``help()``), and turn
them into a :class:`SamplerOptions` with :meth:`SamplerOptions.from_keywords` before anything is compiled.
The command line builds its flags from the fields and the object from its flags
(:func:`hdsl.workflow.cli.add_sampler_flags`, :func:`hdsl.workflow.cli.sampler_options_from_flags`).

These are exactly the settings that, with the model and the data, decide the draws: ``progress`` (what is
printed) and ``dtype`` (fixed when the model is compiled) are not among them.

This module imports no JAX: the command line reads it to build its flags.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Real
from typing import Literal, TypedDict, get_args, get_type_hints

import numpy as np

from ..errors import SamplingError, did_you_mean

__all__ = ["SamplerOptions", "SamplerKeywords", "InitKind", "Adaptation", "expand_sampler_keywords",
           "INIT_KINDS", "ADAPTATIONS", "CHEES_MIN_CHAINS"]

InitKind = Literal["random", "pathfinder"]
# "window": Stan's windows with early Fisher windows and a scale-relative shrinkage, then NUTS;
# "stan": exactly Stan's windows, then NUTS; "chees": ChEES, then jittered dynamic HMC
Adaptation = Literal["window", "stan", "chees"]
INIT_KINDS: tuple[str, ...] = get_args(InitKind)
ADAPTATIONS: tuple[str, ...] = get_args(Adaptation)
CHEES_MIN_CHAINS = 4
MAX_TREE_DEPTH = 20  # the largest max_tree_depth accepted: 2**20 leapfrog steps per draw


def _is_whole(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


@dataclass(frozen=True)
class SamplerOptions:
    """How the posterior is sampled; the keywords of ``hdsl.fit``, ``Model.sample`` and ``hdsl.cross_validate``.

    A value the sampler cannot run is a :class:`~hdsl.errors.SamplingError` naming the option and the value,
    raised when the object is made, before anything is compiled. ``docs/getting-started.md`` ("Sampler
    options") explains ``init``, ``adaptation`` and ``pool_adaptation``.

    >>> SamplerOptions(chains=8, adaptation="stan").warmup
    1000
    """

    chains: int = field(default=4, metadata={"help": "number of chains, all run in one vectorized program"})
    warmup: int = field(default=1000, metadata={"help": "warmup (adaptation) steps per chain"})
    draws: int = field(default=1000, metadata={"help": "draws kept per chain after warmup"})
    seed: int = field(default=0, metadata={"help": "random seed: the same seed gives the same draws"})
    target_accept: float = field(default=0.8, metadata={
        "help": "target acceptance rate of the step size adaptation; raise it (0.95) when transitions diverge"})
    max_tree_depth: int = field(default=10, metadata={
        "help": "NUTS's tree depth bound (ChEES: at most 2**max_tree_depth leapfrog steps)"})
    init: InitKind | None = field(default=None, metadata={
        "help": "starting points (default: pathfinder with adaptation chees, else random)"})
    adaptation: Adaptation = field(default="window", metadata={
        "help": "window: Stan's windows with early scale-finding windows + NUTS; stan: exactly Stan's warmup "
                "+ NUTS; chees: ChEES across chains + jittered HMC (many chains)"})
    pool_adaptation: bool = field(default=True, metadata={
        "help": "'window' adaptation only: estimate each warmup window's mass matrix from all chains' draws "
                "together (off: from each chain's own, as Stan does)"})

    def __post_init__(self) -> None:
        for name in ("chains", "draws"):
            v = getattr(self, name)
            if not _is_whole(v) or v < 1:
                raise SamplingError(f"{name} must be a positive whole number, got {v!r}")
        if not _is_whole(self.warmup) or self.warmup < 0:
            raise SamplingError(f"warmup must be a whole number ≥ 0, got {self.warmup!r}")
        if not isinstance(self.target_accept, Real) or isinstance(self.target_accept, bool) \
                or not 0.0 < self.target_accept < 1.0:
            raise SamplingError(f"target_accept must be between 0 and 1, got {self.target_accept!r}")
        if not _is_whole(self.max_tree_depth) or not 1 <= self.max_tree_depth <= MAX_TREE_DEPTH:
            raise SamplingError(f"max_tree_depth must be a whole number from 1 to {MAX_TREE_DEPTH}, "
                                f"got {self.max_tree_depth!r}")
        if not _is_whole(self.seed):
            raise SamplingError(f"seed must be a whole number, got {self.seed!r}")
        if self.init is not None and self.init not in INIT_KINDS:
            raise SamplingError(f"init must be one of {', '.join(map(repr, INIT_KINDS))}, got {self.init!r}")
        if self.adaptation not in ADAPTATIONS:
            raise SamplingError(f"adaptation must be one of {', '.join(map(repr, ADAPTATIONS))}, "
                                f"got {self.adaptation!r}")
        if not isinstance(self.pool_adaptation, bool | np.bool_):
            raise SamplingError(f"pool_adaptation must be True or False, got {self.pool_adaptation!r}")
        if self.adaptation == "chees" and self.chains < CHEES_MIN_CHAINS:
            raise SamplingError(f"adaptation='chees' adapts across chains and needs at least {CHEES_MIN_CHAINS}, "
                                f"got chains={self.chains}", hint="use chains=16 or more (it is made for many)")

    @classmethod
    def from_keywords(cls, keywords: SamplerKeywords, caller: str) -> SamplerOptions:
        """The options a public function received as ``**options``. A name that is no option is the
        ``TypeError`` Python gives for an unexpected keyword (the signatures used to list them one by one)."""
        for name in keywords:
            if name not in OPTION_NAMES:
                raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}"
                                f"{did_you_mean(name, OPTION_NAMES)}")
        return cls(**keywords)

    @property
    def effective_init(self) -> InitKind:
        """The starting points used: ``init``, or by default Pathfinder's for ChEES and random ones otherwise."""
        return self.init or ("pathfinder" if self.adaptation == "chees" else "random")

    @property
    def effective_pool_adaptation(self) -> bool:
        """Whether the warmup estimates one metric from all chains: ``pool_adaptation``, which only hdsl's
        window adaptation does (the attribute ``hdsl_pool_adaptation`` of a fit)."""
        return bool(self.pool_adaptation) and self.adaptation == "window"


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SamplerOptions))


class SamplerKeywords(TypedDict, total=False):
    """The fields of :class:`SamplerOptions` as keywords: ``**options: Unpack[SamplerKeywords]`` lets type
    checkers and IDEs check each name and type (``tests/test_options.py`` keeps the two in step)."""

    chains: int
    warmup: int
    draws: int
    seed: int
    target_accept: float
    max_tree_depth: int
    init: InitKind | None
    adaptation: Adaptation
    pool_adaptation: bool


def expand_sampler_keywords[F: Callable](fn: F) -> F:
    """Show ``**options`` as the keyword parameters it stands for, with their defaults, in
    ``inspect.signature(fn)``: what ``help()``, Jupyter and IDEs that inspect live objects display."""
    signature = inspect.signature(fn)
    own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    types = get_type_hints(SamplerOptions)
    expanded = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=types[f.name])
                for f in dataclasses.fields(SamplerOptions)]
    fn.__signature__ = signature.replace(parameters=own + expanded)  # type: ignore[attr-defined]  # PEP 362
    return fn
