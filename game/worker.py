"""A game worker's lifecycle: open its clients, serve GameService, consume actions, stop in order.

On stop the worker reports NOT_SERVING and lets in-flight GetState calls end, finishes and acks
the batch in hand, then drains NATS (flushing the last acks and results) and closes Redis and
Postgres.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import nats
import structlog
from grpc_health.v1 import health as grpc_health

from game.api import GameApi, add_game_service
from game.apply import now_ms
from game.batches import BatchHandler, Clock
from game.config import GameSettings
from game.consumer import ActionConsumer
from game.rules import load_ruleset
from game.rules.base import Ruleset
from infra.grpc_server import shutdown, start_server
from infra.health import store_probes
from infra.history import ensure_history_partitions
from infra.metrics import metrics_endpoint
from infra.redis_client import connect_redis
from infra.shards import ShardPools

log = structlog.get_logger(__name__)

# A stopping worker waits this long for the batch in hand, then at most this long for the
# cancelled consumer, the database pools and NATS each: with the gRPC grace period running
# alongside, it exits within the ten seconds an orchestrator allows even if a store hangs.
_BATCH_GRACE_SECONDS = 6.0
_CLOSE_SECONDS = 1.0

# A statement that takes longer than this is given up (and retried): a stalled database must
# not hold a batch, or a stopping worker, forever.
_COMMAND_TIMEOUT_SECONDS = 10.0

# Redis calls give up after this; leases are what a stalled Redis must not outlive.
_REDIS_TIMEOUT_SECONDS = 2.0

# Each applier holds one connection per shard database; the rest serve GetState.
_POOL_SPARE_CONNECTIONS = 4

# Score history partitions are made months ahead; checking twice a day is plenty.
HISTORY_CHECK_SECONDS = 12 * 3600.0


@dataclass(frozen=True)
class RunningWorker:
    """A started worker: its GameService port, its consumer and the task running it."""

    port: int
    consumer: ActionConsumer
    task: asyncio.Task


@contextlib.asynccontextmanager
async def running(
    settings: GameSettings, ruleset: Ruleset | None = None, clock: Clock = now_ms
) -> AsyncIterator[RunningWorker]:
    """Run a worker in this event loop until the block exits; tests use it directly, and may
    hand it a ruleset object instead of naming one in the settings, and a clock of their own
    (which decides when periods close)."""
    ruleset = ruleset or load_ruleset(settings.ruleset)
    pool_size = settings.appliers + _POOL_SPARE_CONNECTIONS

    async with contextlib.AsyncExitStack() as stack:
        pools = await ShardPools.open(
            settings.shard_dsns,
            min_size=1,
            max_size=pool_size,
            command_timeout=_COMMAND_TIMEOUT_SECONDS,
        )
        stack.push_async_callback(pools.close, _CLOSE_SECONDS)
        await _ensure_history(pools)

        redis = connect_redis(
            settings.redis_url,
            socket_timeout=_REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
        )
        stack.push_async_callback(redis.aclose)

        nc = await _connect_nats(settings)
        stack.push_async_callback(nc.drain)

        handler = BatchHandler(settings, nc, redis, pools, ruleset, clock)
        consumer = ActionConsumer(settings, nc, redis, handler)
        await consumer.open()

        api = GameApi(pools, ruleset)
        server, port, health = await start_server(
            settings.game_listen,
            lambda server: add_game_service(server, api),
            settings.grpc_keepalive_ms,
            store_probes(pools, redis, nc),
            settings.dependency_check_ms / 1000,
        )
        halt = asyncio.Event()
        task = asyncio.create_task(consumer.run(halt), name="game-consumer")
        stack.push_async_callback(_stop, halt, task, server, health)
        history = asyncio.create_task(_keep_history(pools), name="game-history")
        stack.push_async_callback(_cancel, history)
        await stack.enter_async_context(
            metrics_endpoint(settings.metrics_host, settings.metrics_port)
        )

        log.info("serving", port=port, namespace=settings.namespace, ruleset=ruleset.name)
        yield RunningWorker(port, consumer, task)


async def serve(settings: GameSettings, stop: asyncio.Event) -> None:
    """Run until `stop` is set; raise if consuming ends on its own, which is always a fault."""
    async with running(settings) as worker:
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({stopped, worker.task}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()

        if not stop.is_set():
            raise RuntimeError("the action consumer stopped") from worker.task.exception()
    log.info("stopped")


async def _ensure_history(pools: ShardPools) -> None:
    for pool in pools:
        await ensure_history_partitions(pool)


async def _keep_history(pools: ShardPools) -> None:
    """Keep score history partitions ahead of the calendar while the worker runs."""
    while True:
        await asyncio.sleep(HISTORY_CHECK_SECONDS)
        try:
            await _ensure_history(pools)
        except Exception:
            log.exception("history_partitions_not_ensured")


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _connect_nats(settings: GameSettings) -> nats.aio.client.Client:
    nc: nats.aio.client.Client | None = None

    async def on_error(error: Exception) -> None:
        log.warning("nats_error", error=str(error))

    async def on_disconnected() -> None:
        # The client reports its own close as a disconnect too; only an unplanned one matters.
        if nc is not None and not nc.is_closed:
            log.warning("nats_disconnected")

    async def on_reconnected() -> None:
        log.info("nats_reconnected")

    # Reconnect for as long as it takes: an outage should pause the worker, not end it.
    nc = await nats.connect(
        settings.nats_url,
        name=f"{settings.namespace}-game",
        max_reconnect_attempts=-1,
        drain_timeout=_CLOSE_SECONDS,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )
    return nc


async def _stop(
    halt: asyncio.Event,
    task: asyncio.Task,
    server: grpc.aio.Server,
    health: grpc_health.aio.HealthServicer,
) -> None:
    """Go NOT_SERVING and end in-flight calls while the consumer finishes its batch."""
    halt.set()
    await asyncio.gather(shutdown(server, health), _finish(task))


async def _finish(task: asyncio.Task) -> None:
    """Wait for the batch in hand; past the grace period cancel it (its messages are unacked,
    so they are redelivered). A failure the consumer ended with is logged, not raised."""
    done, _ = await asyncio.wait({task}, timeout=_BATCH_GRACE_SECONDS)
    if not done:
        log.error("consumer_stop_timeout")
        task.cancel()
        await asyncio.wait({task}, timeout=_CLOSE_SECONDS)
    elif not task.cancelled() and task.exception() is not None:
        log.error("consumer_failed", exc_info=task.exception())
