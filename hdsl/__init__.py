"""hdsl: Bayesian hierarchical models from formula text, sampled with vectorized NUTS in JAX.

>>> fit = hdsl.fit("math ~ homework + (1 + homework | schid)", data=df, seed=1)  # doctest: +SKIP
>>> fit.summary()                                                              # doctest: +SKIP
"""

from .api import Fit, Model, default_dtype, fit, load
from .cache import enable_compilation_cache, enable_compilation_cache_from_env
from .compare import ParetoKWarning, WaicWarning, compare
from .crossval import CVResult, cross_validate
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

enable_compilation_cache_from_env()  # opt-in: only when HDSL_CACHE_DIR is set

__all__ = [
    "fit",
    "Model",
    "Fit",
    "load",
    "default_dtype",
    "enable_compilation_cache",
    "compare",
    "cross_validate",
    "CVResult",
    "ParetoKWarning",
    "WaicWarning",
    "HdslError",
    "SpecSyntaxError",
    "FormulaError",
    "FamilyError",
    "DataError",
    "PriorError",
    "SamplingError",
    "__version__",
]
