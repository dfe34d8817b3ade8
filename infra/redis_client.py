"""The Redis client every service opens: a bounded pool whose callers wait their turn.

redis-py's default pool refuses a caller outright once its 100 connections are busy
(MaxConnectionsError), so a burst of logins or socket upgrades turned into 503s. A blocking
pool makes the caller wait for a free connection instead, up to a bound, and only then fail
as a store that is down.
"""

import redis.asyncio as aioredis

MAX_CONNECTIONS = 100
WAIT_SECONDS = 5.0


def connect_redis(
    url: str, max_connections: int = MAX_CONNECTIONS, wait_seconds: float = WAIT_SECONDS, **kwargs
) -> aioredis.Redis:
    """A client on its own pool, which closes with it (aclose)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_seconds, **kwargs
    )
    return aioredis.Redis.from_pool(pool)
