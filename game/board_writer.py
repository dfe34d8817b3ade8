"""Show committed board scores in Redis and announce each change to ranking.

Redis gets absolute scores, never increments, so writing the same totals twice (after a
redelivery) changes nothing; only the board's seq moves, which readers treat as a new version.
"""

import nats.aio.client
import redis.asyncio as aioredis
from podium.game.v1 import game_pb2

from game.store import BoardScore
from infra.names import Names


class BoardWriter:
    """Writes one player's board totals and publishes a BoardChange per board."""

    def __init__(self, redis: aioredis.Redis, nc: nats.aio.client.Client, names: Names) -> None:
        self._redis = redis
        self._nc = nc
        self._names = names

    async def write(self, player_id: str, scores: list[BoardScore]) -> None:
        """ZADD the negated totals and bump each board's seq in one MULTI, then announce."""
        if not scores:
            return

        async with self._redis.pipeline(transaction=True) as pipe:
            for s in scores:
                pipe.zadd(self._names.board_key(s.board, s.period), {player_id: -s.score})
            for s in scores:
                pipe.incr(self._names.board_seq_key(s.board))
            replies = await pipe.execute()

        seqs = replies[len(scores) :]
        for s, seq in zip(scores, seqs, strict=True):
            change = game_pb2.BoardChange(board=s.board, period=s.period, seq=seq)
            await self._nc.publish(self._names.board_changes_subject, change.SerializeToString())
