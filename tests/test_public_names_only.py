"""Tests go through each stage's public functions: none imports or reaches for an underscore name of hdsl.

A test that calls ``hdsl.x._helper`` pins an implementation detail, breaks when the stage is rewritten, and
tests something no user can call. Where a private helper is worth testing alone, it is a stage's unit and
should be public (named in its module's ``__all__``, with a docstring).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
SOURCES = sorted(TESTS.rglob("*.py"))


def _private(name: str) -> bool:
    """``_x`` is private; dunders (``__version__``) are not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(dotted: str) -> bool:
    try:
        importlib.import_module(dotted)
    except ImportError:
        return False
    return True


def _hdsl_modules(tree: ast.Module) -> dict[str, str]:
    """Local name → hdsl module it is bound to, for every import of an hdsl module in the file."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "hdsl":
                    # `import hdsl.x.y` binds `hdsl`; `import hdsl.x.y as z` binds `z` to hdsl.x.y
                    out[alias.asname or "hdsl"] = alias.name if alias.asname else "hdsl"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hdsl":
            for alias in node.names:
                if _is_module(f"{node.module}.{alias.name}"):
                    out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def _attribute_chain(node: ast.Attribute) -> tuple[str | None, list[str]]:
    """``a.b.c`` → ('a', ['b', 'c']); the root is None when the chain starts at something other than a name."""
    attrs: list[str] = []
    value: ast.expr = node
    while isinstance(value, ast.Attribute):
        attrs.append(value.attr)
        value = value.value
    return (value.id if isinstance(value, ast.Name) else None), attrs[::-1]


def private_uses(source: str) -> list[str]:
    """Every place the source imports, or reaches through an hdsl module for, an underscore name of hdsl."""
    tree = ast.parse(source)
    modules = _hdsl_modules(tree)
    inside_attribute = {id(child) for parent in ast.walk(tree) if isinstance(parent, ast.Attribute)
                        for child in ast.iter_child_nodes(parent)}
    found: list[tuple[int, str]] = []

    def report(node: ast.stmt | ast.expr, what: str) -> None:
        found.append((node.lineno, f"line {node.lineno}: {what}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "hdsl" and any(_private(p) for p in alias.name.split(".")):
                    report(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hdsl":
            for alias in node.names:
                if _private(alias.name) or any(_private(p) for p in node.module.split(".")):
                    report(node, f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Attribute) and id(node) not in inside_attribute:  # whole chains only
            root, attrs = _attribute_chain(node)
            if root in modules and any(_private(a) for a in attrs):
                report(node, f"{root}.{'.'.join(attrs)}")
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            # getattr(module, "_x"), monkeypatch.setattr(module, "_x", ...), monkeypatch.setattr("hdsl.m._x", ...)
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            target, attr = node.args[0], node.args[1]
            if name in ("getattr", "setattr", "delattr", "hasattr") and isinstance(attr, ast.Constant):
                if isinstance(target, ast.Name) and target.id in modules and _private(str(attr.value)):
                    report(node, f"{name}({target.id}, {attr.value!r})")
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            text = node.args[0].value
            if isinstance(text, str) and text.startswith("hdsl.") and " " not in text:
                if any(_private(p) for p in text.split(".")):
                    report(node, f"{text!r}")
    return [what for _, what in sorted(found)]


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_no_private_hdsl_names(path: Path):
    uses = private_uses(path.read_text())
    assert not uses, f"{path.name} uses private names of hdsl (go through the stage's public function):\n" + (
        "\n".join(uses))


def test_the_scan_finds_each_way_of_reaching_a_private_name():
    """The scan itself can fail: each form below is one finding, and the public forms are none."""
    source = """
import hdsl
import hdsl.language.parse as p
import hdsl.model._secret
from hdsl.model.design import _distinct_labels, bind_design
from hdsl.language import parse
from hdsl import Model

hdsl.workflow.api._resolve_dtype("float64")
p._parser()
parse._syntax_error(None, "")
getattr(parse, "_parser")
monkeypatch.setattr("hdsl.workflow.api._resolve_dtype", None)

hdsl.fit
p.parse_spec("y ~ x")
parse.__name__
Model("y ~ x", None)._explain_start
"""
    found = private_uses(source)
    assert [f.split(": ", 1)[1] for f in found] == [
        "import hdsl.model._secret",
        "from hdsl.model.design import _distinct_labels",
        "hdsl.workflow.api._resolve_dtype",
        "p._parser",
        "parse._syntax_error",
        "getattr(parse, '_parser')",
        "'hdsl.workflow.api._resolve_dtype'",
    ]
