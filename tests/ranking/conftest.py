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

from infra.errors import from_rpc_error
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

    Postgres rows go to the player's shard database, where ranking looks for them.
    """

    def __init__(self, redis_client, shards, names) -> None:
        self.redis = redis_client
        self.shards = shards
        self.names = names

    async def put(self, board: str, period: str, scores: dict[str, int]) -> None:
        await self.redis.zadd(
            self.names.board_key(board, period), {pid: -score for pid, score in scores.items()}
        )

    async def wipe(self, board: str, period: str) -> None:
        await self.redis.delete(self.names.board_key(board, period))

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

    async def score_rows(self, board: str, period: str, scores: dict[str, int]) -> None:
        by_pool: dict[asyncpg.Pool, list[tuple]] = {}
        for pid, score in scores.items():
            row = (uuid.UUID(pid), board, period, score)
            by_pool.setdefault(self.shards.for_player(pid), []).append(row)

        for pool, rows in by_pool.items():
            await pool.executemany(
                "INSERT INTO board_scores (player_id, board, period, score, reached_at)"
                " VALUES ($1, $2, $3, $4, now())",
                rows,
            )

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
def rpc_error():
    return _rpc_error
