"""Lifecycle of the ranking service: connect the stores, serve gRPC, shut down in order."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats.aio.client
import nats.errors
import structlog
from podium.ranking.v1 import ranking_service_pb2, ranking_service_pb2_grpc

from infra.grpc_server import shutdown, start_server
from infra.health import store_probes
from infra.metrics import metrics_endpoint
from infra.names import Names
from infra.redis_client import connect_redis
from infra.shards import ShardPools
from ranking.api import RankingApi
from ranking.board_store import BoardStore
from ranking.config import RankingSettings
from ranking.feed import BoardFeed, Clock, now_ms
from ranking.paging import Pager
from ranking.periods import Periods
from ranking.rebuild import Rebuilder

log = structlog.get_logger(__name__)

SERVICE_NAME = ranking_service_pb2.DESCRIPTOR.services_by_name["RankingService"].full_name
POOL_SIZE = 4


@dataclass(frozen=True)
class Running:
    """A serving ranking instance: its bound port and its feed (tests count watchers)."""

    port: int
    feed: BoardFeed


async def serve(settings: RankingSettings, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, then shut down gracefully."""
    async with running(settings):
        await stop.wait()
    log.info("stopped")


@contextlib.asynccontextmanager
async def running(settings: RankingSettings, clock: Clock = now_ms) -> AsyncIterator[Running]:
    """Connect Redis, Postgres and NATS, start the feed and the gRPC server, and undo it all.

    On exit, health turns NOT_SERVING first, then open watch streams end cleanly, then the
    server lets in-flight calls finish, and only then are the clients closed.
    """
    names = Names(settings.namespace)
    async with contextlib.AsyncExitStack() as stack:
        redis = connect_redis(settings.redis_url, decode_responses=True)
        stack.push_async_callback(redis.aclose)
        pools = await ShardPools.open(settings.shard_dsns, min_size=1, max_size=POOL_SIZE)
        stack.push_async_callback(pools.close)
        nc = await _connect_nats(settings.nats_url)
        stack.push_async_callback(_close_nats, nc)

        store = BoardStore(redis, pools, names)
        store.rebuild = Rebuilder(pools, redis, store, nc)
        feed = BoardFeed(store, nc, settings.coalesce_ms, clock)
        await feed.start()
        stack.push_async_callback(feed.stop)

        periods = Periods(
            next(iter(pools)), store, redis, nc, clock, settings.period_retention_seconds
        )
        stop_periods = asyncio.Event()
        keeper = asyncio.create_task(periods.run(stop_periods), name="ranking-periods")
        stack.push_async_callback(_stop, stop_periods, keeper)

        api = RankingApi(store, feed, Pager(redis, store), store.rebuild, periods, clock)
        await stack.enter_async_context(
            metrics_endpoint(settings.metrics_host, settings.metrics_port)
        )
        server, port, health = await start_server(
            settings.ranking_listen,
            lambda srv: _add_ranking(srv, api),
            settings.grpc_keepalive_ms,
            store_probes(pools, redis, nc),
            settings.dependency_check_ms / 1000,
        )
        log.info("serving", port=port, namespace=settings.namespace)
        try:
            yield Running(port, feed)
        finally:
            await health.enter_graceful_shutdown()
            await feed.stop()
            await shutdown(server, health)


def _add_ranking(server, api: RankingApi) -> list[str]:
    ranking_service_pb2_grpc.add_RankingServiceServicer_to_server(api, server)
    return [SERVICE_NAME]


async def _connect_nats(url: str) -> nats.aio.client.Client:
    nc = nats.aio.client.Client()

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", error=repr(exc))

    async def on_disconnected() -> None:
        # Closing at shutdown disconnects too; only an unplanned loss is worth a warning.
        if not (nc.is_closed or nc.is_draining):
            log.warning("nats_disconnected")

    async def on_reconnected() -> None:
        log.info("nats_reconnected")

    await nc.connect(
        url,
        name="ranking",
        max_reconnect_attempts=-1,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )
    return nc


async def _stop(stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    await task


async def _close_nats(nc: nats.aio.client.Client) -> None:
    with contextlib.suppress(nats.errors.Error):
        await nc.drain()
