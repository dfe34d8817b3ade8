"""Login throttling: failed logins are counted per username and per client address in Redis.

Every replica shares the counters, so spreading guesses over replicas gains nothing. Once a
username (or an address) has failed `limit` times within the window, logins for it are refused
for the lockout time, which doubles with every further failure up to a cap. Only failures are
counted, and a success clears the username's count, so a player who mistyped once is never
locked out by it; an address's count is left to expire, so an attacker cannot clear it by
logging into an account of its own.
"""

from dataclasses import dataclass

import redis.asyncio as aioredis

from auth.config import AuthSettings
from infra.names import Names

USERNAME, ADDRESS = "user", "addr"


@dataclass(frozen=True)
class Limit:
    """How many failures a username or address may have before it is locked out."""

    failures: int
    window_seconds: int


class LoginLimiter:
    """Count failures and say how long a login must wait."""

    def __init__(
        self,
        redis: aioredis.Redis,
        names: Names,
        limits: dict[str, Limit],
        lockout_seconds: int,
        lockout_max_seconds: int,
    ) -> None:
        self._redis = redis
        self._names = names
        self._limits = limits
        self._lockout_seconds = lockout_seconds
        self._lockout_max_seconds = lockout_max_seconds

    @classmethod
    def from_settings(
        cls, settings: AuthSettings, redis: aioredis.Redis, names: Names
    ) -> "LoginLimiter":
        window = settings.login_failure_window_seconds
        limits = {
            USERNAME: Limit(settings.login_failures_per_username, window),
            ADDRESS: Limit(settings.login_failures_per_address, window),
        }
        lockout, cap = settings.login_lockout_seconds, settings.login_lockout_max_seconds
        return cls(redis, names, limits, lockout, cap)

    async def retry_after(self, username_key: str, address: str) -> int:
        """Seconds until a login for this name from this address may be tried; 0 for now."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for kind, subject in self._subjects(username_key, address):
                pipe.pttl(self._names.login_lock_key(kind, subject))
            remaining_ms = await pipe.execute()
        # PTTL is negative for a key that does not exist; round up so the wait is never short.
        return max((-(-ms // 1000) for ms in remaining_ms if ms > 0), default=0)

    async def failed(self, username_key: str, address: str) -> None:
        """Count a failed login; lock the name or address out once it is past its limit."""
        subjects = self._subjects(username_key, address)
        async with self._redis.pipeline(transaction=True) as pipe:
            for kind, subject in subjects:
                counter = self._names.login_failures_key(kind, subject)
                pipe.incr(counter)
                pipe.expire(counter, self._limits[kind].window_seconds, nx=True)
            replies = await pipe.execute()

        counts = replies[::2]
        for (kind, subject), count in zip(subjects, counts, strict=True):
            over = count - self._limits[kind].failures
            if over >= 0:
                lockout = self._lockout_seconds * 2 ** min(over, 20)
                lock = self._names.login_lock_key(kind, subject)
                await self._redis.set(lock, 1, ex=min(lockout, self._lockout_max_seconds))

    async def succeeded(self, username_key: str) -> None:
        """Forget the name's failures after a login that proved the password."""
        await self._redis.delete(self._names.login_failures_key(USERNAME, username_key))

    @staticmethod
    def _subjects(username_key: str, address: str) -> list[tuple[str, str]]:
        subjects = []
        if username_key:
            subjects.append((USERNAME, username_key))
        if address:
            subjects.append((ADDRESS, address))
        return subjects
