"""The import rules between layers (see billing_service/__init__.py), read from the source."""

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
