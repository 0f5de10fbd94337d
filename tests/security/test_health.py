"""gRPC health follows the real dependencies: the database for the service, Redis by name."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.redis_server import RedisServer
from devtools.waiting import wait_until_async
from tests.support.processes import ServiceProcess
from tests.support.tcp_proxy import TcpProxy

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status_becomes(health: health_pb2_grpc.HealthStub, service: str, wanted: int) -> int:
    """Poll Check(service) until it answers ``wanted``; raises after 30 s."""

    async def status() -> int:
        return int((await health.Check(health_pb2.HealthCheckRequest(service=service))).status)

    name = health_pb2.HealthCheckResponse.ServingStatus.Name(wanted)
    return await wait_until_async(
        f"health of {service!r} to be {name}", status, lambda s: s == wanted
    )


async def test_health_follows_the_database_and_names_redis_apart(
    proxied_postgres: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied_postgres
    with RedisServer() as redis_server:
        env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url}
        with ServiceProcess(env) as service:
            async with grpc.aio.insecure_channel(service.target) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                for name in ("", "billing.v1.BillingService", "redis"):
                    assert await _status_becomes(health, name, SERVING) == SERVING

                # Redis down: reported by name; the service itself keeps serving.
                redis_server.stop()
                assert await _status_becomes(health, "redis", NOT_SERVING) == NOT_SERVING
                assert await _status_becomes(health, "", SERVING) == SERVING
                redis_server.start()
                assert await _status_becomes(health, "redis", SERVING) == SERVING

                # Database down: the service is not serving until it is back.
                proxy.cut()
                try:
                    assert await _status_becomes(health, "", NOT_SERVING) == NOT_SERVING
                    assert (
                        await _status_becomes(health, "billing.v1.BillingService", NOT_SERVING)
                        == NOT_SERVING
                    )
                finally:
                    proxy.restore()
                assert await _status_becomes(health, "", SERVING) == SERVING
