"""The Redis view of the boards: ranked reads, usernames, and the atomic rebuild write.

Every read of entries and of the board version happens in one atomic Redis step, so the seq a
caller gets always matches the entries it came with.
"""

import secrets
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
import structlog
from podium.ranking.v1 import ranking_pb2
from redis.exceptions import RedisError

from infra.names import Names
from infra.shards import ShardPools

log = structlog.get_logger(__name__)

# A rebuild that dies half-way leaves its temporary key behind; Redis drops it after this.
REBUILD_KEY_TTL_SECONDS = 3600

# Rank, rows and seq in one script, because the range depends on the player's rank and a
# change between two round trips would shift it.
_AROUND_SCRIPT = """
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
local seq = redis.call('GET', KEYS[2]) or '0'
if not rank then
  return {-1, seq, {}}
end
local first = math.max(0, rank - tonumber(ARGV[2]))
local last = rank + tonumber(ARGV[2])
return {first, seq, redis.call('ZRANGE', KEYS[1], first, last, 'WITHSCORES')}
"""


@dataclass(frozen=True)
class BoardRow:
    """One player's total on a board period, as Postgres holds it."""

    player_id: str
    score: int
    username: str | None


@dataclass(frozen=True)
class BoardView:
    """A run of consecutive ranked entries and the board version they were read at.

    `entries` is empty when the board period (or, for `around`, the player) is absent.
    """

    entries: list[ranking_pb2.Entry]
    seq: int
    found: bool = True


class BoardStore:
    """Reads ranked slices of board ZSETs and replaces a whole board period atomically."""

    def __init__(self, redis: aioredis.Redis, pools: ShardPools, names: Names) -> None:
        self._redis = redis
        self._pools = pools
        self.names = names
        self._around = redis.register_script(_AROUND_SCRIPT)

    async def top(self, board: str, period: str, limit: int) -> BoardView:
        """The best `limit` entries of a board period, rank 1 first."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrange(self.names.board_key(board, period), 0, limit - 1, withscores=True)
            pipe.get(self.names.board_seq_key(board))
            rows, seq = await pipe.execute()

        entries = await self._entries(0, rows)
        return BoardView(entries, int(seq or 0))

    async def around(self, board: str, period: str, player_id: str, radius: int) -> BoardView:
        """The player's entry with up to `radius` entries on each side; found=False if absent."""
        keys = [self.names.board_key(board, period), self.names.board_seq_key(board)]
        first, seq, flat = await self._around(keys=keys, args=[player_id, radius])

        if first < 0:
            return BoardView([], int(seq), found=False)
        pairs = [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]
        return BoardView(await self._entries(first, pairs), int(seq))

    async def seqs(self, boards: Iterable[str]) -> dict[str, int]:
        """The current version of each board, 0 for a board that never changed."""
        boards = list(boards)
        values = await self._redis.mget([self.names.board_seq_key(b) for b in boards])
        return {board: int(value or 0) for board, value in zip(boards, values, strict=True)}

    async def replace(
        self, board: str, period: str, chunks: AsyncIterable[list[BoardRow]]
    ) -> tuple[int, int]:
        """Make a board period hold exactly the rows of `chunks`; return (members, seq).

        Rows go to a private temporary key first and reach the real key by one RENAME, so a
        reader sees either the old board or the complete new one, never a half-written one.
        """
        key = self.names.board_key(board, period)
        scratch = f"{key}:rebuild:{secrets.token_hex(8)}"
        members = 0
        try:
            async for chunk in chunks:
                await self._write_chunk(scratch, chunk)
                members += len(chunk)

            return members, await self._swap(board, key, scratch, members)
        except BaseException:
            await self._drop(scratch)
            raise

    async def _drop(self, scratch: str) -> None:
        try:
            await self._redis.delete(scratch)
        except RedisError as exc:
            log.warning("rebuild_cleanup_failed", key=scratch, error=repr(exc))

    async def _write_chunk(self, scratch: str, chunk: list[BoardRow]) -> None:
        usernames = {row.player_id: row.username for row in chunk if row.username is not None}

        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(scratch, {row.player_id: -row.score for row in chunk})
            pipe.expire(scratch, REBUILD_KEY_TTL_SECONDS)
            if usernames:
                pipe.hset(self.names.usernames_key, mapping=usernames)
            await pipe.execute()

    async def _swap(self, board: str, key: str, scratch: str, members: int) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            if members:
                pipe.rename(scratch, key)
                # RENAME carries the scratch key's TTL over; the board itself must not expire.
                pipe.persist(key)
            else:
                pipe.delete(key)
            pipe.incr(self.names.board_seq_key(board))
            *_, seq = await pipe.execute()
        return int(seq)

    async def _entries(
        self, first: int, rows: Iterable[tuple[str, float]]
    ) -> list[ranking_pb2.Entry]:
        usernames = await self._usernames([member for member, _ in rows])
        return [
            ranking_pb2.Entry(
                rank=first + offset + 1,
                player_id=member,
                username=usernames.get(member, ""),
                # The ZSET holds the negated score; every |score| < 2^53 survives the double.
                score=int(-score),
            )
            for offset, (member, score) in enumerate(rows)
        ]

    async def _usernames(self, player_ids: list[str]) -> dict[str, str]:
        if not player_ids:
            return {}
        values = await self._redis.hmget(self.names.usernames_key, player_ids)
        known = {
            pid: name for pid, name in zip(player_ids, values, strict=True) if name is not None
        }

        missing = [pid for pid in player_ids if pid not in known]
        if missing:
            known.update(await self._refill_usernames(missing))
        return known

    async def _refill_usernames(self, player_ids: list[str]) -> dict[str, str]:
        """Fetch usernames absent from the hash from Postgres and write them back.

        A name is decoration on a ranked entry: when Postgres cannot answer, the entry goes
        out with an empty name rather than failing the whole read.
        """
        by_pool: dict[asyncpg.Pool, list[str]] = {}
        for player_id in player_ids:
            by_pool.setdefault(self._pools.for_player(player_id), []).append(player_id)

        found = {}
        try:
            for pool, ids in by_pool.items():
                rows = await pool.fetch(
                    "SELECT player_id::text, username FROM accounts"
                    " WHERE player_id = ANY($1::text[]::uuid[])",
                    ids,
                )
                found.update((row["player_id"], row["username"]) for row in rows)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("username_lookup_failed", players=len(player_ids), error=repr(exc))
            return {}

        if found:
            try:
                await self._redis.hset(self.names.usernames_key, mapping=found)
            except RedisError as exc:
                log.warning("username_writeback_failed", players=len(found), error=repr(exc))
        return found
