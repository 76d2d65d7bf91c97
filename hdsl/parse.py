"""Stage 1: spec text → :class:`~hdsl.syntax.SpecTree`.

The grammar lives in ``grammars/hdsl.lark`` (shipped inside the wheel as ``hdsl/grammars``); it is
loaded on first use and cached. Lark's exceptions are turned into :class:`SpecSyntaxError` with the
line, the column, a caret and what was expected, in the characters the user types.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import Indenter

from . import syntax as s
from .errors import HdslError, Position, SpecSyntaxError

__all__ = ["parse_spec", "grammar_text"]

_TOKEN_SPELLING = {
    "TILDE": "'~'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "COLON": "':'",
    "CARET": "'^'",
    "EQUAL": "'='",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "BAR": "'|' or '||'",
    "COMMA": "','",
    "NAME": "a name",
    "QUOTED_NAME": "a `quoted name`",
    "NUMBER": "a number",
    "STRING": "a string",
    "TARGET_ARG": "a group or coefficient name",
    "_NL": "end of line",
    "$END": "end of text",
    "_DEDENT": "end of the block",
    "_INDENT": "an indented line",
    "FAMILY_KW": "'family:'",
    "PRIOR_KW": "'prior:'",
    "PRIORS_KW": "'priors:'",
}


class _SpecIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4


def _grammar_path() -> Path:
    packaged = resources.files("hdsl") / "grammars" / "hdsl.lark"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "grammars" / "hdsl.lark"


def grammar_text() -> str:
    """The grammar source, as shipped."""
    return _grammar_path().read_text()


@functools.cache
def _parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=_SpecIndenter(),
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _pos(meta_or_token) -> Position | None:
    line = getattr(meta_or_token, "line", None)
    column = getattr(meta_or_token, "column", None)
    if line is None or column is None:
        return None
    end_line = getattr(meta_or_token, "end_line", None)
    end_column = getattr(meta_or_token, "end_column", None)
    return Position(line, column, end_column if end_line == line else None)


@v_args(meta=True)
class _ToSyntax(Transformer):
    """Builds syntax nodes; gives them no meaning."""

    def start(self, meta, items):
        formulas = tuple(i for i in items if isinstance(i, s.FormulaLine))
        families = tuple(i for i in items if isinstance(i, s.FamilyLine))
        priors: list[s.PriorLine] = []
        for i in items:
            if isinstance(i, s.PriorLine):
                priors.append(i)
            elif isinstance(i, list):
                priors.extend(i)
        return formulas, families, tuple(priors)

    def formula(self, meta, items):
        (response, addition), _tilde, rhs = items
        return s.FormulaLine(response, addition, rhs, pos=_pos(meta))

    def lhs(self, meta, items):
        response = items[0]
        addition = items[2] if len(items) > 2 else None
        return response, addition

    def binop(self, meta, items):
        left, op, right = items
        return s.BinOp(str(op), left, right, pos=_pos(op))

    def negate(self, meta, items):
        return s.Negate(items[1], pos=_pos(meta))

    def posate(self, meta, items):
        return items[1]

    def variable(self, meta, items):
        return items[0]

    def name(self, meta, items):
        tok = items[0]
        text = str(tok)
        if tok.type == "QUOTED_NAME":
            text = text[1:-1]
        return s.Name(text, pos=_pos(tok))

    def number(self, meta, items):
        tok = items[0]
        return s.Number(float(tok), str(tok), pos=_pos(tok))

    def string(self, meta, items):
        tok = items[0]
        return s.String(str(tok)[1:-1], pos=_pos(tok))

    def paren(self, meta, items):
        return s.Paren(items[1], pos=_pos(meta))

    def group(self, meta, items):
        if len(items) == 5:
            _l, terms, bar, group, _r = items
            return s.Group(terms, str(bar), group, None, pos=_pos(meta))
        _l, terms, bar1, gid, bar2, group, _r = items
        return s.Group(terms, str(bar2), group, gid, pos=_pos(meta))

    def list(self, meta, items):
        inner = tuple(i for i in items[1:-1] if i is not None)
        return s.ListExpr(inner, pos=_pos(meta))

    def call(self, meta, items):
        name, _l, *args, _r = items
        return s.Call(name.name, tuple(a for a in args if a is not None), pos=_pos(meta))

    def keyword(self, meta, items):
        key, _eq, value = items
        return s.Keyword(str(key), value, pos=_pos(key))

    def family_stmt(self, meta, items):
        _kw, name, *rest = items
        args = tuple(a for a in rest if a is not None and not isinstance(a, Token))
        return s.FamilyLine(name.name, args, pos=_pos(name))

    def prior_stmt(self, meta, items):
        return items[1]

    def priors_block(self, meta, items):
        return [i for i in items if isinstance(i, s.PriorLine)]

    def prior_body(self, meta, items):
        (cls, args, cls_pos), _tilde, dist = items
        return s.PriorLine(cls, args, dist, pos=cls_pos)

    def target(self, meta, items):
        cls = items[0]
        args = tuple(a for a in items[1:] if isinstance(a, str) and not isinstance(a, Token))
        return str(cls), args, _pos(cls)

    def target_arg(self, meta, items):
        return str(items[0]).strip()


def _expected(exc: UnexpectedInput) -> str:
    names = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
    spelled = sorted({_TOKEN_SPELLING.get(n, n) for n in names if not n.startswith("__")})
    if not spelled:
        return ""
    if len(spelled) > 8:
        spelled = spelled[:8] + ["..."]
    return "expected " + ", ".join(spelled)


def _syntax_error(exc: UnexpectedInput, text: str) -> SpecSyntaxError:
    line = getattr(exc, "line", None) or 1
    column = getattr(exc, "column", None) or 1
    expected = _expected(exc)
    if isinstance(exc, UnexpectedCharacters):
        char = text.splitlines()[line - 1][column - 1] if line <= len(text.splitlines()) else "?"
        what = f"unexpected character {char!r}"
        if char == "\t":
            what = "unexpected tab"
        elif not char.isascii():
            what = f"unexpected non-ASCII character {char!r}"
    elif isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            what = "unexpected end of text"
            lines = text.splitlines()
            line = len(lines) if lines else 1
            column = len(lines[-1]) + 1 if lines else 1
        elif tok.type == "_NL":
            what = "unexpected end of line"
        elif tok.type == "_DEDENT" or tok.type == "_INDENT":
            what = "unexpected indentation"
        else:
            what = f"unexpected {str(tok)!r}"
    else:  # pragma: no cover - lark has no other kinds today
        what = "syntax error"
    message = what + (f"; {expected}" if expected else "")
    return SpecSyntaxError(message, position=Position(line, column), text=text)


def parse_spec(text: str) -> s.SpecTree:
    """Parse spec text into syntax nodes. Raises :class:`SpecSyntaxError` on bad text."""
    if not isinstance(text, str):
        raise SpecSyntaxError(f"spec must be a string, got {type(text).__name__}")
    if not text.endswith("\n"):
        text_nl = text + "\n"
    else:
        text_nl = text
    try:
        tree = _parser().parse(text_nl)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except lark.exceptions.LarkError as exc:  # indentation errors from the postlexer
        raise SpecSyntaxError(f"bad indentation: {exc}", text=text) from None
    try:
        formulas, families, priors = _ToSyntax().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, HdslError):
            raise exc.orig_exc from None
        raise
    return s.SpecTree(formulas, families, priors, text=text)
