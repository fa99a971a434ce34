"""The component order holds: imports point down, and no module imports itself in a circle.

runtime < gateway, eventing < serving < registry < cli. A component may import a lower one (and
`serving` only through its public module `serving`), never a higher one or one of its own rank.
Inside `registry`, the floors below everything else hold the same way: the spec types and settings
(`registry.spec`, `registry.settings`) < Knative's object model (`registry.knative`) < the rest
(database, auth, API, backends, CLI).
Every import counts: module level, inside functions, and under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RANK = {"runtime": 0, "gateway": 1, "eventing": 1, "serving": 2, "registry": 3, "cli": 4}
PUBLIC_ONLY = {"serving"}  # imported from other components only as the package itself
# Floors inside `registry` (a module or a package); what no floor names is above them all.
REGISTRY_FLOORS = {"registry.spec": 0, "registry.settings": 0, "registry.knative": 1}


def _modules() -> dict[str, Path]:
    found = {}
    for component in RANK:
        for path in (ROOT / component).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _bound_in(package: str) -> set[str]:
    """Names a package's `__init__` binds itself: `from serving import prepare` is then the
    package's `prepare` (the function it re-exports), not the submodule of that name."""
    path = MODULES.get(package)
    if path is None or path.name != "__init__.py":
        return set()
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):  # also re-exports made lazily (`__all__`)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            names |= {e.value for e in getattr(node.value, "elts", []) if isinstance(e, ast.Constant)}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return names - {"__getattr__"}


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module of this tree, line) for every import in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            bound = _bound_in(base)
            submodules = {a.name for a in node.names if f"{base}.{a.name}" in MODULES and a.name not in bound}
            targets = [f"{base}.{a.name}" if a.name in submodules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target:
                yield target, node.lineno


GRAPH = {name: sorted({t for t, _ in _imports(name, path)} - {name}) for name, path in MODULES.items()}


def test_the_components_are_the_packages_the_distribution_ships() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert {p.rstrip("*") for p in packages["find"]["include"]} == set(RANK)


@pytest.mark.parametrize("component", sorted(RANK))
def test_imports_point_down(component: str) -> None:
    wrong = []
    for name, path in MODULES.items():
        if name.split(".")[0] != component:
            continue
        for target, line in _imports(name, path):
            other = target.split(".")[0]
            if other == component:
                continue
            if RANK[other] >= RANK[component]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({other} is not below)")
            elif other in PUBLIC_ONLY and target != other:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}, not the module {other}")
    assert not wrong, "\n".join(wrong)


def _registry_floor(name: str) -> tuple[str | None, int]:
    """The floor a registry module stands on (and the module or package that names it)."""
    for unit, floor in REGISTRY_FLOORS.items():
        if name == unit or name.startswith(unit + "."):
            return unit, floor
    return None, len(set(REGISTRY_FLOORS.values()))


def test_the_registry_floors_exist() -> None:
    assert all(unit in MODULES for unit in REGISTRY_FLOORS), sorted(set(REGISTRY_FLOORS) - set(MODULES))


@pytest.mark.parametrize("unit", sorted(REGISTRY_FLOORS))
def test_registry_floors_import_nothing_above_them(unit: str) -> None:
    """Knative's object model (and the spec types under it) import nothing of the database, auth,
    API, backends or CLI: they may import only their own package and the floors below theirs."""
    wrong = []
    for name, path in MODULES.items():
        if _registry_floor(name)[0] != unit:
            continue
        floor = REGISTRY_FLOORS[unit]
        for target, line in _imports(name, path):
            if target.split(".")[0] != "registry":
                continue
            other, other_floor = _registry_floor(target)
            if other != unit and other_floor >= floor:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} (not below {unit})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over the module graph: each must be one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not cycles, f"modules importing each other in a circle: {cycles}"


def test_the_checker_sees_a_planted_upward_import_and_cycle() -> None:
    """The rules above cannot pass vacuously: the graph holds the imports we know are there."""
    assert "serving" in GRAPH["registry.backends.local"]
    assert "serving.activator" in GRAPH["serving.controller"]
    assert "gateway.resolver" in GRAPH["serving.activator"]
    assert "registry.knative.manifests" in GRAPH["registry.knative.tenancy"]
    assert "registry.spec" in GRAPH["registry.knative.manifests"]
    assert _registry_floor("registry.backends.base") == (None, 2)
