"""infra.metrics on a real grpc.aio server: each RPC counted by method and code, single
responses timed, open streams gauged, and all of it served on GET /metrics."""

import asyncio
import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra.grpc_server import shutdown, start_server
from infra.metrics import metrics_endpoint
from tests.scrape import metrics_port, scrape

HEALTH = "grpc.health.v1.Health"


@pytest.fixture
async def served():
    """A server with only grpc.health.v1, its stub, and the metrics URL."""
    server, port, health = await start_server("127.0.0.1:0", lambda server: [])
    async with metrics_endpoint("127.0.0.1", metrics_port()) as metrics:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield (
                health_pb2_grpc.HealthStub(channel),
                channel,
                f"http://127.0.0.1:{metrics}/metrics",
            )
    await shutdown(server, health)


async def test_each_rpc_is_counted_by_method_and_final_code_and_timed(served):
    stub, _, url = served
    before = await scrape(url)

    await stub.Check(health_pb2.HealthCheckRequest())
    await stub.Check(health_pb2.HealthCheckRequest())
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    after = await scrape(url)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    check = {"service": HEALTH, "method": "Check"}
    assert grew("podium_grpc_server_handled_total", **check, code="OK") == 2
    assert grew("podium_grpc_server_handled_total", **check, code="NOT_FOUND") == 1
    assert grew("podium_grpc_server_handling_seconds_count", **check) == 3


async def test_an_open_stream_is_gauged_and_counted_once_it_ends(served):
    stub, _, url = served
    gauge, labels = "podium_grpc_server_streams_open", {"service": HEALTH, "method": "Watch"}
    ended = {**labels, "code": "CANCELLED"}
    before = await scrape(url)

    call = stub.Watch(health_pb2.HealthCheckRequest())
    await call.read()
    watching = await scrape(url)
    call.cancel()
    for _ in range(100):
        after = await scrape(url)
        if after.value(gauge, **labels) == before.value(gauge, **labels):
            break
        await asyncio.sleep(0.02)

    assert watching.value(gauge, **labels) == before.value(gauge, **labels) + 1
    assert after.value(gauge, **labels) == before.value(gauge, **labels)
    handled = "podium_grpc_server_handled_total"
    assert after.value(handled, **ended) == before.value(handled, **ended) + 1


async def test_a_method_the_server_lacks_adds_no_labels(served):
    _, channel, url = served

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await channel.unary_unary("/made.up.Service/Anything")(b"")
    after = await scrape(url)

    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "made.up.Service" not in after.labels("podium_grpc_server_handled_total", "service")


async def test_a_port_already_taken_is_named_in_the_error():
    port = metrics_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()

        with pytest.raises(RuntimeError, match=f"127.0.0.1:{port} \\(PODIUM_METRICS_PORT"):
            async with metrics_endpoint("127.0.0.1", port):
                raise AssertionError("metrics were served on a port another socket holds")


async def test_port_zero_serves_no_metrics():
    async with metrics_endpoint("127.0.0.1", 0) as port:
        assert port is None
