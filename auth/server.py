"""The auth service's lifecycle: open clients, serve gRPC, stop in order."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import nats
import structlog

from auth.announcer import Announcer
from auth.api import add_to_server
from auth.config import AuthSettings
from auth.core import Deps
from auth.limits import Limiter
from auth.passwords import Passwords
from auth.sessions import Sessions
from auth.store import Accounts
from auth.tickets import Tickets
from auth.tokens import Tokens
from infra.grpc_server import shutdown, start_server
from infra.health import store_probes
from infra.metrics import metrics_endpoint
from infra.names import Names
from infra.redis_client import connect_redis
from infra.shards import ShardPools

log = structlog.get_logger(__name__)


@asynccontextmanager
async def running(settings: AuthSettings) -> AsyncIterator[int]:
    """Serve AuthService while the block runs and yield the bound port.

    On exit the server turns NOT_SERVING and finishes in-flight calls before the Postgres
    pools, the Redis client and NATS close under them.
    """
    tokens = Tokens.from_settings(settings)
    passwords = Passwords(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
    )
    names = Names(settings.namespace)

    async with AsyncExitStack() as stack:
        pools = await ShardPools.open(settings.shard_dsns, min_size=1)
        stack.push_async_callback(pools.close)
        redis = connect_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        nc = await nats.connect(settings.nats_url, name="podium-auth", max_reconnect_attempts=-1)
        stack.push_async_callback(nc.drain)

        deps = Deps(
            Accounts(pools),
            passwords,
            Sessions(redis, names, settings.session_ttl_seconds),
            tokens,
            Limiter.from_settings(settings, redis, names),
            Announcer(nc, names),
        )
        tickets = Tickets(redis, names)
        server, port, health = await start_server(
            settings.auth_listen,
            lambda server: add_to_server(server, deps, tickets),
            settings.grpc_keepalive_ms,
            store_probes(pools, redis, nc),
            settings.dependency_check_ms / 1000,
        )
        stack.push_async_callback(shutdown, server, health)
        await stack.enter_async_context(
            metrics_endpoint(settings.metrics_host, settings.metrics_port)
        )

        log.info("serving", port=port)
        yield port


async def serve(settings: AuthSettings, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, then shut down gracefully."""
    async with running(settings):
        await stop.wait()
    log.info("stopped")
