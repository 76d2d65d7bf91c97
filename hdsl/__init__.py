"""hdsl: Bayesian hierarchical models from formula text, sampled with vectorized NUTS in JAX.

>>> fit = hdsl.fit("math ~ homework + (1 + homework | schid)", data=df, seed=1)  # doctest: +SKIP
>>> fit.summary()                                                              # doctest: +SKIP
"""

from .api import Fit, Model, default_dtype, fit, load
from .errors import (
    DataError,
    FamilyError,
    FormulaError,
    HdslError,
    PriorError,
    SamplingError,
    SpecSyntaxError,
)

__version__ = "0.1.0"

__all__ = [
    "fit",
    "Model",
    "Fit",
    "load",
    "default_dtype",
    "HdslError",
    "SpecSyntaxError",
    "FormulaError",
    "FamilyError",
    "DataError",
    "PriorError",
    "SamplingError",
    "__version__",
]
