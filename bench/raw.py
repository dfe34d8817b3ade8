"""The raw limits of this machine: what Postgres, JetStream and Redis do for plain clients.

Podium's figures are read as ratios of these, measured in the same run under the same noise:

- Postgres: transactions doing the single-row work of one action (lock the player, write
  state, ledger, two board totals and two history rows) on 8 connections, and the same work
  batched 256 actions to a transaction on 4 connections;
- JetStream (nats-py): publishing, and pulling with fetch(256) plus an ack per message;
- Redis (redis-py): ZADD of one member per command, pipelined 1,000 commands at a time, and
  ZREVRANGE 0 99 WITHSCORES, one call at a time, on a key of that many members.

It uses a database, a stream and a key of its own and removes them afterwards.

    .venv/bin/python bench/raw.py [--quick]
"""

import argparse
import asyncio
import platform
import random
import statistics
import time
import uuid

import asyncpg
import nats
import redis.asyncio as aioredis
import uvloop
from harness import database_dsn, progress, save, utc_now
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from infra.config import CommonSettings
from infra.migrate import migrate

# Sizes of a full run and of --quick.
SIZES = {
    False: {"seconds": 10.0, "messages": 50_000, "members": 100_000, "reads": 5_000},
    True: {"seconds": 2.0, "messages": 5_000, "members": 20_000, "reads": 1_000},
}
PIPELINE = 1_000


def percentiles(samples: list[float]) -> dict:
    """p50, p95 and p99 of millisecond samples, None when there are too few to cut."""
    if len(samples) < 2:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    cuts = statistics.quantiles(samples, n=100)
    return {
        key: round(cuts[n - 1], 3) for key, n in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99))
    }


# Postgres -----------------------------------------------------------------------------------

_SINGLE = [
    "SELECT state_hash FROM player_state WHERE player_id = $1 FOR UPDATE",
    "UPDATE player_state SET state = (version + 1)::text,"
    " state_hash = md5(version::text), version = version + 1 WHERE player_id = $1",
    "INSERT INTO applied_actions (player_id, action_id, status, result)"
    " VALUES ($1, gen_random_uuid(), 'applied', '\\x00')",
    "INSERT INTO board_scores (player_id, board, period, score, reached_ms, version)"
    " VALUES ($1, 'global', 'all', 1, 1, 1), ($1, 'daily', 'bench', 1, 1, 1)"
    " ON CONFLICT (player_id, board, period) DO UPDATE SET score = board_scores.score + 1",
    "INSERT INTO score_events (player_id, board, period, delta, score, action_id)"
    " VALUES ($1, 'global', 'all', 1, 1, gen_random_uuid()),"
    " ($1, 'daily', 'bench', 1, 1, gen_random_uuid())",
]

_BATCH = [
    "SELECT state_hash FROM player_state WHERE player_id = ANY($1::uuid[])"
    " ORDER BY player_id FOR UPDATE",
    "UPDATE player_state SET state = (version + 1)::text,"
    " state_hash = md5(version::text), version = version + 1 WHERE player_id = ANY($1::uuid[])",
    "INSERT INTO applied_actions (player_id, action_id, status, result)"
    " SELECT id, gen_random_uuid(), 'applied', '\\x00' FROM unnest($1::uuid[]) AS id",
    "INSERT INTO board_scores (player_id, board, period, score, reached_ms, version)"
    " SELECT id, b, 'all', 1, 1, 1 FROM unnest($1::uuid[]) AS id,"
    " unnest(ARRAY['global', 'daily']) AS b"
    " ON CONFLICT (player_id, board, period) DO UPDATE SET score = board_scores.score + 1",
    "INSERT INTO score_events (player_id, board, period, delta, score, action_id)"
    " SELECT id, b, 'all', 1, 1, gen_random_uuid() FROM unnest($1::uuid[]) AS id,"
    " unnest(ARRAY['global', 'daily']) AS b",
]


async def _seed_players(pool: asyncpg.Pool, count: int) -> list[str]:
    players = [str(uuid.uuid4()) for _ in range(count)]
    await pool.execute(
        "INSERT INTO player_state (player_id, state, state_hash)"
        " SELECT id, '{}', '' FROM unnest($1::uuid[]) AS id",
        players,
    )
    return players


async def _transactions(pool: asyncpg.Pool, groups: list, statements: list[str], seconds: float):
    """Run `statements` in a transaction over and over, one connection per group, for
    `seconds`; the transactions done and the time taken."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(argument) -> None:
        nonlocal done
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                async with conn.transaction():
                    for sql in statements:
                        await conn.execute(sql, argument)
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(group) for group in groups))
    return done, time.perf_counter() - started


async def raw_postgres_single(dsn: str, seconds: float, connections: int = 8) -> dict:
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    try:
        players = await _seed_players(pool, connections)
        done, elapsed = await _transactions(pool, players, _SINGLE, seconds)
    finally:
        await pool.close()
    return {"transactions_per_s": round(done / elapsed), "connections": connections}


async def raw_postgres_batched(
    dsn: str, seconds: float, batch: int = 256, connections: int = 4
) -> dict:
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    try:
        groups = [await _seed_players(pool, batch) for _ in range(connections)]
        done, elapsed = await _transactions(pool, groups, _BATCH, seconds)
    finally:
        await pool.close()
    return {
        "actions_per_s": round(done * batch / elapsed),
        "batch": batch,
        "connections": connections,
    }


# JetStream ----------------------------------------------------------------------------------


async def raw_jetstream(nats_url: str, messages: int) -> dict:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = "BENCH_RAW_" + uuid.uuid4().hex[:8].upper()
    subject = stream.lower() + ".x"
    await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
    payload = b"x" * 160
    try:
        started = time.perf_counter()
        for start in range(0, messages, 1000):
            count = min(1000, messages - start)
            await asyncio.gather(*(js.publish(subject, payload) for _ in range(count)))
        published = time.perf_counter() - started

        config = ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT)
        await js.add_consumer(stream, config)
        sub = await js.pull_subscribe_bind(durable="raw", stream=stream)
        got = 0
        started = time.perf_counter()
        while got < messages:
            batch = await sub.fetch(256, timeout=5)
            for msg in batch:
                await msg.ack()
            got += len(batch)
        await nc.flush()
        pulled = time.perf_counter() - started
    finally:
        await js.delete_stream(stream)
        await nc.close()
    return {
        "messages": messages,
        "publish_per_s": round(messages / published),
        "pull_ack_per_s": round(messages / pulled),
    }


# Redis --------------------------------------------------------------------------------------


async def raw_redis(redis_url: str, members: int, reads: int) -> dict:
    """ZADD pipelined into a fresh key, then ZREVRANGE 0 99 WITHSCORES timed call by call.

    Scores are random, as on a board, so the skiplist is not filled in order.
    """
    client = aioredis.from_url(redis_url)
    key = f"bench_raw_{uuid.uuid4().hex[:8]}:zset"
    try:
        started = time.perf_counter()
        for start in range(0, members, PIPELINE):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(members, start + PIPELINE)):
                pipe.zadd(key, {f"player-{n}": random.randrange(1_000_000_000)})
            await pipe.execute()
        added = time.perf_counter() - started

        latencies = []
        for _ in range(reads):
            began = time.perf_counter()
            await client.zrevrange(key, 0, 99, withscores=True)
            latencies.append((time.perf_counter() - began) * 1000)
    finally:
        await client.delete(key)
        await client.aclose()
    return {
        "zadd_members": members,
        "zadd_pipeline": PIPELINE,
        "zadd_members_per_s": round(members / added),
        "zrevrange_top100": {"key_members": members, "calls": reads, **percentiles(latencies)},
    }


# The run ------------------------------------------------------------------------------------


async def measure(options: dict) -> dict:
    """Every raw probe; `options["quick"]` for small sizes."""
    sizes = SIZES[bool(options.get("quick"))]
    base = CommonSettings()
    database = "podium_raw" + uuid.uuid4().hex[:8]
    dsn = database_dsn(base.postgres_dsn, database)
    figures: dict = {}
    await migrate(dsn)
    try:
        progress("raw Postgres, one action per transaction")
        figures["postgres_single"] = await raw_postgres_single(dsn, sizes["seconds"])
        progress("raw Postgres, 256 actions per transaction")
        figures["postgres_batched"] = await raw_postgres_batched(dsn, sizes["seconds"])
    finally:
        admin = await asyncpg.connect(database_dsn(base.postgres_dsn, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()
    progress("raw JetStream publish and pull+ack")
    figures["jetstream"] = await raw_jetstream(base.nats_url, sizes["messages"])
    progress("raw Redis ZADD pipelined and ZREVRANGE 0 99")
    figures["redis"] = await raw_redis(base.redis_url, sizes["members"], sizes["reads"])
    return figures


def rows(raw: dict) -> list[tuple[str, str]]:
    """The raw figures as (name, value) rows of a report."""
    pg1, pgn = raw["postgres_single"], raw["postgres_batched"]
    js, rd = raw["jetstream"], raw["redis"]
    top = rd["zrevrange_top100"]
    return [
        (
            f"raw Postgres, 1 action/transaction ({pg1['connections']} conns)",
            f"{pg1['transactions_per_s']:,} tx/s",
        ),
        (
            f"raw Postgres, {pgn['batch']} actions/transaction ({pgn['connections']} conns)",
            f"{pgn['actions_per_s']:,} actions/s",
        ),
        ("raw JetStream publish", f"{js['publish_per_s']:,} msg/s"),
        ("raw JetStream fetch(256) + ack each", f"{js['pull_ack_per_s']:,} msg/s"),
        (
            f"raw Redis ZADD, pipelines of {rd['zadd_pipeline']:,}",
            f"{rd['zadd_members_per_s']:,} members/s",
        ),
        (
            f"raw Redis ZREVRANGE 0 99 WITHSCORES ({top['key_members']:,} members)",
            f"p50 {top['p50_ms']} ms, p99 {top['p99_ms']} ms",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about 15 seconds")
    args = parser.parse_args()

    figures = uvloop.run(measure({"quick": args.quick}))
    result = {
        "when": utc_now(),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "settings": {"quick": args.quick},
        "figures": figures,
    }
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows(figures)]
    save("raw", result, "\n".join(lines))


if __name__ == "__main__":
    main()
