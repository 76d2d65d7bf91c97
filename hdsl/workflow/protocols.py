"""What the post-fit modules (predictions, the prior predictive, model comparison, figures) read of a model
and a fit, as Protocols: they depend on these shapes, not on :mod:`hdsl.workflow.api`, whose ``Model`` and
``Fit`` call them, so the workflow's modules import one another without a cycle."""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from ..language.ir import ModelSpec
from ..model.design import BoundDesign
from ..model.lower import LoweredModel
from ..model.naming import NamingTable
from ..model.priors import PriorTable

__all__ = ["CompiledModel", "Posterior"]


class CompiledModel(Protocol):
    """A spec bound to its training data and lowered (``hdsl.Model``); read-only here."""

    @property
    def spec(self) -> ModelSpec: ...
    @property
    def design(self) -> BoundDesign: ...
    @property
    def priors(self) -> PriorTable: ...
    @property
    def lowered(self) -> LoweredModel: ...
    @property
    def naming(self) -> NamingTable: ...
    @property
    def data(self) -> pd.DataFrame:
        """The training data as given."""
    @property
    def parameter_names(self) -> list[str]: ...


class Posterior(Protocol):
    """A fit (``hdsl.Fit``): the ArviZ DataTree and the model it came from (None after ``hdsl.load`` without
    data)."""

    @property
    def idata(self) -> Any: ...
    @property
    def model(self) -> CompiledModel | None: ...
    @property
    def parameter_names(self) -> list[str]: ...
