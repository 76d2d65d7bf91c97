"""Write docs/errors.md from the golden error cases: ``python tests/make_error_catalogue.py``.

Each case in tests/golden/bad/ is a spec (NAME.hdsl) and the exact message hdsl gives for it
(NAME.expected); DESCRIPTIONS says in one line what each case gets wrong.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "bad"
DOC = ROOT / "docs" / "errors.md"

CLASSES = [
    ("HdslError", "—", "Base of every error hdsl raises on purpose; catch this to catch them all."),
    ("SpecSyntaxError", "parse", "The text does not parse: line, column, caret, and what was expected."),
    ("FormulaError", "expand, bind", "The text parses but is not a valid model (a number as a term, `^` "
     "with a fraction, an unknown column or function)."),
    ("FamilyError", "expand", "Unknown family, a link the family does not allow, a bad family argument. "
     "A subclass of FormulaError."),
    ("PriorError", "expand, priors", "A prior that names no parameter, repeats one, or has bad arguments."),
    ("DataError", "bind", "The data do not fit the model; names the column."),
    ("SamplingError", "sample", "Bad sampler settings or a model the sampler cannot start."),
]

DESCRIPTIONS = {
    "bad_exponent": "a number with two exponents",
    "bad_grouping_factor": "a function call as the grouping factor of a group term",
    "bad_number": "a number with two decimal points",
    "bar_outside_parens": "a group term written without its parentheses",
    "cens_discrete_family": "`cens()` on the response of a discrete family",
    "continuation_without_parens": "a formula broken over two lines without parentheses",
    "double_bar_in_prior_index": "`||` inside a prior target's index",
    "double_bar_in_prior_target": "`||` in place of a prior target's index",
    "double_operator": "two binary operators in a row",
    "duplicate_prior": "two priors for the same parameter",
    "empty_group_factor": "a group term with nothing after `|`",
    "empty_group_terms": "a group term with nothing before `|`",
    "empty_prior_index": "empty brackets in a prior target",
    "family_extra_argument": "a family with more than one argument",
    "formula_for_missing_parameter": "a second formula for a parameter the family does not have",
    "group_in_interaction": "a group term inside an interaction",
    "inconsistent_indent": "lines of a `priors:` block indented differently",
    "link_not_allowed": "a link the family does not allow",
    "mismatched_bracket": "`(` closed by `]`",
    "missing_family_name": "`family:` with no name",
    "missing_response": "a formula with nothing left of `~`",
    "missing_tilde": "a formula without `~`",
    "nested_group": "a group term inside another group term",
    "nested_too_deeply": "parentheses nested more than 100 levels deep",
    "no_formula": "a spec with no formula line",
    "non_ascii_interaction": "a middle dot used for an interaction",
    "non_ascii_minus": "a Unicode minus sign",
    "non_ascii_name": "a column name with non-ASCII letters, not in backticks",
    "number_as_term": "a number other than 0 or 1 as a term",
    "power_not_integer": "`^` with a fraction",
    "prior_argument_not_number": "a column name as a prior argument",
    "prior_b_without_coefficients": "a `b` prior on a model with no population-level coefficients (needs data)",
    "prior_below_the_bound": "a uniform prior reaching below the bound of `nu` (needs data)",
    "prior_bounded_on_unbounded": "a uniform prior on a coefficient, which can take any value (needs data)",
    "prior_class_of_another_family": "a prior on `sigma` in a family without one",
    "prior_coefficient_not_in_model": "a prior on a column the formula does not use (needs data)",
    "prior_cor_one_effect_per_group": "an `lkj` prior where each group has one effect, so no correlation (needs data)",
    "prior_cor_uncorrelated_group": "an `lkj` prior on a group whose effects are uncorrelated, `||` (needs data)",
    "prior_infinite_argument": "a prior argument too large to be a finite number",
    "prior_intercept_removed": "an `Intercept` prior on a formula without an intercept (needs data)",
    "prior_lkj_on_sd": "an `lkj` prior on standard deviations (needs data)",
    "prior_missing_tilde": "a prior line without `~`",
    "prior_misspelt_coefficient": "a misspelt coefficient in a prior target (needs data)",
    "prior_misspelt_group": "a misspelt grouping factor in a prior target (needs data)",
    "prior_negative_scale": "a negative scale",
    "prior_not_a_distribution": "a number where a prior distribution belongs",
    "prior_not_lkj_on_cor": "a prior other than `lkj` on a correlation (needs data)",
    "prior_positive_on_unbounded": "a positive-only prior on coefficients, which can be negative (needs data)",
    "prior_sigma_modelled": "a `sigma` prior when `sigma` has a formula of its own (needs data)",
    "prior_uniform_bounds": "a uniform prior with lower above upper",
    "prior_unknown_distribution": "a misspelt prior distribution",
    "prior_wrong_arg_count": "a distribution with too many arguments",
    "prior_zero_degrees_of_freedom": "a Student-t prior with zero degrees of freedom",
    "response_only": "a formula that is only a response",
    "se_sigma_not_logical": "`se(s, sigma = …)` with something other than TRUE or FALSE",
    "stray_plus": "a `+` with nothing on its left",
    "tab_before_error": "a tab before the error (the caret still lines up)",
    "tab_in_indent": "a tab in the indentation of a `priors:` block",
    "too_many_indices": "a prior target with more indices than its class takes",
    "trailing_operator": "a formula ending in an operator",
    "two_families": "two `family:` lines",
    "two_tildes": "two `~` on one formula line",
    "unclosed_group": "a group term missing its `)`",
    "unclosed_paren": "a `(` never closed",
    "unclosed_paren_next_line": "a `(` never closed, before another line",
    "unclosed_prior_index": "a prior target's `[` never closed",
    "unexpected_character": "a character hdsl has no use for",
    "unexpected_indent": "an indented line outside a `priors:` block",
    "unknown_column": "a misspelt column (needs data)",
    "unknown_family": "a misspelt family",
    "unknown_function": "a function hdsl does not know (needs data)",
    "unknown_link": "a misspelt link",
    "unknown_prior_class": "a misspelt prior class",
    "unmatched_close_paren": "a `)` with no `(`",
    "unterminated_prior": "a prior line that stops mid-distribution",
}


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _error_class(path: Path) -> str:
    import sys

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from test_errors_golden import error_for

    return type(error_for(path.read_text())).__name__


def catalogue() -> str:
    out = [
        "# Error catalogue",
        "",
        "<!-- generated by tests/make_error_catalogue.py from tests/golden/bad; do not edit by hand -->",
        "",
        "Every error hdsl raises derives from `hdsl.HdslError`; nothing from lark, pandas or JAX reaches you",
        "raw. Errors about the spec text start with `line L, column C:`, show the line with a caret under",
        "the place, say what was expected there, and often end with a `hint:`.",
        "",
        "## Error classes",
        "",
        "| class | raised by | meaning |",
        "|---|---|---|",
    ]
    out += [f"| `{name}` | {stage} | {meaning} |" for name, stage, meaning in CLASSES]
    out += [
        "",
        "## Cases",
        "",
        "Each case is a spec in `tests/golden/bad/NAME.hdsl`; `tests/test_errors_golden.py` checks that hdsl",
        "gives exactly the message below. A spec whose first line is `# data: …` is checked against a",
        "tiny data frame with those columns and a string column `g`.",
        "",
    ]
    for path in sorted(GOLDEN.glob("*.hdsl")):
        name = path.stem
        expected = path.with_suffix(".expected")
        out += [
            f"### `{name}`: {DESCRIPTIONS.get(name) or '(undescribed)'}",
            "",
            f"`{_error_class(path)}`",
            "",
            "```",
            path.read_text().rstrip("\n"),
            "```",
            "",
            "```text",
            expected.read_text().rstrip("\n") if expected.exists() else "(no expected message yet)",
            "```",
            "",
        ]
    return "\n".join(out)


if __name__ == "__main__":
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(catalogue())
    print(f"wrote {DOC.relative_to(ROOT)}")
