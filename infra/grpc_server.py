"""Start a grpc.aio server with health, reflection and RPC metrics; stop it gracefully."""

import asyncio
import signal
from collections.abc import Callable, Iterable, Mapping

import grpc
import structlog
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from infra.health import Probe, ServerHealth
from infra.metrics import RpcMetrics

log = structlog.get_logger(__name__)

GRACE_SECONDS = 5.0


def keepalive_options(keepalive_ms: int) -> list[tuple[str, int]]:
    """Channel options of a client that pings every `keepalive_ms` while idle."""
    return [
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", max(keepalive_ms // 2, 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def _server_options(keepalive_ms: int) -> list[tuple[str, int]]:
    """A server's defaults refuse pings more often than every five minutes on a quiet
    connection: an idle stream's keepalive would get it closed (GOAWAY, too many pings).

    gRPC also binds with SO_REUSEPORT by default, so a second server on a port already taken
    starts without complaint and the kernel splits connections between the two: a stack
    started twice on one machine sent one stack's players into the other's database.
    """
    return [
        *keepalive_options(keepalive_ms),
        ("grpc.http2.min_ping_interval_without_data_ms", keepalive_ms // 2),
        ("grpc.so_reuseport", 0),
    ]


async def start_server(
    listen: str,
    add_services: Callable[[grpc.aio.Server], Iterable[str]],
    keepalive_ms: int = 20_000,
    dependencies: Mapping[str, Probe] | None = None,
    check_seconds: float = 2.0,
) -> tuple[grpc.aio.Server, int, ServerHealth]:
    """Bind `listen` (port 0 picks one), register services, and serve them.

    `add_services` registers the servicers and returns their full names, which are then
    published through grpc.health.v1 and reflection: SERVING while every probe in
    `dependencies` passes (checked every `check_seconds`), NOT_SERVING while one fails.
    Returns the server, its port and the health servicer, which the caller shuts down.
    """
    server = grpc.aio.server(interceptors=[RpcMetrics()], options=_server_options(keepalive_ms))
    names = list(add_services(server))

    health_servicer = ServerHealth(dependencies or {}, check_seconds)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )

    port = server.add_insecure_port(listen)
    await server.start()
    await health_servicer.start(names)
    return server, port, health_servicer


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so that `main` can shut down in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def shutdown(server: grpc.aio.Server, health_servicer: health.aio.HealthServicer) -> None:
    """Report NOT_SERVING for good, then let in-flight calls finish within the grace period."""
    await health_servicer.enter_graceful_shutdown()
    await server.stop(GRACE_SECONDS)
    log.info("grpc_server_stopped")
