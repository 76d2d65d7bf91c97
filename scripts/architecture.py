"""hdsl's architecture as data: the import graph between its modules (imports under ``if TYPE_CHECKING:``
left out: they never run), its cycles, which layer imports which, and the longest modules and functions.

    python scripts/architecture.py            # the report; exit status 1 if the graph has a cycle
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "hdsl"
LAYERS = ("language", "model", "inference", "workflow")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(path: Path, modules: set[str], type_checking: bool = False) -> set[str]:
    """The hdsl modules ``path`` imports at run time (at module level or inside functions), and with
    ``type_checking`` those imported for type checking only as well."""
    name = module_name(path)
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child) and not type_checking:
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(name, is_package, child.level, child.module) if child.level else (child.module or "")
                found.add(base)
                found.update(f"{base}.{a.name}" for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    out = set()
    for f in found:
        while f and f not in modules:
            f = f.rpartition(".")[0]
        if f and f != name:
            out.add(f)
    return out


def graph(type_checking: bool = False) -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(paths)
    # a package's __init__ importing its own submodules is not a dependency of those submodules on it
    return {m: {d for d in imports(p, modules, type_checking) if not d.startswith(m + ".") and d != "hdsl"}
            for m, p in paths.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index:
            strong(v)
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in LAYERS else "top"


def layer_edges(g: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(layer(m), layer(d)) for m, ds in g.items() for d in ds if layer(m) != layer(d)}


def lengths() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(lines, module) and (lines, module:function) for every module and function, longest first."""
    mods, funcs = [], []
    for p in ROOT.rglob("*.py"):
        text = p.read_text()
        mods.append((len(text.splitlines()), module_name(p)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                funcs.append((node.end_lineno - node.lineno + 1, f"{module_name(p)}:{node.name}"))
    return sorted(mods, reverse=True), sorted(funcs, reverse=True)


def main() -> int:
    g = graph()
    print(f"{len(g)} modules, {sum(map(len, g.values()))} import edges at run time")
    print("layer imports:", ", ".join(f"{a} -> {b}" for a, b in sorted(layer_edges(g))))
    found = []
    for label, with_types in (("at run time", False), ("counting imports for type checking", True)):
        here = cycles(graph(with_types))
        found += here
        print(f"cycles {label}:", "none" if not here else "")
        for c in here:
            print("  " + " <-> ".join(c))
    mods, funcs = lengths()
    print("longest modules:", ", ".join(f"{m} {n}" for n, m in mods[:8]))
    print("longest functions:", ", ".join(f"{f} {n}" for n, f in funcs[:10]))
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
