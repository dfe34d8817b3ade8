"""Recompute a board period in Redis from board_scores in Postgres, the source of truth."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import grpc
import nats.aio.client
import structlog

from infra.errors import PodiumError
from infra.shards import ShardPools
from ranking.board_store import BoardRow, BoardStore
from ranking.feed import publish_change

log = structlog.get_logger(__name__)

# Rows per cursor fetch and per Redis pipeline: big enough to amortise round trips, small
# enough that a board of millions never sits in memory at once.
CHUNK_ROWS = 1000

# A ZSET score is a double: integers beyond this would silently collapse into their neighbours.
MAX_EXACT_SCORE = 2**53 - 1

_ROWS = """
SELECT s.player_id::text AS player_id, s.score, a.username
FROM board_scores s LEFT JOIN accounts a ON a.player_id = s.player_id
WHERE s.board = $1 AND s.period = $2
"""


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild wrote: the member count and the board version after it."""

    members: int
    seq: int


async def rebuild_board(
    pools: ShardPools,
    store: BoardStore,
    nc: nats.aio.client.Client,
    board: str,
    period: str,
) -> Rebuilt:
    """Replace the Redis board period with the Postgres rows, then announce the change.

    Each shard database is read in one repeatable-read snapshot, so the rebuilt board holds
    no half-applied action of any player (a player's rows all live on one database).
    """
    async with contextlib.AsyncExitStack() as stack:
        conns = []
        for pool in pools:
            conn = await stack.enter_async_context(pool.acquire())
            snapshot = conn.transaction(isolation="repeatable_read", readonly=True)
            await stack.enter_async_context(snapshot)
            conns.append(conn)
        members, seq = await store.replace(board, period, _chunks(conns, board, period))

    await publish_change(nc, store.names, board, period, seq)
    log.info("board_rebuilt", board=board, period=period, members=members, seq=seq)
    return Rebuilt(members, seq)


async def _chunks(
    conns: list[asyncpg.Connection], board: str, period: str
) -> AsyncIterator[list[BoardRow]]:
    for conn in conns:
        cursor = await conn.cursor(_ROWS, board, period)
        while rows := await cursor.fetch(CHUNK_ROWS):
            yield [_board_row(row) for row in rows]


def _board_row(row: asyncpg.Record) -> BoardRow:
    if abs(row["score"]) > MAX_EXACT_SCORE:
        log.error("score_out_of_range", player_id=row["player_id"], score=row["score"])
        raise PodiumError(
            "SCORE_OUT_OF_RANGE",
            "a stored score is too large for an exact ranking",
            grpc.StatusCode.FAILED_PRECONDITION,
        )
    return BoardRow(row["player_id"], row["score"], row["username"])
