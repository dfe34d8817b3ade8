"""What the auth service tells operators: login outcomes and per-RPC metrics on
PODIUM_METRICS_PORT, and a health status that follows its stores."""

import asyncio
from urllib.parse import urlsplit

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from podium.auth.v1 import auth_service_pb2 as pb
from podium.auth.v1 import auth_service_pb2_grpc

from auth.api import SERVICE_NAME
from auth.server import running
from tests.game.stall_proxy import StallProxy
from tests.scrape import metrics_port, scrape

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Long enough for a NATS client to reconnect (it waits two seconds between attempts).
SETTLE_SECONDS = 15.0


async def _statuses(channel: grpc.aio.Channel) -> set[int]:
    """The status of the server as a whole and of AuthService."""
    stub = health_pb2_grpc.HealthStub(channel)
    replies = [
        await stub.Check(health_pb2.HealthCheckRequest(service=service))
        for service in ("", SERVICE_NAME)
    ]
    return {reply.status for reply in replies}


async def _until_status(channel: grpc.aio.Channel, status: int) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while await _statuses(channel) != {status}:
        assert asyncio.get_running_loop().time() < deadline, f"never reported {status}"
        await asyncio.sleep(0.05)


async def test_login_outcomes_and_each_rpc_are_counted(auth_settings, new_username):
    port = metrics_port()
    settings = auth_settings.model_copy(update={"metrics_port": port, "metrics_host": "127.0.0.1"})
    url = f"http://127.0.0.1:{port}/metrics"
    username = new_username()

    async with running(settings) as grpc_port:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = auth_service_pb2_grpc.AuthServiceStub(channel)
            await stub.Register(pb.RegisterRequest(username=username, password="password-1"))
            before = await scrape(url)
            await stub.Login(pb.LoginRequest(username=username, password="password-1"))
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Login(pb.LoginRequest(username=username, password="password-2"))
            after = await scrape(url)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    login = {"service": "podium.auth.v1.AuthService", "method": "Login"}
    assert grew("podium_auth_logins_total", outcome="succeeded") == 1
    assert grew("podium_auth_logins_total", outcome="refused") == 1
    assert grew("podium_grpc_server_handled_total", **login, code="OK") == 1
    assert grew("podium_grpc_server_handled_total", **login, code="UNAUTHENTICATED") == 1
    assert grew("podium_grpc_server_handling_seconds_count", **login) == 2


@pytest.mark.parametrize("store", ["postgres", "redis", "nats"])
async def test_health_is_not_serving_while_a_store_is_down_and_serving_once_it_is_back(
    auth_settings, store
):
    upstream = {
        "postgres": auth_settings.postgres_dsn,
        "redis": auth_settings.redis_url,
        "nats": auth_settings.nats_url,
    }[store]
    port = metrics_port()
    url = f"http://127.0.0.1:{port}/metrics"

    async with StallProxy(urlsplit(upstream).port) as proxy:
        through = {
            "postgres": {
                "postgres_dsn": proxy.through(auth_settings.postgres_dsn),
                "postgres_shards": [proxy.through(dsn) for dsn in auth_settings.shard_dsns],
            },
            "redis": {"redis_url": proxy.through(auth_settings.redis_url)},
            "nats": {"nats_url": proxy.through(auth_settings.nats_url)},
        }[store]
        settings = auth_settings.model_copy(
            update={
                **through,
                "dependency_check_ms": 100,
                "metrics_port": port,
                "metrics_host": "127.0.0.1",
            }
        )
        async with running(settings) as grpc_port:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                await _until_status(channel, SERVING)
                proxy.cut()
                await _until_status(channel, NOT_SERVING)
                down = await scrape(url)
                alive = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="liveness")
                )
                await proxy.restore()
                await _until_status(channel, SERVING)
                up = await scrape(url)

    assert alive.status == SERVING
    stores = ("postgres", "redis", "nats")
    assert {name: down.value("podium_dependency_up", dependency=name) for name in stores} == {
        name: 0 if name == store else 1 for name in stores
    }
    assert {up.value("podium_dependency_up", dependency=name) for name in stores} == {1}
