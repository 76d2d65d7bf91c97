"""The language's whole front end, text → model IR, as one call: what ``hdsl.parse`` is. It imports no JAX,
NumPyro or SciPy, so that a spec can be checked (by an editor, a linter, a test) without the numerics.
"""

from __future__ import annotations

from .expand import expand_spec
from .ir import ModelSpec
from .parse import parse_spec

__all__ = ["parse"]


def parse(text: str) -> ModelSpec:
    """Parse and expand a spec: the model IR, the family resolved to its record (``spec.family.link``,
    ``spec.family.aux``), no data looked at. Raises SpecSyntaxError, FormulaError, FamilyError or
    PriorError, as fitting the spec would.

    >>> import hdsl
    >>> spec = hdsl.parse("count ~ x + (1 | g)\\nfamily: poisson")
    >>> spec.family.name, spec.family.link.value, [t.label for t in spec.predictor.terms]
    ('poisson', 'log', ['x'])
    """
    return expand_spec(parse_spec(text))
