"""Board periods opening and closing: each recorded once, whoever watches the clock.

Every ranking replica ticks; the first to see a period begin records it (board_periods, on the
first shard database) and only that one announces the reset, so a reset happens once however
many replicas run or restart across the boundary. A period closes when it stops taking late
actions (its end plus the board's grace, the rule game workers refuse PERIOD_CLOSED by); the
replica that records the close lets the period's Redis keys expire after the retention time,
and a later read rebuilds them from Postgres, so past periods stay readable with ranks.
"""

import asyncio
import contextlib
from dataclasses import dataclass

import asyncpg
import nats.aio.client
import redis.asyncio as aioredis
import structlog

from infra.boards import Board, boards
from ranking.board_store import BoardStore
from ranking.feed import Clock, publish_change

log = structlog.get_logger(__name__)

TICK_SECONDS = 1.0


@dataclass(frozen=True)
class PeriodRecord:
    """One period as recorded: its key and when it opened and closed (Unix ms, 0 if open)."""

    period: str
    opened_ms: int
    closed_ms: int


class Periods:
    """Records the periods of every board that resets, and lists them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: BoardStore,
        redis: aioredis.Redis,
        nc: nats.aio.client.Client,
        clock: Clock,
        retention_seconds: int,
    ) -> None:
        self._pool = pool
        self._store = store
        self._redis = redis
        self._nc = nc
        self._clock = clock
        self._retention = retention_seconds
        self._seen: dict[str, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set. A tick in progress finishes first: stopping by
        cancellation could land inside a database call, which may swallow it."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:
                # A store down, most likely; the next tick tries again, and nothing is lost
                # meanwhile: the records only catch up later.
                log.warning("periods_tick_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)

    async def tick(self) -> None:
        """Record the periods that began and the ones that closed since the last tick."""
        now = self._clock()
        for board in boards().values():
            if board.resets and self._seen.get(board.id) != (period := board.period_at(now)):
                await self._open(board, period)
                self._seen[board.id] = period
        await self._close_due(now)

    async def list(self, board: Board, limit: int) -> list[PeriodRecord]:
        rows = await self._pool.fetch(
            "SELECT period, (extract(epoch FROM opened_at) * 1000)::bigint AS opened,"
            " coalesce((extract(epoch FROM closed_at) * 1000)::bigint, 0) AS closed"
            " FROM board_periods WHERE board = $1 ORDER BY opened_at DESC, period DESC LIMIT $2",
            board.id,
            limit,
        )
        return [PeriodRecord(r["period"], r["opened"], r["closed"]) for r in rows]

    async def _open(self, board: Board, period: str) -> None:
        opened = await self._pool.fetchval(
            "INSERT INTO board_periods (board, period) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING true",
            board.id,
            period,
        )
        if opened:
            log.info("board_reset", board=board.id, period=period)
            seqs = await self._store.seqs([board.id])
            await publish_change(self._nc, self._store.names, board.id, period, seqs[board.id])

    async def _close_due(self, now: int) -> None:
        rows = await self._pool.fetch(
            "SELECT board, period FROM board_periods WHERE closed_at IS NULL"
        )
        for row in rows:
            board = boards().get(row["board"])
            if board is None or now <= board.closed_at_ms(row["period"]):
                continue
            closed = await self._pool.fetchval(
                "UPDATE board_periods SET closed_at = now()"
                " WHERE board = $1 AND period = $2 AND closed_at IS NULL RETURNING true",
                board.id,
                row["period"],
            )
            if closed:
                await self._expire(board, row["period"])

    async def _expire(self, board: Board, period: str) -> None:
        keys = self._store.keys(board.id, period)
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in (keys.ranked, keys.index, keys.values, keys.counts, keys.ready):
                pipe.expire(key, self._retention)
            await pipe.execute()
        log.info("board_period_closed", board=board.id, period=period)
