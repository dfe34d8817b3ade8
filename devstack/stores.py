"""Where the stack's Postgres, Redis and NATS are, and which of them devstack must start itself.

A store whose PODIUM_* variable is set must answer there: starting another server in its place
would hide a typo or a stopped server behind an empty one. A store that nobody configured is
used at its default address when something answers there, and otherwise started from a PyPI
package (devstack.embedded), so that `make up` works on a machine with none of them installed.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from devstack.config import EmbeddedMode, StackSettings

PROBE_TIMEOUT_SECONDS = 1.0
# Ports the clients assume when a URL names none.
DEFAULT_PORTS = {
    "postgres": 5432,
    "postgresql": 5432,
    "redis": 6379,
    "rediss": 6379,
    "nats": 4222,
    "tls": 4222,
}


class StoreUnavailable(Exception):
    """A store the stack cannot use; the message says which one and what to do about it."""


@dataclass(frozen=True)
class Store:
    """One backing store: the variable that places it, its URLs, and whether anyone set them."""

    name: str
    variable: str
    urls: tuple[str, ...]
    configured: bool


def stores_of(settings: StackSettings) -> list[Store]:
    """The three stores as the settings place them; `configured` means read from PODIUM_*."""
    chosen = settings.model_fields_set
    return [
        Store(
            "postgres",
            "PODIUM_POSTGRES_DSN" if not settings.postgres_shards else "PODIUM_POSTGRES_SHARDS",
            tuple(settings.shard_dsns),
            "postgres_dsn" in chosen or bool(settings.postgres_shards),
        ),
        Store("redis", "PODIUM_REDIS_URL", (settings.redis_url,), "redis_url" in chosen),
        Store("nats", "PODIUM_NATS_URL", (settings.nats_url,), "nats_url" in chosen),
    ]


async def must_embed(store: Store, mode: EmbeddedMode) -> bool:
    """Whether devstack starts this store itself; raises StoreUnavailable if it cannot have it.

    mode "auto" embeds an unconfigured store only when nothing answers at its default address,
    "always" embeds every unconfigured store (keeping a machine's own servers out of the stack),
    and "never" embeds none.
    """
    if not store.configured and mode == "always":
        return True

    try:
        silent = [url for url in store.urls if await is_silent(url)]
    except ValueError as error:
        raise StoreUnavailable(f"{store.variable}: {error}") from error
    if not silent:
        return False
    if store.configured:
        raise StoreUnavailable(
            f"{store.name}: nothing answers at {silent[0]}, set by {store.variable}; start it "
            f"there, or unset {store.variable} to let devstack start an embedded {store.name}"
        )
    if mode == "never":
        raise StoreUnavailable(
            f"{store.name}: nothing answers at its default address {silent[0]}, and "
            f"PODIUM_EMBEDDED_SERVERS is never; start it there, or set {store.variable}"
        )
    return True


async def is_silent(url: str) -> bool:
    """Whether a TCP connection to the URL's host and port fails; ValueError if it has none.

    A URL that names no host (a Unix socket) is not probed: its client will say what is wrong.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError as error:
        raise ValueError(f"{url} has no valid port ({error})") from error
    if not parts.hostname:
        return False
    if port is None:
        raise ValueError(f"{url} names no port, and {parts.scheme}:// has no default one")

    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), PROBE_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError):
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False
