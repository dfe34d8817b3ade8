"""Show committed board scores in Redis and announce each change to ranking.

Redis gets absolute scores, never increments, so writing the same totals twice (after a
redelivery) changes nothing; only the board's seq moves, which readers treat as a new version.
A whole batch goes in one MULTI: one ZADD per board period, one seq step per board period.
"""

import nats.aio.client
import redis.asyncio as aioredis
from podium.game.v1 import game_pb2

from game.store import BoardKey
from infra.names import Names


class BoardWriter:
    """Writes players' board totals and publishes a BoardChange per board period touched."""

    def __init__(self, redis: aioredis.Redis, nc: nats.aio.client.Client, names: Names) -> None:
        self._redis = redis
        self._nc = nc
        self._names = names

    async def write(self, scores: dict[BoardKey, int]) -> None:
        """ZADD the negated totals and bump each board's seq in one MULTI, then announce."""
        if not scores:
            return

        by_period: dict[tuple[str, str], dict[str, int]] = {}
        for key, score in scores.items():
            by_period.setdefault((key.board, key.period), {})[key.player_id] = -score

        async with self._redis.pipeline(transaction=True) as pipe:
            for (board, period), members in by_period.items():
                pipe.zadd(self._names.board_key(board, period), members)
            for board, _ in by_period:
                pipe.incr(self._names.board_seq_key(board))
            replies = await pipe.execute()

        seqs = replies[len(by_period) :]
        for (board, period), seq in zip(by_period, seqs, strict=True):
            change = game_pb2.BoardChange(board=board, period=period, seq=seq)
            await self._nc.publish(self._names.board_changes_subject, change.SerializeToString())
