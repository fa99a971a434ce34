"""Every distribution PAR's code imports is declared, and the installed versions are the locked ones.

An import that works only because another dependency happens to pull its distribution in breaks on
the day that dependency drops it; an install that drifts from uv.lock breaks generated files (the
gRPC stubs) and hides what CI tested.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("runtime", "gateway", "eventing", "serving", "registry", "cli")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    return {_normalized(re.split(r"[\s\[<>=!~;@]", r, maxsplit=1)[0]) for r in requirements}


def _imported_top_levels() -> dict[str, str]:
    """Top-level module -> first file importing it, for every non-stdlib, non-PAR import."""
    found: dict[str, str] = {}
    for component in COMPONENTS:
        for path in sorted((ROOT / component).rglob("*.py")):
            if "protos" in path.parts and path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                continue  # generated; their imports (grpc, protobuf) are declared for the stubs
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in COMPONENTS:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_distribution_is_declared() -> None:
    declared = _declared(PROJECT["dependencies"])
    providers = metadata.packages_distributions()
    missing = {}
    for module, where in _imported_top_levels().items():
        distributions = {_normalized(d) for d in providers.get(module, [])}
        assert distributions, f"{module} (imported in {where}) comes from no installed distribution"
        if not distributions & declared:
            missing[module] = (sorted(distributions), where)
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_installed_versions_are_the_locked_ones() -> None:
    locked = {
        _normalized(p["name"]): p["version"]
        for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
        if "version" in p and p["name"] != PROJECT["name"]
    }
    wanted = _declared(PROJECT["dependencies"]) | _declared(PROJECT["optional-dependencies"]["dev"])
    drift = {
        name: (metadata.version(name), locked[name])
        for name in wanted
        if name in locked and metadata.version(name) != locked[name]
    }
    assert not drift, f"installed differs from uv.lock (right); run scripts/bootstrap.sh --dev: {drift}"
    assert wanted <= locked.keys(), f"declared but not locked (run uv lock): {wanted - locked.keys()}"
