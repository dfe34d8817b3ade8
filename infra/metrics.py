"""Prometheus metrics every service shares: per-RPC counts and latencies, and /metrics.

Metrics live in prometheus_client's process-wide registry; each service's own are defined in
its `metrics` module. The gateway serves /metrics on its HTTP port; a gRPC service serves it
on a port of its own (PODIUM_METRICS_PORT), since its gRPC port speaks only HTTP/2.
"""

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import structlog
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler

log = structlog.get_logger(__name__)

# Seconds, from half a millisecond (a cached read) to ten (a deadline long passed).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

RPCS_HANDLED = Counter(
    "podium_grpc_server_handled",
    "RPCs this server finished, by method and status code.",
    ["service", "method", "code"],
)
RPC_SECONDS = Histogram(
    "podium_grpc_server_handling_seconds",
    "Time from the start of an RPC with a single response to its end.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
STREAMS_OPEN = Gauge(
    "podium_grpc_server_streams_open",
    "Response streams this server holds open now.",
    ["service", "method"],
)


@contextlib.asynccontextmanager
async def metrics_endpoint(host: str, port: int) -> AsyncIterator[int | None]:
    """Serve GET /metrics on host:port while the block runs; yields the bound port.

    Port 0 turns the endpoint off (yields None): every service on one machine would otherwise
    want the same port.
    """
    if not port:
        yield None
        return

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise RuntimeError(
                f"cannot serve metrics on {host}:{port} (PODIUM_METRICS_PORT, "
                f"PODIUM_METRICS_HOST): {error.strerror or error}"
            ) from error
        bound = runner.addresses[0][1]
        log.info("metrics_serving", port=bound)
        yield bound
    finally:
        await runner.cleanup()


class RpcMetrics(grpc.aio.ServerInterceptor):
    """Counts every RPC by its final status code and times those with a single response.

    Only methods the server has are labelled: an unknown one is answered UNIMPLEMENTED by grpc
    and left uncounted, so a client cannot grow the label set with names of its own.
    """

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None

        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        labels = (service, method)
        if handler.unary_unary:
            return handler._replace(unary_unary=_timed(handler.unary_unary, labels))
        if handler.stream_unary:
            return handler._replace(stream_unary=_timed(handler.stream_unary, labels))
        if handler.unary_stream:
            return handler._replace(unary_stream=_streamed(handler.unary_stream, labels))
        return handler._replace(stream_stream=_streamed(handler.stream_stream, labels))


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    """The status the RPC ends with: what the handler set or aborted with, else what grpc
    makes of how it returned (a cancelled call is CANCELLED, any other exception UNKNOWN)."""
    code = context.code()
    if code is not None:
        return code.name
    if error is None:
        return "OK"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN"


@contextlib.contextmanager
def _counted(labels: tuple[str, str], context: grpc.aio.ServicerContext) -> Iterator[None]:
    error = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        RPCS_HANDLED.labels(*labels, _code(context, error)).inc()


def _timed(behavior, labels: tuple[str, str]):
    seconds = RPC_SECONDS.labels(*labels)

    async def timed(request, context):
        started = time.perf_counter()
        with _counted(labels, context):
            try:
                return await behavior(request, context)
            finally:
                seconds.observe(time.perf_counter() - started)

    return timed


def _streamed(behavior, labels: tuple[str, str]):
    """Wrap a streaming behaviour, written either as an async generator or as a coroutine
    that writes with context.write."""
    open_streams = STREAMS_OPEN.labels(*labels)

    if inspect.isasyncgenfunction(behavior):

        async def generated(request, context):
            with open_streams.track_inprogress(), _counted(labels, context):
                async for response in behavior(request, context):
                    yield response

        return generated

    async def written(request, context):
        with open_streams.track_inprogress(), _counted(labels, context):
            return await behavior(request, context)

    return written
