"""One error hierarchy for everything a user can get wrong, rendered by one function, and the warnings
users filter.

Every exception hdsl lets out derives from :class:`HdslError`. Errors about spec text carry a
:class:`Position` and render the offending line with a caret under it; errors about data name the
column. Nothing from lark, pandas or JAX reaches the user raw.

Every warning hdsl gives derives from :class:`HdslWarning` (a ``UserWarning``), so one filter silences or
raises them all; each kind has its own class to filter by (``warnings.simplefilter("ignore",
hdsl.MissingRowsWarning)``). They live here, with no dependency, so that ``import hdsl`` defines them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "HdslError",
    "SpecSyntaxError",
    "FormulaError",
    "DataError",
    "PriorError",
    "FamilyError",
    "SamplingError",
    "HdslWarning",
    "MissingRowsWarning",
    "GroupingFactorWarning",
    "SamplingWarning",
    "ParetoKWarning",
    "WaicWarning",
    "Position",
    "did_you_mean",
]


@dataclass(frozen=True)
class Position:
    """Where a piece of spec text starts: 1-based line and column."""

    line: int
    column: int
    end_column: int | None = None


class HdslError(Exception):
    """Base of every error hdsl raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        position: Position | None = None,
        text: str | None = None,
        hint: str | None = None,
    ):
        self.message = message
        self.position = position
        self.text = text
        self.hint = hint
        super().__init__(render_error(message, position=position, text=text, hint=hint))

    @property
    def line(self) -> int | None:
        return self.position.line if self.position else None

    @property
    def column(self) -> int | None:
        return self.position.column if self.position else None


class SpecSyntaxError(HdslError):
    """The spec text does not parse."""


class FormulaError(HdslError):
    """The spec parses but does not describe a valid model."""


class FamilyError(FormulaError):
    """Unknown family, or a link or auxiliary parameter the family does not have."""


class PriorError(HdslError):
    """A prior statement that names no parameter or makes no sense."""


class DataError(HdslError):
    """The data do not fit the model: missing column, wrong type, values out of support.

    ``column`` is the data column at fault (not a text column, as for spec errors)."""

    # shadows HdslError.column (a place in the spec text) on purpose: a data error is about a data column
    column: str | None = None  # type: ignore[assignment]

    def __init__(self, message: str, *, column: str | None = None, row: object = None, hint: str | None = None):
        self.column = column
        self.row = row
        super().__init__(message, hint=hint)


class SamplingError(HdslError):
    """Bad sampler settings or a model the sampler cannot start."""


class HdslWarning(UserWarning):
    """Base of every warning hdsl gives; filter this to filter them all."""


class MissingRowsWarning(HdslWarning):
    """Rows were dropped because a used column had missing values."""


class GroupingFactorWarning(HdslWarning):
    """A numeric grouping column with about one level per row: probably not a grouping factor."""


class SamplingWarning(HdslWarning):
    """The sampler finished but its output should not be trusted without a look."""


class ParetoKWarning(HdslWarning):
    """Some observations have a Pareto k above 0.7: PSIS-LOO is unreliable for them."""


class WaicWarning(HdslWarning):
    """Some observations have p_waic above 0.4: WAIC is unreliable; use LOO."""


def render_error(
    message: str, *, position: Position | None = None, text: str | None = None, hint: str | None = None
) -> str:
    """Format a message with the source line, a caret under the column, and a hint."""
    out = [message]
    if position is not None:
        out[0] = f"line {position.line}, column {position.column}: {message}"
        if text is not None:
            lines = text.splitlines()
            if 1 <= position.line <= len(lines):
                src = lines[position.line - 1].expandtabs(1)
                width = 1
                if position.end_column and position.end_column > position.column:
                    width = position.end_column - position.column
                out.append(f"    {src}")
                out.append("    " + " " * (position.column - 1) + "^" * width)
    if hint:
        out.append(f"hint: {hint}")
    return "\n".join(out)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' — did you mean 'x'?' for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""
