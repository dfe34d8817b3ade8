"""What auth keeps in Redis: open sessions, refresh tokens and the username directory.

A session lives as long as its Redis hash: deleting the hash ends it for every token that
names it, on every replica at once.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from infra.names import Names


@dataclass(frozen=True)
class OpenedSession:
    """The keys handed to a player at login."""

    session_key: str
    refresh_token: str


def refresh_token_hash(refresh_token: str) -> str:
    """Key a refresh token by its digest, so that a read of Redis cannot replay it."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()


class Sessions:
    """Sessions and usernames under one namespace, with one lifetime for every session."""

    def __init__(self, redis: aioredis.Redis, names: Names, ttl_seconds: int) -> None:
        self._redis = redis
        self._names = names
        self._ttl_seconds = ttl_seconds

    async def open(self, player_id: str, username: str) -> OpenedSession:
        """Create a session and its refresh token, both expiring after the session lifetime."""
        opened = OpenedSession(secrets.token_hex(16), secrets.token_urlsafe(32))
        session = self._names.session_key(opened.session_key)
        fields = {
            "player_id": player_id,
            "username": username,
            "created_at": int(time.time()),
        }

        # One MULTI/EXEC, so that no session is ever left without its expiry.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(session, mapping=fields)
            pipe.expire(session, self._ttl_seconds)
            pipe.set(
                self._names.refresh_key(refresh_token_hash(opened.refresh_token)),
                opened.session_key,
                ex=self._ttl_seconds,
            )
            await pipe.execute()
        return opened

    async def is_open(self, session_key: str, player_id: str) -> bool:
        """Whether the session still exists and belongs to this player."""
        owner = await self._redis.hget(self._names.session_key(session_key), "player_id")
        if isinstance(owner, bytes):
            owner = owner.decode()
        return owner == player_id

    async def remember_username(self, player_id: str, username: str) -> None:
        """Publish the username for ranking, which shows it next to the player's scores."""
        await self._redis.hset(self._names.usernames_key, player_id, username)
