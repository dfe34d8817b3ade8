"""Leases on the action partitions, in Redis: each partition is pulled by one worker at a time.

A lease is a key holding its worker's id, with an expiry the holder keeps renewing; a worker
that dies stops renewing, and its partitions are free again when the lease runs out. Workers
also announce themselves in a sorted set scored by when their announcement runs out, so each
can count the live workers and hold its fair share: it takes free partitions while it has
fewer, and gives some back when it has more.

Leases decide who pulls a partition, which is what keeps one player's actions in order; they
never decide whether an action applies. That is the state-hash check in Postgres, so a lease
lost in a Redis failover costs order for a moment, never correctness.
"""

import math
import time

import redis.asyncio as aioredis

from infra.names import Names
from infra.shards import ACTION_PARTITIONS

# KEYS: leases. ARGV: worker id, ttl in ms. Extends those still held; returns their indexes.
_RENEW = """
local kept = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    kept[#kept + 1] = i
  end
end
return kept
"""

# KEYS: a lease. ARGV: worker id. Deletes it only if this worker still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def fair_share(workers: int) -> int:
    """How many partitions each of `workers` live workers should hold."""
    return math.ceil(ACTION_PARTITIONS / max(workers, 1))


class Leases:
    """One worker's view of the partition leases of a namespace."""

    def __init__(
        self, redis: aioredis.Redis, names: Names, worker_id: str, ttl_seconds: float
    ) -> None:
        self._redis = redis
        self._names = names
        self.worker_id = worker_id
        self._ttl_ms = int(ttl_seconds * 1000)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def announce(self) -> int:
        """Say this worker is alive for another lease time; return how many workers are."""
        now_ms = int(time.time() * 1000)
        key = self._names.game_workers_key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {self.worker_id: now_ms + self._ttl_ms})
            pipe.zremrangebyscore(key, "-inf", now_ms)
            pipe.zcard(key)
            pipe.pexpire(key, self._ttl_ms * 10)
            _, _, workers, _ = await pipe.execute()
        return workers

    async def withdraw(self) -> None:
        """Leave the count of live workers at once (on a clean stop)."""
        await self._redis.zrem(self._names.game_workers_key, self.worker_id)

    async def renew(self, partitions: list[int]) -> set[int]:
        """Extend the leases of these partitions; return those this worker still holds."""
        if not partitions:
            return set()
        keys = [self._names.partition_lease_key(p) for p in partitions]
        kept = await self._renew(keys=keys, args=[self.worker_id, self._ttl_ms])
        return {partitions[int(i) - 1] for i in kept}

    async def free(self) -> list[int]:
        """Partitions nobody holds a lease on."""
        keys = [self._names.partition_lease_key(p) for p in range(ACTION_PARTITIONS)]
        holders = await self._redis.mget(keys)
        return [p for p, holder in enumerate(holders) if holder is None]

    async def acquire(self, partition: int) -> bool:
        key = self._names.partition_lease_key(partition)
        return bool(await self._redis.set(key, self.worker_id, nx=True, px=self._ttl_ms))

    async def release(self, partition: int) -> None:
        key = self._names.partition_lease_key(partition)
        await self._release(keys=[key], args=[self.worker_id])
