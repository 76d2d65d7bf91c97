"""Stage 1: spec text → :class:`~hdsl.syntax.SpecTree`.

The grammar lives in ``grammars/hdsl.lark`` (shipped inside the wheel as ``hdsl/grammars``); it is
loaded on first use and cached, and built with ``strict=True`` so that a terminal collision or a
shift/reduce conflict is an error when the grammar is built, not a surprise in some spec. Lark's
exceptions are turned into :class:`SpecSyntaxError` with the line, the column, a caret and what was
expected, in the characters the user types.

The syntax tree is built without recursion, and no expression in it is nested more than
:data:`MAX_NESTING` levels deep (a sum of terms in a formula may be any length): every later stage
walks expressions recursively, and Python's stack is a limit users must meet as a clear error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import Indenter
from lark.tree import Meta

from ..errors import Position, SpecSyntaxError
from . import syntax as s

__all__ = ["parse_spec", "grammar_text", "grammar_path", "MAX_NESTING"]

#: How many levels an expression may nest: parentheses, brackets, calls, unary minus and operators inside
#: one another. A sum of terms in a formula (``a + b + … - c``) counts one level however long it is.
MAX_NESTING = 100

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
    "BAR": "'|'",
    "COMMA": "','",
    "NAME": "a name",
    "QUOTED_NAME": "a `quoted name`",
    "NUMBER": "a number",
    "STRING": "a string",
    "TARGET_INDEX": "an index such as [x] or [g, Intercept]",
    "_NL": "end of line",
    "$END": "end of text",
    "_DEDENT": "end of the block",
    "_INDENT": "an indented line",
    "FAMILY_KW": "'family:'",
    "PRIOR_KW": "'prior:'",
    "PRIORS_KW": "'priors:'",
}
_OPERAND = {"NAME", "QUOTED_NAME", "NUMBER", "STRING", "LPAR", "LSQB"}
_OPERATORS = ("PLUS", "MINUS", "STAR", "SLASH", "COLON", "CARET")
_OPERATOR_TEXT = ("+", "-", "*", "/", ":", "^", "~", "|", ",")
_LOOKALIKES = {
    "·": "for an interaction write ':' (or '*' for main effects and interaction)",
    "×": "for an interaction write ':' (or '*' for main effects and interaction)",
    "∗": "write '*'",
    "−": "write an ASCII minus '-'",
    "–": "write an ASCII minus '-'",
    "—": "write an ASCII minus '-'",
    "‘": "quote names with backticks: `my name`",
    "’": "quote names with backticks: `my name`",
    "“": "quote names with backticks: `my name`",
    "”": "quote names with backticks: `my name`",
    "∼": "write an ASCII tilde '~'",
}


class _IndentProblem(Exception):
    """Raised by the postlexer; turned into a SpecSyntaxError with a position."""

    def __init__(self, message: str, line: int, column: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.hint = hint


class _SpecIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4

    def handle_NL(self, token: Token) -> Iterator[Token]:
        if self.paren_level > 0:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        line = (token.end_line or token.line or 1)
        if "\t" in indent_str:
            raise _IndentProblem("tab in indentation", line, indent_str.index("\t") + 1,
                                 hint="indent the lines of a 'priors:' block with spaces")
        indent = len(indent_str)
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
            return
        if indent not in self.indent_level:
            raise _IndentProblem(
                f"inconsistent indentation: this line is indented by {indent} spaces, the line above "
                f"by {self.indent_level[-1]}", line, indent + 1,
                hint="indent every line of a 'priors:' block by the same amount")
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)


def grammar_path() -> Path:
    """Where the grammar is read from: inside the installed package (a wheel ships it as
    ``hdsl/grammars/hdsl.lark``), else the source tree's ``grammars/``."""
    packaged = resources.files("hdsl") / "grammars" / "hdsl.lark"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "grammars" / "hdsl.lark"


def grammar_text() -> str:
    """The grammar source, as shipped."""
    return grammar_path().read_text()


@functools.cache
def _parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=_SpecIndenter(),
        propagate_positions=True,
        maybe_placeholders=True,
        strict=True,
    )


def _pos(meta_or_token: Meta | Token) -> Position | None:
    line = getattr(meta_or_token, "line", None)
    column = getattr(meta_or_token, "column", None)
    if line is None or column is None:
        return None
    end_line = getattr(meta_or_token, "end_line", None)
    end_column = getattr(meta_or_token, "end_column", None)
    return Position(line, column, end_column if end_line == line else None)


_Target = tuple[str, tuple[str, ...], Position | None, Position | None]


@v_args(meta=True)
class _ToSyntax(Transformer_NonRecursive[Token, tuple[Any, ...]]):
    """Builds syntax nodes; gives them no meaning. Non-recursive: a spec nested thousands of levels deep
    reaches :func:`_too_deep` and its clear error, not Python's recursion limit."""

    def start(self, meta: Meta, items: list[Any]) -> tuple[Any, ...]:
        formulas = tuple(i for i in items if isinstance(i, s.FormulaLine))
        families = tuple(i for i in items if isinstance(i, s.FamilyLine))
        priors: list[s.PriorLine] = []
        for i in items:
            if isinstance(i, s.PriorLine):
                priors.append(i)
            elif isinstance(i, list):
                priors.extend(i)
        return formulas, families, tuple(priors)

    def formula(self, meta: Meta, items: list[Any]) -> s.FormulaLine:
        (response, addition), _tilde, rhs = items
        return s.FormulaLine(response, addition, rhs, pos=_pos(meta))

    def lhs(self, meta: Meta, items: list[Any]) -> tuple[s.Expr, s.Expr | None]:
        response = items[0]
        addition = items[2] if len(items) > 2 else None
        return response, addition

    def binop(self, meta: Meta, items: list[Any]) -> s.BinOp:
        left, op, right = items
        return s.BinOp(str(op), left, right, pos=_pos(op))

    def negate(self, meta: Meta, items: list[Any]) -> s.Negate:
        return s.Negate(items[1], pos=_pos(meta))

    def variable(self, meta: Meta, items: list[Any]) -> s.Name:
        name: s.Name = items[0]
        return name

    def name(self, meta: Meta, items: list[Token]) -> s.Name:
        tok = items[0]
        text = str(tok)
        if tok.type == "QUOTED_NAME":
            text = text[1:-1]
        return s.Name(text, pos=_pos(tok))

    def number(self, meta: Meta, items: list[Token]) -> s.Number:
        tok = items[0]
        return s.Number(float(tok), str(tok), pos=_pos(tok))

    def string(self, meta: Meta, items: list[Token]) -> s.String:
        tok = items[0]
        return s.String(str(tok)[1:-1], pos=_pos(tok))

    def paren(self, meta: Meta, items: list[Any]) -> s.Paren:
        return s.Paren(items[1], pos=_pos(meta))

    def group(self, meta: Meta, items: list[Any]) -> s.Group:
        if len(items) == 5:
            _l, terms, bar, group, _r = items
            return s.Group(terms, str(bar), group, None, pos=_pos(meta))
        _l, terms, bar1, gid, bar2, group, _r = items
        return s.Group(terms, str(bar2), group, gid, pos=_pos(meta))

    def list_expr(self, meta: Meta, items: list[Any]) -> s.ListExpr:
        inner = tuple(i for i in items[1:-1] if i is not None)
        return s.ListExpr(inner, pos=_pos(meta))

    def call(self, meta: Meta, items: list[Any]) -> s.Call:
        name, _l, *args, _r = items
        return s.Call(name.name, tuple(a for a in args if a is not None), pos=_pos(meta))

    def keyword(self, meta: Meta, items: list[Any]) -> s.Keyword:
        key, _eq, value = items
        return s.Keyword(str(key), value, pos=_pos(key))

    def family_stmt(self, meta: Meta, items: list[Any]) -> s.FamilyLine:
        _kw, name, *rest = items
        args = tuple(a for a in rest if a is not None and not isinstance(a, Token))
        return s.FamilyLine(name.name, args, pos=name.pos)

    def prior_stmt(self, meta: Meta, items: list[Any]) -> s.PriorLine:
        line: s.PriorLine = items[1]
        return line

    def priors_block(self, meta: Meta, items: list[Any]) -> list[s.PriorLine]:
        return [i for i in items if isinstance(i, s.PriorLine)]

    def prior_body(self, meta: Meta, items: list[Any]) -> s.PriorLine:
        (cls, args, cls_pos, index_pos), _tilde, dist = items
        return s.PriorLine(cls, args, dist, pos=cls_pos, index_pos=index_pos)

    def target(self, meta: Meta, items: list[Token | None]) -> _Target:
        cls, index = items[0], items[1] if len(items) > 1 else None
        assert cls is not None  # the grammar requires the class name
        if index is None:
            return str(cls), (), _pos(cls), None
        args = tuple(a.strip() for a in str(index)[1:-1].split(","))
        return str(cls), args, _pos(cls), _pos(index)


_SUM_OPS = ("+", "-")
# one entry of the walk in _too_deep: an expression, its nesting level, and whether it sits where a formula
# lists terms (there a chain of '+' and '-' is one level: expand walks it with a loop, not recursion)
_Visit = tuple[s.Expr, int, bool]


def _nested(e: s.Expr, level: int, in_sum: bool) -> list[_Visit]:
    """The expressions directly inside ``e``, each with its nesting level."""
    inner = level + 1
    match e:
        case s.BinOp(op=op, left=left, right=right) if in_sum and op in _SUM_OPS:
            chain = isinstance(left, s.BinOp) and left.op in _SUM_OPS
            return [(left, level if chain else inner, True), (right, inner, True)]
        case s.BinOp(left=left, right=right):
            return [(left, inner, in_sum), (right, inner, in_sum)]
        case s.Paren(inner=x):
            return [(x, inner, in_sum)]
        case s.Negate(operand=x) | s.Keyword(value=x):
            return [(x, inner, False)]
        case s.Call(args=items) | s.ListExpr(items=items):
            return [(x, inner, False) for x in items]
        case s.Group(terms=terms, group=group, id=gid):
            return [(x, inner, False) for x in (terms, gid, group) if x is not None]
    return []


def _start(e: s.Expr) -> Position | None:
    """Where an expression starts, as one character: a caret under the whole of a deep expression helps no one."""
    pos: Position | None = getattr(e, "pos", None)
    return Position(pos.line, pos.column) if pos is not None else None


def _too_deep(tree: s.SpecTree) -> s.Expr | None:
    """The first expression (in reading order) nested more than :data:`MAX_NESTING` levels deep, or None."""
    roots: list[_Visit] = []
    for f in tree.formulas:
        roots += [(f.response, 1, False)] + ([(f.addition, 1, False)] if f.addition else []) + [(f.rhs, 1, True)]
    for family in tree.families:
        roots += [(a, 1, False) for a in family.args]
    roots += [(p.distribution, 1, False) for p in tree.priors]
    stack = roots[::-1]
    while stack:
        e, level, in_sum = stack.pop()
        if level > MAX_NESTING:
            return e
        stack += _nested(e, level, in_sum)[::-1]
    return None


def _context(line_text: str, column: int) -> str:
    """What is being written at the error: 'family', 'target', 'distribution', 'args' or 'formula'."""
    stripped = line_text.lstrip()
    head = stripped.split(":", 1)[0].strip() if ":" in stripped else ""
    if head == "family":
        return "family"
    is_prior = head in ("prior", "priors") or (line_text[:1] in (" ", "\t") and "~" in line_text
                                              and "(" in line_text.split("~", 1)[1])
    if not is_prior:
        return "formula"
    tilde = line_text.find("~")
    if tilde < 0 or column <= tilde + 1:
        return "target"
    paren = line_text.find("(", tilde)
    return "distribution" if paren < 0 or column <= paren + 1 else "args"


_OPERAND_PHRASE = {
    "formula": "a term (a name, a number or '(')",
    "family": "a family name such as gaussian",
    "target": "a parameter such as b, sd or sigma",
    "distribution": "a distribution such as normal(0, 5)",
    "args": "a number",
}


def _expected(names: set[str], context: str) -> str:
    """'expected …' in the characters users type, grouping what lark lists terminal by terminal."""
    names = set(names)
    parts: list[str] = []
    if names & {"NAME", "NUMBER", "LPAR"} and ("NAME" in names or "NUMBER" in names):
        parts.append(_OPERAND_PHRASE[context])
        names -= _OPERAND | {"MINUS"}
    ops = [n for n in _OPERATORS if n in names]
    if len(ops) >= 3:
        parts.append("an operator (" + " ".join(_TOKEN_SPELLING[n].strip("'") for n in ops) + ")")
        names -= set(ops)
    if "_NL" in names or "$END" in names:
        names -= {"_NL", "$END"}
        tail = ["end of line"]
    else:
        tail = []
    if names & {"_DEDENT", "_INDENT"} and parts + tail:
        names -= {"_DEDENT", "_INDENT"}
    if context == "formula" and "TILDE" in names and "FAMILY_KW" in names:
        names -= {"FAMILY_KW", "PRIOR_KW", "PRIORS_KW"}
    order = list(_TOKEN_SPELLING)
    rest = sorted((n for n in names if not n.startswith("__")),
                  key=lambda n: order.index(n) if n in order else len(order))
    parts += [_TOKEN_SPELLING.get(n, n) for n in rest] + tail
    if not parts:
        return ""
    if len(parts) == 1:
        return "expected " + parts[0]
    return "expected " + ", ".join(parts[:-1]) + " or " + parts[-1]


def _bracket_problem(text: str) -> tuple[str, Position, bool] | None:
    """The first unmatched ')' or ']', or the innermost '(' or '[' never closed (flag True)."""
    pairs = {"(": ")", "[": "]"}
    stack: list[tuple[str, int, int]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        quote = None
        for i, ch in enumerate(line):
            if quote:
                quote = None if ch == quote else quote
            elif ch in "\"'`":
                quote = ch
            elif ch == "#":
                break
            elif ch in pairs:
                stack.append((ch, lineno, i + 1))
            elif ch in ")]":
                if not stack:
                    opener = "(" if ch == ")" else "["
                    message = f"unmatched '{ch}': there is no '{opener}' before it"
                    return message, Position(lineno, i + 1), False
                open_ch, oline, ocol = stack.pop()
                if pairs[open_ch] != ch:
                    return (f"'{ch}' does not match the '{open_ch}' at line {oline}, column {ocol}",
                            Position(lineno, i + 1), False)
    if stack:
        open_ch, oline, ocol = stack[-1]
        return f"'{open_ch}' is never closed; add a matching '{pairs[open_ch]}'", Position(oline, ocol), True
    return None


_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NUMBER_RUN = re.compile(r"(?<![A-Za-z_.0-9])\.?\d[\d.]*(?:[eE][+-]?[\d.]+)*")


def _bad_number(line_text: str, column: int) -> tuple[str, int] | None:
    """A run like 1.2.3 or 1e5e3 around the column: the malformed number and where it starts."""
    for m in _NUMBER_RUN.finditer(line_text):
        if m.start() < column <= m.end() + 1 and not _NUMBER.fullmatch(m.group()):
            return m.group(), m.start() + 1
    return None


def _syntax_error(exc: UnexpectedInput, text: str) -> SpecSyntaxError:
    lines = text.splitlines() or [""]
    line = getattr(exc, "line", None) or 1
    column = getattr(exc, "column", None) or 1
    ip = getattr(exc, "interactive_parser", None)
    try:
        accepts = set(ip.accepts()) if ip is not None else set()
    except Exception:  # noqa: BLE001 - fall back to lark's static list
        accepts = set()
    accepts = accepts or set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
    hint = None
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    if at_end:
        line = len(lines)
        column = len(lines[-1]) + 1
    line_text = lines[line - 1] if line <= len(lines) else ""
    bracket = _bracket_problem(text)
    if bracket is not None:
        message, pos, unclosed = bracket
        if unclosed:
            blame = (at_end or line > pos.line
                     or (line == pos.line and (column > len(line_text.rstrip()) or column == pos.column)))
        else:
            blame = (pos.line, pos.column) <= (line, column)
        if blame:
            return SpecSyntaxError(message, position=pos, text=text)
    context = _context(line_text, column)
    before = line_text[: column - 1].rstrip()
    expected = _expected(accepts, context)
    if isinstance(exc, UnexpectedCharacters):
        char = line_text[column - 1] if column <= len(line_text) else "?"
        what = f"unexpected character {char!r}"
        if not char.isascii():
            what = f"unexpected non-ASCII character {char!r}"
            hint = _LOOKALIKES.get(char, "names with other characters must be quoted in backticks: `größe`")
        elif char == "\t":
            what = "unexpected tab"
        bad = _bad_number(line_text, column)
        if bad is not None:
            return SpecSyntaxError(f"malformed number '{bad[0]}'", position=Position(line, bad[1]), text=text)
    else:
        tok = exc.token if isinstance(exc, UnexpectedToken) else Token("$END", "")  # UnexpectedEOF: at the end
        bad = _bad_number(line_text, column)
        if bad is not None and tok.type in ("NUMBER", "NAME"):
            return SpecSyntaxError(f"malformed number '{bad[0]}'", position=Position(line, bad[1]), text=text)
        if tok.type == "$END":
            what = "unexpected end of text"
        elif tok.type == "_NL":
            what = "unexpected end of line"
        elif tok.type in ("_DEDENT", "_INDENT"):
            return SpecSyntaxError("unexpected indentation", position=Position(tok.end_line or line, 1),
                                   text=text, hint="only the lines of a 'priors:' block are indented")
        else:
            what = f"unexpected {str(tok)!r}"
        if tok.type == "BAR" and before.endswith("("):
            return SpecSyntaxError("a group term needs terms before '|'", position=Position(line, column),
                                   text=text, hint="write (1 | g) for a varying intercept")
        if tok.type == "RPAR" and (before.endswith("|")):
            return SpecSyntaxError("a group term needs a grouping column after '|'",
                                   position=Position(line, column), text=text, hint="write e.g. (1 | g)")
        last = before.split()[-1] if before.split() else ""
        tail_op = next((op for op in ("||", *_OPERATOR_TEXT) if last.endswith(op)), None)
        if tok.type in ("_NL", "$END", "RPAR", "RSQB") and tail_op is not None and tail_op != ",":
            what += f" after '{tail_op}'"
            if context == "formula" and tok.type in ("_NL", "$END") and tail_op in "+-*/:^":
                hint = "to continue a formula on the next line, wrap it in parentheses"
        elif tail_op in ("+", "-", "*", "/", ":", "^", "|") and tok.type in _OPERATORS + ("BAR", "TILDE"):
            what = f"two operators in a row: {str(tok)!r} after '{tail_op}'"
        if context == "formula" and tok.type == "TILDE" and not before:
            return SpecSyntaxError("a formula needs a response before '~'", position=Position(line, column),
                                   text=text, hint="write e.g. y ~ x + (1 | g)")
        if context == "formula" and tok.type == "TILDE":
            hint = "a formula has one '~'; write each formula on its own line"
        elif context == "formula" and tok.type == "BAR":
            hint = "a group term is written in parentheses, e.g. y ~ x + (1 + x | g)"
        elif context == "formula" and "TILDE" in accepts and "~" not in line_text:
            hint = "a formula is written 'response ~ terms', e.g. y ~ x + (1 | g)"
    message = what + (f"; {expected}" if expected else "")
    return SpecSyntaxError(message, position=Position(line, column), text=text, hint=hint)


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
    except _IndentProblem as exc:
        raise SpecSyntaxError(exc.message, position=Position(exc.line, exc.column), text=text,
                              hint=exc.hint) from None
    except lark.exceptions.LarkError as exc:  # pragma: no cover - defensive: nothing raw reaches the user
        raise SpecSyntaxError(f"cannot parse the spec: {exc}", text=text) from None
    try:
        formulas, families, priors = _ToSyntax().transform(tree)
    except VisitError as exc:
        raise exc.orig_exc from None
    spec = s.SpecTree(formulas, families, priors, text=text)
    deep = _too_deep(spec)
    if deep is not None:
        raise SpecSyntaxError(
            f"nested too deeply (more than {MAX_NESTING} levels)", position=_start(deep), text=text,
            hint="parentheses, brackets, function calls, unary minus and operators each add a level; "
            "write the expression with fewer levels",
        )
    return spec
