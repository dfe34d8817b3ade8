"""Ranking test fixtures: an in-process server on a settable clock, a stub, and board data.

Each test gets a daily period of its own (far in the future, so that no other test in the
session touches it) and a server whose clock stands at noon of that day, so "the current
period" of the daily board belongs to the test alone.
"""

import asyncio
import contextlib
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import grpc
import pytest
from podium.ranking.v1 import ranking_service_pb2 as pb
from podium.ranking.v1 import ranking_service_pb2_grpc

from infra.boards import boards as definitions
from infra.errors import from_rpc_error
from infra.leaderboard import PeriodKeys, Standing, player_of, register_write, write_args
from ranking.config import RankingSettings
from ranking.feed import BoardFeed
from ranking.server import running

_DAYS = itertools.count()
FIRST_DAY = date(2201, 1, 1)
# A bound on waiting for a stream message, so that a missing one fails the test quickly.
READ_GUARD_SECONDS = 10


class SettableClock:
    """Unix milliseconds that a test sets, to own a period and to roll it."""

    def __init__(self, day: str) -> None:
        self.ms = 0
        self.set_day(day)

    def set_day(self, day: str) -> None:
        noon = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
        self.ms = int(noon.timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms


@dataclass
class Harness:
    """A running ranking server and what a test needs to drive it."""

    stub: ranking_service_pb2_grpc.RankingServiceStub
    channel: grpc.aio.Channel
    feed: BoardFeed
    clock: SettableClock
    day: str


class BoardData:
    """Writes board state the way the contract says other services do.

    put() is what a game worker does: the standing into Postgres, the source of truth, then into
    Redis with the shared write script (stepping the board's seq). score_rows() writes Postgres
    alone (Redis has not caught up); show() writes Redis alone, on a period marked built (Redis
    has drifted from Postgres). Postgres rows go to the player's shard database, where ranking
    looks for them.
    """

    # Standings of one put() share a reached time, so equal scores order by player id.
    REACHED_MS = 1_800_000_000_000

    def __init__(self, redis_client, shards, names) -> None:
        self.redis = redis_client
        self.shards = shards
        self.names = names
        self._write = register_write(redis_client)
        self._versions = itertools.count(1)

    def keys(self, board: str, period: str) -> PeriodKeys:
        return PeriodKeys.of(self.names.board_key(board, period), self.names.board_seq_key(board))

    def standings(
        self,
        scores: dict[str, int],
        subscores: dict[str, int] | None = None,
        reached: dict[str, int] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> list[Standing]:
        return [
            Standing(
                pid,
                score,
                (subscores or {}).get(pid, 0),
                (reached or {}).get(pid, self.REACHED_MS),
                next(self._versions),
                (metadata or {}).get(pid),
            )
            for pid, score in scores.items()
        ]

    async def put(self, board: str, period: str, scores: dict[str, int], **more) -> None:
        """Write as a worker does, on a period taken as built (rows written only to Postgres
        before are not in Redis then: rebuild first to bring them in)."""
        standings = self.standings(scores, **more)
        await self._rows(board, period, standings)
        await self._show(board, period, standings, seq_floor=1)
        await self.redis.set(self.keys(board, period).ready, 1)

    async def score_rows(self, board: str, period: str, scores: dict[str, int], **more) -> None:
        await self._rows(board, period, self.standings(scores, **more))

    async def show(self, board: str, period: str, scores: dict[str, int], **more) -> None:
        await self._show(board, period, self.standings(scores, **more), seq_floor=1)
        await self.redis.set(self.keys(board, period).ready, 1)

    async def members(self, board: str, period: str) -> list[str]:
        """The players in the period's ranked set, best first."""
        ranked = await self.redis.zrange(self.keys(board, period).ranked, 0, -1)
        return [player_of(member.decode()) for member in ranked]

    async def clear(self, board: str, period: str) -> None:
        """Empty a period everywhere: for the boards whose period every test shares ("all")."""
        for pool in self.shards:
            await pool.execute(
                "DELETE FROM board_scores WHERE board = $1 AND period = $2", board, period
            )
        await self.wipe(board, period)

    async def wipe(self, board: str, period: str) -> None:
        keys = self.keys(board, period)
        await self.redis.delete(keys.ranked, keys.index, keys.values, keys.counts, keys.ready)

    async def bump(self, board: str) -> int:
        return await self.redis.incr(self.names.board_seq_key(board))

    async def seq(self, board: str) -> int:
        return int(await self.redis.get(self.names.board_seq_key(board)) or 0)

    async def username(self, player_id: str) -> str | None:
        value = await self.redis.hget(self.names.usernames_key, player_id)
        return value.decode() if value is not None else None

    async def account(self, player_id: str, username: str) -> None:
        await self.shards.for_player(player_id).execute(
            "INSERT INTO accounts (player_id, username, username_key, password_hash)"
            " VALUES ($1, $2, $3, 'x')",
            uuid.UUID(player_id),
            username,
            f"{username.lower()}-{player_id}",
        )

    async def _rows(self, board: str, period: str, standings: list[Standing]) -> None:
        by_pool: dict[asyncpg.Pool, list[tuple]] = {}
        for s in standings:
            row = (s.player_id, board, period, s.score, s.subscore, s.reached_ms, s.version)
            by_pool.setdefault(self.shards.for_player(s.player_id), []).append((*row, s.metadata))

        for pool, rows in by_pool.items():
            await pool.executemany(
                "INSERT INTO board_scores"
                " (player_id, board, period, score, subscore, reached_ms, version, metadata)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (player_id, board, period) DO UPDATE SET score = $4, subscore = $5,"
                " reached_ms = $6, version = $7, metadata = $8",
                rows,
            )

    async def _show(self, board: str, period: str, standings: list[Standing], seq_floor) -> None:
        args = write_args(definitions()[board], standings, seq_floor)
        await self._write(keys=self.keys(board, period).write_keys, args=args)

    @staticmethod
    def players(count: int) -> list[str]:
        """Fresh player ids in ascending order, the order the board breaks ties in."""
        return sorted(str(uuid.uuid4()) for _ in range(count))

    @staticmethod
    def ranked(scores: dict[str, int]) -> list[tuple[int, str, int]]:
        """(rank, player_id, score) in the contract's order: score down, then player_id up."""
        order = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [(rank, pid, score) for rank, (pid, score) in enumerate(order, start=1)]

    @staticmethod
    def rows(entries) -> list[tuple[int, str, int]]:
        """Entries as (rank, player_id, score), comparable with ranked()."""
        return [(entry.rank, entry.player_id, entry.score) for entry in entries]


async def _read_view(call) -> pb.WatchBoardResponse:
    """The next message of a WatchBoard stream, failing fast if none comes."""
    view = await asyncio.wait_for(call.read(), READ_GUARD_SECONDS)
    assert view is not grpc.aio.EOF, "the watch stream ended"
    return view


async def _read_at(call, seq: int) -> pb.WatchBoardResponse:
    """The first view of a stream at `seq` or later. Views before it are complete views of an
    earlier moment (a tick that saw another change of the board), so skipping them loses
    nothing."""
    while True:
        view = await _read_view(call)
        if view.seq >= seq:
            return view


async def _rpc_error(awaitable) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and the Podium error code a call failed with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    return caught.value.code(), from_rpc_error(caught.value).code


@pytest.fixture
def day() -> str:
    return (FIRST_DAY + timedelta(days=next(_DAYS))).isoformat()


@pytest.fixture
def boards(redis_client, shards, names) -> BoardData:
    return BoardData(redis_client, shards, names)


@pytest.fixture
def serve_ranking(settings_env, day):
    """Start a server in-process on 127.0.0.1:0 with the given settings overrides."""

    @contextlib.asynccontextmanager
    async def serve(**overrides):
        settings = RankingSettings(**{"ranking_listen": "127.0.0.1:0", **overrides})
        clock = SettableClock(day)
        async with running(settings, clock) as served:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
                stub = ranking_service_pb2_grpc.RankingServiceStub(channel)
                yield Harness(stub, channel, served.feed, clock, day)

    return serve


@pytest.fixture
async def ranking(serve_ranking):
    async with serve_ranking(coalesce_ms=50) as harness:
        yield harness


@pytest.fixture
def read_view():
    return _read_view


@pytest.fixture
def read_at():
    return _read_at


@pytest.fixture
def rpc_error():
    return _rpc_error
