"""Where a player's rows live: logical shards mapped onto one or more Postgres databases.

Players are spread over a fixed, large number of logical shards, and contiguous ranges of
logical shards map onto the configured databases, so a range can move to a new database without
rehashing anyone. A player id carries its logical shard in its first 16 bits, and a new
player's shard is the hash of the lower-cased username: an account, its username and its game
state therefore live on one database, and two spellings of one name ("Alice", "alice") always
meet on the same database, where a unique index refuses the second.
"""

import asyncio
import hashlib
import uuid
from collections.abc import Iterator

import asyncpg

LOGICAL_SHARDS = 1024

# Actions travel on this many JetStream partitions, each applied in order by one worker at a time.
# Each partition is a contiguous range of logical shards, so when the shard database count
# divides it, a partition's players share one database. Fixed, like LOGICAL_SHARDS: changing it
# re-partitions players, so it must only change on an empty actions stream.
ACTION_PARTITIONS = 16


def shard_of_player(player_id: str) -> int:
    """The logical shard of a player id in canonical text (infra.ids): its first 16 bits.

    Any UUID maps somewhere; ours map where we put them.
    """
    return int(player_id[:4], 16) % LOGICAL_SHARDS


def partition_of_player(player_id: str) -> int:
    """The actions partition of a player: all of one player's actions share it."""
    return shard_of_player(player_id) * ACTION_PARTITIONS // LOGICAL_SHARDS


def shard_of_username(username_key: str) -> int:
    """The logical shard a (lower-cased) username belongs to."""
    digest = hashlib.sha256(username_key.encode()).digest()
    return int.from_bytes(digest[:4], "big") % LOGICAL_SHARDS


def new_player_id(shard: int) -> str:
    """A random UUID (version 4) whose first 16 bits name the logical shard."""
    raw = bytearray(uuid.uuid4().bytes)
    raw[0:2] = shard.to_bytes(2, "big")
    return str(uuid.UUID(bytes=bytes(raw)))


def database_of(shard: int, databases: int) -> int:
    """Index of the database holding a logical shard: contiguous, equal ranges."""
    return shard * databases // LOGICAL_SHARDS


class ShardPools:
    """One asyncpg pool per database, and the routing from a player or a name to its pool."""

    def __init__(self, pools: list[asyncpg.Pool]) -> None:
        self._pools = pools

    @classmethod
    async def open(cls, dsns: list[str], **pool_options) -> "ShardPools":
        pools = []
        try:
            for dsn in dsns:
                pools.append(await asyncpg.create_pool(dsn, **pool_options))
        except BaseException:
            for pool in pools:
                await pool.close()
            raise
        return cls(pools)

    def for_player(self, player_id: str) -> asyncpg.Pool:
        return self._pools[database_of(shard_of_player(player_id), len(self._pools))]

    def for_username(self, username_key: str) -> asyncpg.Pool:
        return self._pools[database_of(shard_of_username(username_key), len(self._pools))]

    def __iter__(self) -> Iterator[asyncpg.Pool]:
        return iter(self._pools)

    def __len__(self) -> int:
        return len(self._pools)

    async def close(self, timeout: float | None = None) -> None:
        """Close every pool; with a timeout, a pool whose connections do not come back in time
        (a stalled database) is terminated instead, so that a stopping process can end."""
        for pool in self._pools:
            try:
                await asyncio.wait_for(pool.close(), timeout)
            except TimeoutError:
                pool.terminate()
