"""Throttling of logins (per username and per client address) and of registrations (per address).

The counters live in Redis, shared by every replica, so spreading guesses over replicas gains
nothing. An attempt is counted when it is admitted, before its password is checked, by one
script that also decides: so a burst of parallel guesses gets exactly `limit` of them checked,
never one per request in flight. The attempt that reaches the limit locks the name (or
address) out for the lockout time, which doubles with every attempt past the limit up to a cap,
and later ones are refused until the lock expires.

A login that proves the password gives its attempt back: it clears the name's count and lock,
and takes itself off the address's count, so a player who mistyped is never locked out by it
and a shared address (a café, a carrier's NAT) is only charged for failures. An attacker cannot
clear an address this way by logging into an account of its own, since only its own attempt is
given back.
"""

from dataclasses import dataclass

import redis.asyncio as aioredis

from auth.config import AuthSettings
from infra.names import Names

USERNAME, ADDRESS, REGISTER = "user", "addr", "register"

# KEYS: (counter, lock) of each subject. ARGV: (limit, window seconds) of each subject, then the
# first lockout and the cap, in seconds. Returns {0} when locked out (the wait follows, in ms),
# or {1, i...} when admitted, where each i is a subject this attempt locked.
_ADMIT = """
local n = #KEYS / 2
local base, cap = tonumber(ARGV[2 * n + 1]), tonumber(ARGV[2 * n + 2])
local wait = 0
for i = 1, n do
  local ttl = redis.call('PTTL', KEYS[2 * i])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return {0, wait} end
local locked = {1}
for i = 1, n do
  local count = redis.call('INCR', KEYS[2 * i - 1])
  if count == 1 then redis.call('EXPIRE', KEYS[2 * i - 1], ARGV[2 * i]) end
  local over = count - tonumber(ARGV[2 * i - 1])
  if over >= 0 then
    local seconds = math.min(base * 2 ^ math.min(over, 20), cap)
    redis.call('SET', KEYS[2 * i], 1, 'EX', math.floor(seconds))
    locked[#locked + 1] = i
  end
end
return locked
"""


@dataclass(frozen=True)
class Limit:
    """How many attempts a subject may have within the window before it is locked out."""

    attempts: int
    window_seconds: int


@dataclass(frozen=True)
class Admission:
    """What admitting one attempt did: the wait if refused, or the subjects it charged."""

    retry_after: int
    subjects: tuple[tuple[str, str], ...] = ()
    locked: frozenset[int] = frozenset()


class Limiter:
    """Admit attempts against per-subject limits, and give back the ones that succeeded."""

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
        self._lockout = (lockout_seconds, lockout_max_seconds)
        self._admit = redis.register_script(_ADMIT)

    @classmethod
    def from_settings(
        cls, settings: AuthSettings, redis: aioredis.Redis, names: Names
    ) -> "Limiter":
        window = settings.login_failure_window_seconds
        limits = {
            USERNAME: Limit(settings.login_failures_per_username, window),
            ADDRESS: Limit(settings.login_failures_per_address, window),
            REGISTER: Limit(
                settings.registrations_per_address, settings.registration_window_seconds
            ),
        }
        lockout, cap = settings.login_lockout_seconds, settings.login_lockout_max_seconds
        return cls(redis, names, limits, lockout, cap)

    async def admit_login(self, username_key: str, address: str) -> Admission:
        """Charge a login attempt to its name and address; a name of "" is not charged."""
        subjects = [(USERNAME, username_key), (ADDRESS, address)]
        return await self._admit_to([(kind, key) for kind, key in subjects if key])

    async def admit_registration(self, address: str) -> Admission:
        return await self._admit_to([(REGISTER, address)] if address else [])

    async def login_succeeded(self, admission: Admission) -> None:
        """Give the attempt back: forget the name's failures, and this one of the address's."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for index, (kind, subject) in enumerate(admission.subjects, start=1):
                if kind == USERNAME:
                    pipe.delete(self._counter(kind, subject), self._lock(kind, subject))
                    continue
                pipe.decr(self._counter(kind, subject))
                if index in admission.locked:
                    pipe.delete(self._lock(kind, subject))
            await pipe.execute()

    async def _admit_to(self, subjects: list[tuple[str, str]]) -> Admission:
        if not subjects:
            return Admission(0)

        keys, args = [], []
        for kind, subject in subjects:
            keys += [self._counter(kind, subject), self._lock(kind, subject)]
            args += [self._limits[kind].attempts, self._limits[kind].window_seconds]
        reply = await self._admit(keys=keys, args=[*args, *self._lockout])
        if reply[0] == 0:
            # Round up, so that a client waiting Retry-After seconds is never early.
            return Admission(max(1, -(-int(reply[1]) // 1000)))
        return Admission(0, tuple(subjects), frozenset(int(i) for i in reply[1:]))

    def _counter(self, kind: str, subject: str) -> str:
        return self._names.login_failures_key(kind, subject)

    def _lock(self, kind: str, subject: str) -> str:
        return self._names.login_lock_key(kind, subject)
