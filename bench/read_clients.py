"""The load-client process of bench/reads.py: board reads timed over its own connections.

Each read is made three ways against the same board: the gateway's REST, ranking's gRPC (as
the gateway calls it) and redis-py on the key ranking reads, so that the Podium figures can be
read as ratios of the raw ones. Every reply is checked against what the board holds (outside
the timed span), so a figure never comes from error replies.

The process runs commands sent over its pipe until it gets None:
("target", Target): read this board from now on (the board grows between sizes).
("sequential", ops, requests): each op `requests` times, one at a time, in blocks of the ops
interleaved in a new order each round; replies {op: [ms, ...]}.
("load", op, in_flight, start_at, seconds): `in_flight` loops of one op from the monotonic
`start_at` for `seconds`; replies (reads completed, [ms, ...]).
Each reply is ("ok", value), or ("error", text) when the command failed.
"""

import asyncio
import itertools
import random
import time
from dataclasses import dataclass

import aiohttp
import grpc
import orjson
import redis.asyncio as aioredis
import uvloop
from podium.ranking.v1 import ranking_service_pb2 as pb
from podium.ranking.v1 import ranking_service_pb2_grpc as pb_grpc

BOARD = "global"
TOP = 100
RADIUS = 5
WARMUP_READS = 20
SHUFFLE_SEED = 11
# Consecutive reads of one op in the sequential run; the first of them is not timed.
BLOCK_READS = 11


@dataclass(frozen=True)
class Target:
    """Where to read and what the board holds: the sampled players (id, member, rank)."""

    url: str
    ranking: str
    redis_url: str
    key: str
    total: int
    top_player: str
    players: list[tuple[str, str, int]]


class Reads:
    """Connections of its own to gateway, ranking and Redis, and a read of each kind."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._http = aiohttp.ClientSession(target.url)
        self._channel = grpc.aio.insecure_channel(target.ranking)
        self._ranking = pb_grpc.RankingServiceStub(self._channel)
        self._redis = aioredis.from_url(target.redis_url, decode_responses=True)

    async def close(self) -> None:
        await self._http.close()
        await self._channel.close()
        await self._redis.aclose()

    async def gateway_top(self, n: int):
        body = await self._get(f"/v1/boards/{BOARD}/top?limit={TOP}")
        return lambda: self._check_top(orjson.loads(body)["entries"])

    async def gateway_around(self, n: int):
        player, _, rank = self._player(n)
        body = await self._get(f"/v1/boards/{BOARD}/around/{player}?radius={RADIUS}")
        return lambda: self._check_around(orjson.loads(body)["entries"], player, rank)

    async def gateway_player(self, n: int):
        player, _, rank = self._player(n)
        body = await self._get(f"/v1/boards/{BOARD}/players/{player}")
        return lambda: self._check_rank(orjson.loads(body)["entry"], player, rank)

    async def grpc_top(self, n: int):
        reply = await self._ranking.GetTop(pb.GetTopRequest(board=BOARD, limit=TOP))
        return lambda: self._check_top(_dicts(reply.entries))

    async def grpc_around(self, n: int):
        player, _, rank = self._player(n)
        request = pb.GetAroundRequest(board=BOARD, player_id=player, radius=RADIUS)
        reply = await self._ranking.GetAround(request)
        return lambda: self._check_around(_dicts(reply.entries), player, rank)

    async def grpc_player(self, n: int):
        player, _, rank = self._player(n)
        request = pb.GetPlayerRankRequest(board=BOARD, player_id=player)
        reply = await self._ranking.GetPlayerRank(request)
        return lambda: self._check_rank(_dicts([reply.entry])[0], player, rank)

    async def raw_zrevrange(self, n: int):
        rows = await self._redis.zrevrange(self.target.key, 0, TOP - 1, withscores=True)
        return lambda: _expect(len(rows) == TOP, f"ZREVRANGE gave {len(rows)} rows")

    async def raw_zrange(self, n: int):
        """The board's own top: boards where higher wins keep their scores negated."""
        rows = await self._redis.zrange(self.target.key, 0, TOP - 1, withscores=True)
        return lambda: _expect(
            rows[0][0].endswith(self.target.top_player), "ZRANGE's first is not the top"
        )

    async def raw_rank(self, n: int):
        """ZREVRANK and ZSCORE of one member, in one round trip."""
        _, member, rank = self._player(n)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrevrank(self.target.key, member)
            pipe.zscore(self.target.key, member)
            back, score = await pipe.execute()
        return lambda: _expect(
            back == self.target.total - rank and score is not None, "ZREVRANK disagrees"
        )

    def _player(self, n: int) -> tuple[str, str, int]:
        return self.target.players[n % len(self.target.players)]

    async def _get(self, path: str) -> bytes:
        async with self._http.get(path) as response:
            body = await response.read()
        _expect(response.status == 200, f"GET {path}: {response.status} {body[:200]!r}")
        return body

    def _check_top(self, entries: list[dict]) -> None:
        _expect(len(entries) == TOP, f"top gave {len(entries)} entries")
        _expect(entries[0]["player_id"] == self.target.top_player, "top's first is wrong")
        ranks = [entry["rank"] for entry in entries]
        _expect(ranks == list(range(1, TOP + 1)), "top's ranks are not 1-100")
        _expect(all(entry["username"] for entry in entries), "top has entries without names")

    def _check_around(self, entries: list[dict], player: str, rank: int) -> None:
        first = max(1, rank - RADIUS)
        last = min(self.target.total, rank + RADIUS)
        _expect([e["rank"] for e in entries] == list(range(first, last + 1)), "around's ranks")
        _expect(any(e["player_id"] == player for e in entries), "around misses its player")

    def _check_rank(self, entry: dict, player: str, rank: int) -> None:
        _expect(entry["player_id"] == player and entry["rank"] == rank, "the player's rank")
        _expect(bool(entry["username"]), "the player has no name")


def _dicts(entries) -> list[dict]:
    return [{"player_id": e.player_id, "rank": e.rank, "username": e.username} for e in entries]


def _expect(condition: bool, failure: str) -> None:
    if not condition:
        raise RuntimeError(f"a read was wrong: {failure}")


async def _timed(read, n: int) -> float:
    """Milliseconds for one read; its reply is checked after the clock stops."""
    began = time.perf_counter_ns()
    check = await read(n)
    elapsed = (time.perf_counter_ns() - began) / 1e6
    check()
    return elapsed


async def _sequential(reads: Reads, ops: list[str], requests: int) -> dict[str, list[float]]:
    """`requests` timed reads of each op, in blocks of BLOCK_READS, the blocks of all ops
    shuffled anew each round so that they share the machine's state evenly. The first read
    of a block is not kept: it pays for leftover work of the op before it (gRPC's poller
    thread finishing a call), which would land on whichever op came next."""
    for op in ops:
        for n in range(WARMUP_READS):
            await _timed(getattr(reads, op), n)
    times: dict[str, list[float]] = {op: [] for op in ops}
    order, shuffle = list(ops), random.Random(SHUFFLE_SEED).shuffle
    players = itertools.count()
    while len(times[ops[0]]) < requests:
        shuffle(order)
        for op in order:
            read = getattr(reads, op)
            await _timed(read, next(players))
            for _ in range(BLOCK_READS - 1):
                times[op].append(await _timed(read, next(players)))
    return {op: samples[:requests] for op, samples in times.items()}


async def _load(reads: Reads, op: str, in_flight: int, start_at: float, seconds: float):
    read = getattr(reads, op)
    for n in range(WARMUP_READS):
        await _timed(read, n)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    deadline = start_at + seconds
    times: list[float] = []

    async def loop(offset: int) -> None:
        n = offset
        while time.monotonic() < deadline:
            times.append(await _timed(read, n))
            n += in_flight

    await asyncio.gather(*(loop(k) for k in range(in_flight)))
    return len(times), times


async def _serve(conn) -> None:
    loop = asyncio.get_running_loop()
    reads = None
    try:
        while (command := await loop.run_in_executor(None, conn.recv)) is not None:
            kind, *args = command
            try:
                if kind == "target":
                    if reads is not None:
                        await reads.close()
                    reads = Reads(*args)
                    conn.send(("ok", None))
                elif kind == "sequential":
                    conn.send(("ok", await _sequential(reads, *args)))
                else:
                    conn.send(("ok", await _load(reads, *args)))
            except Exception as error:
                # The run cannot go on without this client; the parent raises what it sends.
                conn.send(("error", repr(error)))
    finally:
        if reads is not None:
            await reads.close()


def client(conn) -> None:
    """A process's entry point: serve the pipe's commands until None."""
    uvloop.run(_serve(conn))
