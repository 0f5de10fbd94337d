"""The import rules between layers (see billing_service/__init__.py), read from the source.

Also: billing_service has no import cycles (a type-only import does not count).
"""

from __future__ import annotations

import ast
from pathlib import Path

import billing_service

PACKAGE = Path(billing_service.__file__).parent

# Modules that may build or read protobuf messages: the gRPC edge, the server's
# wiring, gRPC plumbing, and gRPC clients (CLIs that call the service).
PROTO_ALLOWED = {
    "servicer",
    "convert",
    "server",
    "interceptors",
    "health",
    "reflection",
    "auth",
    "reconcile",
    "reconcile_cli",
    "dead_letter_commands",
    # The entitlements edge builds the shared Watch/Check messages once; the
    # facade and the watch hub name those message types.
    "entitlements.wire",
    "entitlements.service",
    "entitlements.watch",
    # Usage messages are built in their own package.
    "usage",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules() -> list[tuple[str, Path]]:
    return [
        (".".join(path.relative_to(PACKAGE).with_suffix("").parts), path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_storage_imports_only_storage_and_infrastructure() -> None:
    allowed = ("billing_service.storage", "billing_service.deadlines")
    for name, path in _modules():
        if not name.startswith("storage"):
            continue
        # ``from billing_service import deadlines`` names the package itself too.
        inside = {i for i in _imports(path) if i.startswith("billing_service.")}
        outside = {i for i in inside if not i.startswith(allowed)}
        assert not outside, f"storage module {name} imports {sorted(outside)}"


def test_only_the_edge_builds_protobufs() -> None:
    for name, path in _modules():
        if name in PROTO_ALLOWED or name.split(".")[0] in PROTO_ALLOWED:
            continue
        proto = {
            i
            for i in _imports(path)
            if i.startswith(("generated", "billing_client.v1", "billing_service.convert"))
            or i.endswith("_pb2")
        }
        assert not proto, f"{name} imports {sorted(proto)}: convert at the servicer edge"


def test_the_pure_rules_do_no_io() -> None:
    for name in ("lifecycle", "access", "best_subscription", "events/ordering"):
        imports = _imports(PACKAGE / f"{name}.py")
        assert not {
            i
            for i in imports
            if i.startswith(
                (
                    "billing_service.stripe_api",
                    "billing_service.storage.repository",
                    "billing_service.storage.database",
                    "grpc",
                    "peewee",
                )
            )
        }, name


def _module_imports(name: str, path: Path) -> set[str]:
    """The billing_service modules ``name`` imports at run time (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found.update(
            m.removeprefix("billing_service.") for m in modules if m.startswith("billing_service.")
        )
    return found


def test_billing_service_has_no_import_cycles() -> None:
    modules = {name: path for name, path in _modules()}

    def known(module: str) -> str | None:
        for candidate in (module, f"{module}.__init__"):
            if candidate in modules:
                return candidate
        return None

    graph = {
        name: {k for m in _module_imports(name, path) if (k := known(m)) and k != name}
        for name, path in modules.items()
    }
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
