"""The import structure: no import circles, and the stages in order (parse → analyze → plan → execute).

Every ``import`` of every caveql module counts, wherever it is (module level, inside a function,
under ``if __name__ == "__main__"``): a lazy import only hides a circle until someone moves it.
Imports under ``if TYPE_CHECKING:`` are annotations, never run: they count for the stage order
but not as circles (a type-only back reference, e.g. a handler annotated with the class that
dispatches to it, is how a circle is avoided).
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# a module's stage: the first prefix that matches; modules of no stage are not checked for order
STAGES = (
    ("parse", ("caveql.syntax", "caveql.grammar")),
    ("logical IR", ("caveql.logical",)),  # what analysis produces and planning consumes: below both
    ("analyze", ("caveql.analyze",)),
    ("plan", ("caveql.plan",)),
    ("execute", ("caveql.execute",)),
)


def _modules() -> dict[str, Path]:
    """Every module of the caveql packages pyproject.toml lists (caveql.repl and caveql.grammar
    live elsewhere in the tree), found where Python finds them, unimported."""
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found: dict[str, Path] = {}
    for package in listed:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations is not None, package
        if spec.origin is not None:  # (caveql.data holds no code: a namespace package)
            found[package] = Path(spec.origin)
        for info in pkgutil.iter_modules(spec.submodule_search_locations):
            if not info.ispkg:
                found[f"{package}.{info.name}"] = Path(spec.submodule_search_locations[0], info.name + ".py")
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, type_only: bool = False) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``tree``, with whether it is under ``if TYPE_CHECKING:``."""
    out: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.append((node, type_only))
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                out.extend(_imports(ast.Module(body=[child], type_ignores=[]), True))
            for child in node.orelse:
                out.extend(_imports(ast.Module(body=[child], type_ignores=[]), type_only))
        else:
            out.extend(_imports(node, type_only))
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, bool]]:
    """``{module: {imported caveql module: type-only?}}``.

    An edge to the module's own packages (imported first anyway) or to the top ``caveql`` package
    (the public facade) is left out; ``from pkg import sub`` is an edge to ``pkg.sub``.
    """

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, bool]] = {m: {} for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node, type_only in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    anchor = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                dep = owner(target)
                if dep is None or dep in (mod, "caveql") or mod.startswith(dep + "."):
                    continue
                graph[mod][dep] = graph[mod].get(dep, True) and type_only
    return graph


def circles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def stage_of(module: str) -> int | None:
    for i, (_, prefixes) in enumerate(STAGES):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, bool]]:
    return import_graph(_modules())


def test_the_walk_sees_every_stage(graph: dict[str, dict[str, bool]]) -> None:
    # guards the two tests below against passing on an empty or partial walk
    for _, prefixes in STAGES:
        assert any(stage_of(m) is not None and m.startswith(prefixes[0]) for m in graph), prefixes
    for known in ("caveql.backends.local", "caveql.repl.session", "caveql.plan.rules.normalize"):
        assert known in graph
    assert "caveql.logical" in graph["caveql.plan.physical"]


def test_no_import_circles(graph: dict[str, dict[str, bool]]) -> None:
    run_time = {m: {d for d, type_only in deps.items() if not type_only} for m, deps in graph.items()}
    found = circles({m: dict.fromkeys(deps, False) for m, deps in run_time.items()})
    assert found == [], "import circles (modules that import each other, directly or not): " + "; ".join(
        " ↔ ".join(c) for c in found)


def test_no_stage_imports_a_later_one(graph: dict[str, dict[str, bool]]) -> None:
    bad = [f"{mod} ({STAGES[s][0]}) imports {dep} ({STAGES[d][0]})"
           for mod, deps in sorted(graph.items()) if (s := stage_of(mod)) is not None
           for dep in sorted(deps) if (d := stage_of(dep)) is not None and d > s]
    assert bad == []


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    # the circle and stage checks on a made-up package: a lazy circle and a type-only back edge
    files = {
        "caveql.analyze.x": "def f():\n    from caveql.plan import y\n",
        "caveql.plan.y": "from caveql.analyze.x import f\n",
        "caveql.execute.z": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                            "    from caveql.plan.y import f\n",
        "caveql.plan": "from . import y\n",
    }
    modules: dict[str, Path] = {}
    for name, text in files.items():
        path = tmp_path / (name + ("/__init__.py" if name == "caveql.plan" else ".py"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        modules[name] = path
    g = import_graph(modules)
    assert g["caveql.analyze.x"] == {"caveql.plan.y": False}
    assert g["caveql.plan"] == {"caveql.plan.y": False}
    assert g["caveql.execute.z"] == {"caveql.plan.y": True}
    assert circles(g) == [["caveql.analyze.x", "caveql.plan.y"]]
    assert stage_of("caveql.analyze.x") == 2 and stage_of("caveql.plan.y") == 3
