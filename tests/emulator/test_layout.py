"""The emulator's modules import each other without cycles (the HTTP side sits on the state)."""

from __future__ import annotations

import ast
from pathlib import Path

import devtools.stripe_emulator

PACKAGE = Path(devtools.stripe_emulator.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Package-relative module name -> the package modules it imports."""
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = [part for part in package if part]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package[: len(package) - node.level + 1]
            module = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                for candidate in (".".join([*module, alias.name]), ".".join(module)):
                    if candidate in files and candidate != name:
                        targets.add(candidate)
                        break
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of module names, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            cycle = visit(target, [*path, node])
            if cycle is not None:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle is not None:
            return cycle
    return None


def test_find_cycle_reports_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_emulator_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert {"app", "control", "account", "resources.subscriptions"} <= set(graph)
    assert "app" in graph["__main__"]
    assert find_cycle(graph) is None


def test_control_and_meter_routes_do_not_import_the_app() -> None:
    graph = import_graph()
    assert "app" not in graph["control"]
    assert "app" not in graph["meter_routes"]
