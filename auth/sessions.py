"""What auth keeps in Redis: open sessions, their refresh tokens and the username directory.

A session lives as long as its Redis hash: deleting the hash ends it for every token that
names it, on every replica at once. The hash holds the digest of the one refresh token that
may be used next; digests of spent ones go to a set beside it, so a spent token presented
again is told apart from a made-up one and ends the session (it was stolen, or replayed).
A refresh token names its session ("<session key>.<secret>"), so each step touches the keys
of one session only.
"""

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from enum import Enum

import redis.asyncio as aioredis

from infra.names import Names

SESSION_KEY = re.compile(r"[0-9a-f]{32}")
_MAX_REFRESH_TOKEN_CHARS = 128

# KEYS: session hash, spent set. ARGV: digest presented, digest of its successor.
# Returns {1, player_id, username} rotated, {2, player_id} reused (session deleted), {0} unknown.
_ROTATE = """
local current = redis.call('HGET', KEYS[1], 'refresh')
if not current then return {0} end
if current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'refresh', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]))
  return {1, redis.call('HGET', KEYS[1], 'player_id'), redis.call('HGET', KEYS[1], 'username')}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  local player = redis.call('HGET', KEYS[1], 'player_id')
  redis.call('DEL', KEYS[1], KEYS[2])
  return {2, player}
end
return {0}
"""


class Rotation(Enum):
    ROTATED = 1
    REUSED = 2
    UNKNOWN = 0


@dataclass(frozen=True)
class OpenedSession:
    """The keys handed to a player at login."""

    session_key: str
    refresh_token: str


@dataclass(frozen=True)
class Rotated:
    """The outcome of presenting a refresh token."""

    outcome: Rotation
    session_key: str = ""
    player_id: str = ""
    username: str = ""
    refresh_token: str = ""


def _digest(refresh_token: str) -> str:
    """Store a refresh token by its digest, so that a read of Redis cannot replay it."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def _new_refresh_token(session_key: str) -> str:
    return f"{session_key}.{secrets.token_urlsafe(32)}"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Sessions:
    """Sessions and usernames under one namespace, with one lifetime for every session."""

    def __init__(self, redis: aioredis.Redis, names: Names, ttl_seconds: int) -> None:
        self._redis = redis
        self._names = names
        self._ttl_seconds = ttl_seconds
        self._rotate = redis.register_script(_ROTATE)

    async def open(self, player_id: str, username: str) -> OpenedSession:
        """Create a session and its first refresh token, expiring after the session lifetime."""
        session_key = secrets.token_hex(16)
        opened = OpenedSession(session_key, _new_refresh_token(session_key))
        session = self._names.session_key(session_key)
        by_player = self._names.player_sessions_key(player_id)
        now = time.time()
        fields = {
            "player_id": player_id,
            "username": username,
            "created_at": int(now),
            "refresh": _digest(opened.refresh_token),
        }

        # One MULTI/EXEC, so that no session is ever left without its expiry. The player's
        # index is scored by expiry, which lets each login drop the sessions that lapsed.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(session, mapping=fields)
            pipe.expire(session, self._ttl_seconds)
            pipe.zremrangebyscore(by_player, "-inf", now)
            pipe.zadd(by_player, {session_key: now + self._ttl_seconds})
            pipe.expire(by_player, self._ttl_seconds)
            await pipe.execute()
        return opened

    async def rotate(self, refresh_token: str) -> Rotated:
        """Spend a refresh token for its successor; a spent one ends its session instead."""
        session_key, dot, secret = refresh_token.partition(".")
        if len(refresh_token) > _MAX_REFRESH_TOKEN_CHARS or not dot or not secret:
            return Rotated(Rotation.UNKNOWN)
        if not SESSION_KEY.fullmatch(session_key):
            return Rotated(Rotation.UNKNOWN)

        successor = _new_refresh_token(session_key)
        keys = [self._names.session_key(session_key), self._names.spent_refresh_key(session_key)]
        reply = await self._rotate(keys=keys, args=[_digest(refresh_token), _digest(successor)])
        outcome = Rotation(reply[0])
        if outcome is Rotation.ROTATED:
            return Rotated(outcome, session_key, _text(reply[1]), _text(reply[2]), successor)
        if outcome is Rotation.REUSED:
            player_id = _text(reply[1])
            await self._redis.zrem(self._names.player_sessions_key(player_id), session_key)
            return Rotated(outcome, session_key, player_id)
        return Rotated(outcome)

    async def is_open(self, session_key: str, player_id: str) -> bool:
        """Whether the session still exists and belongs to this player."""
        owner = await self._redis.hget(self._names.session_key(session_key), "player_id")
        return _text(owner) == player_id

    async def end(self, session_key: str, player_id: str) -> bool:
        """End one session of the player; False if it had already ended."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._names.session_key(session_key))
            pipe.delete(self._names.spent_refresh_key(session_key))
            pipe.zrem(self._names.player_sessions_key(player_id), session_key)
            deleted, _, _ = await pipe.execute()
        return deleted == 1

    async def end_all(self, player_id: str) -> list[str]:
        """End every open session of the player; return the keys of those that were open."""
        by_player = self._names.player_sessions_key(player_id)
        keys = [_text(key) for key in await self._redis.zrange(by_player, 0, -1)]
        ended = []
        for session_key in keys:
            if await self.end(session_key, player_id):
                ended.append(session_key)
        return ended

    async def ended(self, session_keys: list[str]) -> list[str]:
        """Those of the given sessions that no longer exist."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_key in session_keys:
                pipe.exists(self._names.session_key(session_key))
            exists = await pipe.execute()
        return [key for key, found in zip(session_keys, exists, strict=True) if not found]

    async def remember_username(self, player_id: str, username: str) -> None:
        """Publish the username for ranking, which shows it next to the player's scores."""
        await self._redis.hset(self._names.usernames_key, player_id, username)
