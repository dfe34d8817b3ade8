"""Recompute a board period in Redis from Postgres, the source of truth.

The period is marked as rebuilding first; then each shard database is read in one
repeatable-read snapshot into scratch keys, and one script swaps them in. Workers writing
meanwhile (their commits may be newer than the snapshot) note their players under the mark,
and the swap carries those standings over when they are newer than the snapshot's. So a reader
sees the old period or the complete new one, and no write that landed during the rebuild is
lost. Only one process rebuilds a period at a time; the others wait for it.
"""

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import grpc
import nats.aio.client
import redis.asyncio as aioredis
import structlog

from infra.boards import MAX_SCORE, Board
from infra.errors import PodiumError
from infra.leaderboard import LUA_HELPERS, PeriodKeys, Standing, register_write, write_args
from infra.shards import ShardPools
from ranking import metrics
from ranking.board_store import BoardStore
from ranking.feed import publish_change

log = structlog.get_logger(__name__)

# Rows per cursor fetch and per Redis call: big enough to amortise round trips, small enough
# that a board of millions never sits in memory at once.
CHUNK_ROWS = 1000

# A rebuild that dies leaves its mark and scratch keys behind; Redis drops them after this.
REBUILD_TTL_SECONDS = 600

# How long a reader waits for another process's rebuild of the same period.
WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.05

_ROWS = """
SELECT s.player_id::text AS player_id, s.score, s.subscore, s.reached_ms, s.version,
       s.metadata, a.username
FROM board_scores s LEFT JOIN accounts a ON a.player_id = s.player_id
WHERE s.board = $1 AND s.period = $2
"""

# KEYS: live ranked, index, values, counts, ready, rebuild mark, touched, seq, then scratch
# ranked, index, values, counts. ARGV: the rebuild's token, dense flag, seq floor.
# Returns the board's new seq, or -1 if the mark is no longer this rebuild's.
_SWAP = (
    LUA_HELPERS
    + """
if redis.call('GET', KEYS[6]) ~= ARGV[1] then return -1 end
local dense = ARGV[2] == '1'
for _, player in ipairs(redis.call('SMEMBERS', KEYS[7])) do
  local live = redis.call('HGET', KEYS[2], player)
  if live then
    local version, zscore, member = parse(live)
    local copied = redis.call('HGET', KEYS[10], player)
    local newer = true
    if copied then
      local old_version, old_zscore, old_member = parse(copied)
      newer = version > old_version
      if newer then
        redis.call('ZREM', KEYS[9], old_member)
        if dense then count(KEYS[11], KEYS[12], old_zscore, old_member, -1) end
      end
    end
    if newer then
      redis.call('ZADD', KEYS[9], zscore, member)
      redis.call('HSET', KEYS[10], player, live)
      if dense then count(KEYS[11], KEYS[12], zscore, member, 1) end
    end
  end
end
for i = 1, 4 do
  if redis.call('EXISTS', KEYS[8 + i]) == 1 then
    redis.call('RENAME', KEYS[8 + i], KEYS[i])
    redis.call('PERSIST', KEYS[i])
  else
    redis.call('DEL', KEYS[i])
  end
end
redis.call('SET', KEYS[5], 1)
redis.call('DEL', KEYS[6], KEYS[7])
if redis.call('EXISTS', KEYS[8]) == 0 then redis.call('SET', KEYS[8], ARGV[3]) end
return redis.call('INCR', KEYS[8])
"""
)


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild wrote: the member count and the board version after it."""

    members: int
    seq: int


class Rebuilder:
    """Rebuilds board periods; the store calls it for a period Redis has not built."""

    def __init__(
        self,
        pools: ShardPools,
        redis: aioredis.Redis,
        store: BoardStore,
        nc: nats.aio.client.Client,
    ) -> None:
        self._pools = pools
        self._redis = redis
        self._store = store
        self._nc = nc
        self._write = register_write(redis)
        self._swap = redis.register_script(_SWAP)
        self._running: dict[tuple[str, str], asyncio.Task] = {}

    async def __call__(self, board: Board, period: str) -> None:
        """Make sure the period is built, joining a rebuild of it already under way here."""
        key = (board.id, period)
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self.rebuild(board, period))
            self._running[key] = task
            task.add_done_callback(lambda _: self._running.pop(key, None))
        await asyncio.shield(task)

    async def rebuild(self, board: Board, period: str) -> Rebuilt | None:
        """Replace the period with what Postgres holds; None if another process did it."""
        keys = self._store.keys(board.id, period)
        token = secrets.token_hex(8)
        marked = await self._redis.set(keys.rebuild, token, nx=True, ex=REBUILD_TTL_SECONDS)
        if not marked:
            metrics.REBUILDS_JOINED.inc()
            await self._wait_until_built(keys)
            return None

        started = time.monotonic()
        scratch = keys.scratch(token)
        try:
            members = await self._copy(board, period, scratch)
            seq = await self._swap(
                keys=[*_swap_keys(keys), *_swap_keys(scratch)[:4]],
                args=[token, "1" if board.ranks == "dense" else "0", time.time_ns() // 1000],
            )
        except BaseException:
            metrics.REBUILDS_FAILED.inc()
            await self._redis.delete(keys.rebuild, *_swap_keys(scratch)[:4])
            raise
        if seq < 0:
            metrics.REBUILDS_FAILED.inc()
            raise PodiumError(
                "REBUILD_INTERRUPTED",
                "the rebuild took too long; try again",
                grpc.StatusCode.ABORTED,
            )

        await publish_change(self._nc, self._store.names, board.id, period, seq)
        metrics.REBUILDS_DONE.inc()
        metrics.REBUILD_SECONDS.observe(time.monotonic() - started)
        log.info("board_rebuilt", board=board.id, period=period, members=members, seq=seq)
        return Rebuilt(members, seq)

    async def _copy(self, board: Board, period: str, scratch: PeriodKeys) -> int:
        """Write the snapshot's standings into the scratch keys; return how many."""
        members = 0
        async with contextlib.AsyncExitStack() as stack:
            conns = []
            for pool in self._pools:
                conn = await stack.enter_async_context(pool.acquire())
                snapshot = conn.transaction(isolation="repeatable_read", readonly=True)
                await stack.enter_async_context(snapshot)
                conns.append(conn)
            async for chunk in _chunks(conns, board, period):
                await self._write_chunk(board, scratch, chunk)
                members += len(chunk)
        return members

    async def _write_chunk(self, board: Board, scratch: PeriodKeys, chunk: list) -> None:
        standings = [standing for standing, _ in chunk]
        usernames = {s.player_id: name for s, name in chunk if name is not None}
        async with self._redis.pipeline(transaction=False) as pipe:
            await self._write(
                keys=scratch.write_keys, args=write_args(board, standings), client=pipe
            )
            for key in _swap_keys(scratch)[:4]:
                pipe.expire(key, REBUILD_TTL_SECONDS)
            if usernames:
                pipe.hset(self._store.names.usernames_key, mapping=usernames)
            await pipe.execute()

    async def _wait_until_built(self, keys: PeriodKeys) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not await self._redis.exists(keys.ready):
            if time.monotonic() > deadline:
                raise PodiumError(
                    "UNAVAILABLE", "the board is being rebuilt", grpc.StatusCode.UNAVAILABLE
                )
            await asyncio.sleep(_POLL_SECONDS)


def _swap_keys(keys: PeriodKeys) -> list[str]:
    return [
        keys.ranked,
        keys.index,
        keys.values,
        keys.counts,
        keys.ready,
        keys.rebuild,
        keys.touched,
        keys.seq,
    ]


async def _chunks(
    conns: list[asyncpg.Connection], board: Board, period: str
) -> AsyncIterator[list[tuple[Standing, str | None]]]:
    for conn in conns:
        cursor = await conn.cursor(_ROWS, board.id, period)
        while rows := await cursor.fetch(CHUNK_ROWS):
            yield [_row(row) for row in rows]


def _row(row: asyncpg.Record) -> tuple[Standing, str | None]:
    if abs(row["score"]) > MAX_SCORE:
        log.error("score_out_of_range", player_id=row["player_id"], score=row["score"])
        raise PodiumError(
            "SCORE_OUT_OF_RANGE",
            "a stored score is too large for an exact ranking",
            grpc.StatusCode.FAILED_PRECONDITION,
        )
    standing = Standing(
        row["player_id"],
        row["score"],
        row["subscore"],
        row["reached_ms"],
        row["version"],
        row["metadata"],
    )
    return standing, row["username"]
