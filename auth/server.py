"""The auth service's lifecycle: open clients, serve gRPC, stop in order."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
import redis.asyncio as aioredis
import structlog

from auth.api import AuthDeps, add_to_server
from auth.config import AuthSettings
from auth.passwords import Passwords
from auth.sessions import Sessions
from auth.store import Accounts
from auth.tokens import Tokens
from infra.grpc_server import shutdown, start_server
from infra.names import Names

log = structlog.get_logger(__name__)


@asynccontextmanager
async def running(settings: AuthSettings) -> AsyncIterator[int]:
    """Serve AuthService while the block runs and yield the bound port.

    On exit the server turns NOT_SERVING and finishes in-flight calls before the Postgres
    pool and the Redis client close under them.
    """
    tokens = Tokens.from_settings(settings)
    passwords = Passwords(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
    )

    async with AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(settings.postgres_dsn, min_size=1)
        stack.push_async_callback(pool.close)
        redis = aioredis.from_url(settings.redis_url)
        stack.push_async_callback(redis.aclose)

        sessions = Sessions(redis, Names(settings.namespace), settings.session_ttl_seconds)
        deps = AuthDeps(Accounts(pool), passwords, sessions, tokens)
        server, port, health = await start_server(
            settings.auth_listen, lambda server: add_to_server(server, deps)
        )
        stack.push_async_callback(shutdown, server, health)

        log.info("serving", port=port)
        yield port


async def serve(settings: AuthSettings, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, then shut down gracefully."""
    async with running(settings):
        await stop.wait()
    log.info("stopped")
