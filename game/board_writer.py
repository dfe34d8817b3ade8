"""Show committed standings in Redis and announce each change to ranking.

Redis gets absolute standings tagged with the version of the player's state that wrote them,
and a standing lands only over an older one, so writing the same standings again (after a
redelivery) or late (from a worker that lost its lease) never undoes a newer one. A whole batch
goes in one round trip: one script call per board period, each stepping its board's seq once
if anything landed.
"""

import time

import nats.aio.client
import redis.asyncio as aioredis
from podium.game.v1 import game_pb2

from game.store import BoardKey
from infra.boards import boards
from infra.leaderboard import PeriodKeys, Standing, register_write, write_args
from infra.names import Names


class BoardWriter:
    """Writes players' standings and publishes a BoardChange per board period that moved."""

    def __init__(self, redis: aioredis.Redis, nc: nats.aio.client.Client, names: Names) -> None:
        self._redis = redis
        self._nc = nc
        self._names = names
        self._write = register_write(redis)

    async def write(self, scores: dict[BoardKey, Standing]) -> None:
        if not scores:
            return

        by_period: dict[tuple[str, str], list[Standing]] = {}
        for key, standing in scores.items():
            by_period.setdefault((key.board, key.period), []).append(standing)

        # A seq lost with Redis starts again above any a client saw: at the clock, in µs.
        floor = time.time_ns() // 1000
        async with self._redis.pipeline(transaction=False) as pipe:
            for (board, period), standings in by_period.items():
                keys = PeriodKeys.of(
                    self._names.board_key(board, period), self._names.board_seq_key(board)
                )
                args = write_args(boards()[board], standings, floor)
                await self._write(keys=keys.write_keys, args=args, client=pipe)
            replies = await pipe.execute()

        for (board, period), (landed, seq) in zip(by_period, replies, strict=True):
            if landed:
                change = game_pb2.BoardChange(board=board, period=period, seq=seq)
                subject = self._names.board_changes_subject
                await self._nc.publish(subject, change.SerializeToString())
