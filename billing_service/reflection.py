"""Server reflection under both names tools ask for: grpc.reflection.v1 and v1alpha.

grpcio-reflection implements only v1alpha, and resolves a symbol with
``DescriptorPool.FindFileContainingSymbol``, which (upb protobuf) knows
messages, fields, enums and services but not methods or enum values; so
``grpcurl describe billing.v1.BillingService.CheckEntitlement`` answered
"Symbol not found". This module adds both:

- symbols the pool cannot find are looked up as a service's method or an
  enum's value, and answered with the file that declares them;
- ``grpc.reflection.v1.ServerReflection`` is served by the same servicer.
  Its messages are field for field those of v1alpha (v1 is v1alpha renamed,
  grpc/reflection/v1/reflection.proto), so the same bytes answer both; the
  v1 file descriptor is derived from v1alpha's and added to the pool so that
  tools can ``describe`` the v1 service too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection_pb2 as alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as alpha_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

V1ALPHA_SERVICE_NAME = "grpc.reflection.v1alpha.ServerReflection"
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_descriptor(pool: Any) -> None:
    """Add grpc/reflection/v1/reflection.proto, derived from v1alpha's, to ``pool``."""
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    alpha_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = _V1_FILE
    proto.package = "grpc.reflection.v1"
    proto.ClearField("options")  # java/go package options name v1alpha
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old, new)
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new)
            method.output_type = method.output_type.replace(old, new)
    pool.Add(proto)


class BillingReflectionServicer(ReflectionServicer):  # type: ignore[misc]
    """grpcio-reflection's async servicer, also resolving method and enum value symbols."""

    def __init__(self, service_names: Iterable[str], pool: Any) -> None:
        super().__init__(service_names, pool=pool)
        self._extra_symbols = _method_and_enum_value_symbols(pool, self._service_names)

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        # Answer through the base class with a symbol of the same file the pool does resolve.
        resolvable = self._extra_symbols.get(fully_qualified_name, fully_qualified_name)
        return super()._file_containing_symbol(request, resolvable)


def _method_and_enum_value_symbols(pool: Any, service_names: Iterable[str]) -> dict[str, str]:
    """Method and enum value symbols of the served files, each to a resolvable sibling symbol."""
    files: dict[str, FileDescriptor] = {}
    for name in service_names:
        try:
            _collect(pool.FindFileContainingSymbol(name), files)
        except KeyError:
            continue
    symbols: dict[str, str] = {}
    for file in files.values():
        for service in file.services_by_name.values():
            for method in service.methods:
                symbols[method.full_name] = service.full_name
        for enum in _enums(file):
            # Enum values are scoped beside their enum: billing.v1.EVENT_OUTCOME_APPLIED.
            scope = enum.full_name.rpartition(".")[0]
            for value in enum.values:
                symbols[f"{scope}.{value.name}" if scope else value.name] = enum.full_name
    return symbols


def _collect(file: FileDescriptor, into: dict[str, FileDescriptor]) -> None:
    """``file`` and its transitive dependencies, by name."""
    if file.name in into:
        return
    into[file.name] = file
    for dependency in file.dependencies:
        _collect(dependency, into)


def _enums(file: FileDescriptor) -> Iterable[Any]:
    """Every enum in ``file``, nested ones included."""
    yield from file.enum_types_by_name.values()
    stack = list(file.message_types_by_name.values())
    while stack:
        message = stack.pop()
        yield from message.enum_types
        stack.extend(message.nested_types)


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1 and v1alpha on ``server`` for ``service_names`` (plus both itself)."""
    pool = descriptor_pool.Default()
    _register_v1_descriptor(pool)
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    servicer = BillingReflectionServicer(names, pool=pool)
    alpha_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1_handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=alpha_pb2.ServerReflectionRequest.FromString,
        response_serializer=alpha_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                V1_SERVICE_NAME, {"ServerReflectionInfo": v1_handler}
            ),
        )
    )
