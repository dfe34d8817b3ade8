"""The ranking server's lifecycle: health, reflection, store outages, shutdown, the CLI and
its metrics."""

import asyncio
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from podium.ranking.v1 import ranking_service_pb2 as pb
from podium.ranking.v1 import ranking_service_pb2_grpc

from ranking.config import RankingSettings
from ranking.server import SERVICE_NAME, running
from tests.game.stall_proxy import StallProxy
from tests.scrape import metrics_port, scrape

ROOT = Path(__file__).resolve().parents[2]
# Bounds on waiting for the subprocess, so that a hung one fails instead of stalling the run.
START_GUARD_SECONDS = 30
EXIT_GUARD_SECONDS = 20


async def health_of(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return reply.status


async def listed_services(channel: grpc.aio.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    reply = await call.read()
    await call.done_writing()
    return [service.name for service in reply.list_services_response.service]


async def serving_port(process: asyncio.subprocess.Process) -> int:
    """Read the JSON log lines of `process` until it says it is serving."""
    while line := await process.stdout.readline():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if record.get("event") == "serving":
            return record["port"]
    raise AssertionError("the process ended without serving")


async def test_health_is_serving_and_reflection_lists_the_service(ranking):
    overall = await health_of(ranking.channel, "")
    service = await health_of(ranking.channel, SERVICE_NAME)
    services = await listed_services(ranking.channel)

    assert overall == service == health_pb2.HealthCheckResponse.SERVING
    assert "podium.ranking.v1.RankingService" in services


async def test_an_unreachable_redis_is_reported_as_unavailable(serve_ranking, rpc_error):
    async with serve_ranking(redis_url="redis://127.0.0.1:1/0") as ranking:
        request = pb.GetTopRequest(board="daily", period=ranking.day, limit=5)

        failure = await rpc_error(ranking.stub.GetTop(request))

    assert failure == (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")


async def _until_health(channel: grpc.aio.Channel, status: int) -> None:
    for _ in range(300):
        if {await health_of(channel, ""), await health_of(channel, SERVICE_NAME)} == {status}:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"health never became {status}")


async def test_health_follows_redis_down_and_back(serve_ranking):
    async with StallProxy(urlsplit(RankingSettings().redis_url).port) as proxy:
        through = proxy.through(RankingSettings().redis_url)
        async with serve_ranking(redis_url=through, dependency_check_ms=100) as ranking:
            await _until_health(ranking.channel, health_pb2.HealthCheckResponse.SERVING)
            proxy.cut()
            await _until_health(ranking.channel, health_pb2.HealthCheckResponse.NOT_SERVING)
            await proxy.restore()
            await _until_health(ranking.channel, health_pb2.HealthCheckResponse.SERVING)
            top = await ranking.stub.GetTop(
                pb.GetTopRequest(board="daily", period=ranking.day, limit=5)
            )

    assert top.board == "daily"


async def test_shutdown_ends_open_watch_streams_cleanly(settings_env, read_view):
    settings = RankingSettings(ranking_listen="127.0.0.1:0")
    async with running(settings) as served:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{served.port}")
        stub = ranking_service_pb2_grpc.RankingServiceStub(channel)
        call = stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=1))
        first = await read_view(call)

    # Views pushed before the shutdown may still be on their way; the stream then ends.
    ended = await asyncio.wait_for(call.read(), 10)
    for _ in range(10):
        if ended is grpc.aio.EOF:
            break
        ended = await asyncio.wait_for(call.read(), 10)
    status = await call.code()
    await channel.close()

    assert first.snapshot is True
    assert ended is grpc.aio.EOF
    assert status == grpc.StatusCode.OK
    assert served.feed.watching("daily") == 0
    assert served.feed.task_count == 0


async def test_python_m_ranking_serves_and_exits_0_on_sigterm(service_env):
    env = {**os.environ, **service_env, "PODIUM_RANKING_LISTEN": "127.0.0.1:0"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ranking",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        port = await asyncio.wait_for(serving_port(process), START_GUARD_SECONDS)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            status = await health_of(channel, SERVICE_NAME)

        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), EXIT_GUARD_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert status == health_pb2.HealthCheckResponse.SERVING
    assert process.returncode == 0
    assert b'"event":"stopped"' in output


async def test_a_watch_opened_while_shutting_down_is_refused(ranking, rpc_error):
    await ranking.feed.stop()

    call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=1))
    failure = await rpc_error(call.read())

    assert failure == (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")


async def test_python_m_ranking_serves_read_stream_and_rebuild_metrics(
    service_env, day, read_view
):
    port = metrics_port()
    env = {
        **os.environ,
        **service_env,
        "PODIUM_RANKING_LISTEN": "127.0.0.1:0",
        "PODIUM_METRICS_PORT": str(port),
        "PODIUM_METRICS_HOST": "127.0.0.1",
    }
    url = f"http://127.0.0.1:{port}/metrics"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ranking", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        grpc_port = await asyncio.wait_for(serving_port(process), START_GUARD_SECONDS)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = ranking_service_pb2_grpc.RankingServiceStub(channel)
            before = await scrape(url)
            # Rebuilt first: a read of a period Redis has not built would rebuild it too.
            await stub.RebuildBoard(pb.RebuildBoardRequest(board="daily", period=day))
            await stub.GetTop(pb.GetTopRequest(board="daily", period=day, limit=5))
            read = await scrape(url)
            call = stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=1))
            await read_view(call)
            watching = await scrape(url)
            call.cancel()
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), EXIT_GUARD_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    def grew(earlier, later, name: str, **labels: str) -> float:
        return later.value(name, **labels) - earlier.value(name, **labels)

    service = "podium.ranking.v1.RankingService"
    get_top = {"service": service, "method": "GetTop"}
    watch = {"service": service, "method": "WatchBoard"}
    assert grew(before, read, "podium_grpc_server_handled_total", **get_top, code="OK") == 1
    assert grew(before, read, "podium_grpc_server_handling_seconds_count", **get_top) == 1
    assert grew(before, read, "podium_ranking_rebuilds_total", outcome="done") == 1
    assert grew(before, read, "podium_ranking_rebuild_seconds_count") == 1
    assert grew(read, watching, "podium_ranking_watchers", board="daily") == 1
    assert grew(read, watching, "podium_grpc_server_streams_open", **watch) == 1
    assert watching.value("podium_dependency_up", dependency="postgres") == 1
