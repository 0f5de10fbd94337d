"""Standard gRPC health checking and server reflection on a real server."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.processes import ServiceProcess


async def test_health_reports_serving_for_the_service(service: ServiceProcess) -> None:
    async with grpc.aio.insecure_channel(service.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "billing.v1.BillingService"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_billing_service(service: ServiceProcess) -> None:
    async with grpc.aio.insecure_channel(service.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for answer in stub.ServerReflectionInfo(iter([request]), timeout=5):
            names = {s.name for s in answer.list_services_response.service}
            assert "billing.v1.BillingService" in names
            assert "grpc.health.v1.Health" in names
            return
    raise AssertionError("no reflection answer")
