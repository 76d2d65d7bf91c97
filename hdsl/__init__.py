"""hdsl: Bayesian hierarchical models from formula text, sampled with vectorized NUTS in JAX.

>>> fit = hdsl.fit("math ~ homework + (1 + homework | schid)", data=df, seed=1)  # doctest: +SKIP
>>> fit.summary()                                                              # doctest: +SKIP
"""

import importlib
from typing import TYPE_CHECKING

from .errors import (
    DataError,
    FamilyError,
    FormulaError,
    GroupingFactorWarning,
    HdslError,
    HdslWarning,
    MissingRowsWarning,
    ParetoKWarning,
    PriorError,
    SamplingError,
    SamplingWarning,
    SpecSyntaxError,
    WaicWarning,
)
from .inference.cache import enable_compilation_cache, enable_compilation_cache_from_env
from .inference.distributed import initialize_distributed, initialize_distributed_from_env

__version__ = "0.1.0"

enable_compilation_cache_from_env()  # opt-in: only when HDSL_CACHE_DIR is set
initialize_distributed_from_env()  # opt-in: only when HDSL_COORDINATOR is set

# The pipeline is imported on first use, not here: BlackJAX runs JAX code when imported, after which
# jax.distributed can no longer be initialized, and `import hdsl; hdsl.initialize_distributed(...)`
# must work.
_LAZY = {
    "parse": "language.frontend",
    "fit": "workflow.api", "Model": "workflow.api", "Fit": "workflow.api", "load": "workflow.api",
    "default_dtype": "inference.precision", "SamplerOptions": "inference.options",
    "compare": "workflow.model_comparison",
    "cross_validate": "workflow.crossval", "CVResult": "workflow.crossval",
}


if TYPE_CHECKING:
    from .inference.options import SamplerOptions
    from .inference.precision import default_dtype
    from .language.frontend import parse
    from .workflow.api import Fit, Model, fit, load
    from .workflow.crossval import CVResult, cross_validate
    from .workflow.model_comparison import compare


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    else:
        try:  # a submodule (hdsl.plots, hdsl.datasets, hdsl.language, ...)
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

__all__ = [
    "parse",
    "fit",
    "Model",
    "Fit",
    "load",
    "default_dtype",
    "SamplerOptions",
    "enable_compilation_cache",
    "compare",
    "cross_validate",
    "initialize_distributed",
    "CVResult",
    "HdslError",
    "SpecSyntaxError",
    "FormulaError",
    "FamilyError",
    "DataError",
    "PriorError",
    "SamplingError",
    "HdslWarning",
    "MissingRowsWarning",
    "GroupingFactorWarning",
    "SamplingWarning",
    "ParetoKWarning",
    "WaicWarning",
    "__version__",
]
