"""Actions per second through game workers alone and end to end, beside the raw limits.

Everything runs on this machine in one go, so that each Podium figure can be read as a ratio of
a raw figure measured minutes apart under the same noise:

- raw Postgres: transactions doing the single-row work of one action (lock the player, write
  state, ledger, two board totals and two history rows) on 8 connections, and the same work
  batched 256 actions to a transaction on 4 connections;
- raw JetStream: nats-py publishing, and pulling with fetch(256) plus an ack per message;
- game workers alone: actions prefilled in the stream (chains whose hashes all apply), then
  workers started, timed from their first result to their last;
- end to end: the whole stack (`python -m devstack up`), players on WebSockets sending chains
  with a window of actions in flight, timed from the first send to the last result.

It uses a namespace and databases of its own and removes them afterwards.

    .venv/bin/python bench/game_throughput.py [--quick] [--workers 2] [--shards 1]
"""

import argparse
import asyncio
import os
import platform
import signal
import statistics
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import asyncpg
import nats
import orjson
import redis.asyncio as aioredis
import uvloop
from harness import database_dsn, free_port, progress, save
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from podium.game.v1 import game_pb2

from game.rules import load_ruleset
from game.state import state_hash
from infra.config import CommonSettings
from infra.migrate import migrate
from infra.names import Names
from infra.streams import ensure_actions_stream

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-123"


def _chain_params(length: int) -> list[dict]:
    return [{"points": 1 + n % 100} for n in range(length)]


def _chain_hashes(length: int) -> list[str]:
    """The hash each link quotes: the state the links before it leave, by the ruleset."""
    ruleset = load_ruleset("default")
    state, hashes = ruleset.initial_state(), []
    for params in _chain_params(length):
        hashes.append(state_hash(state))
        state = ruleset.apply(state, "score", params).state
    return hashes


def _percentiles(samples: list[float]) -> dict:
    if len(samples) < 2:
        return {"p50_ms": None, "p99_ms": None}
    cuts = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2)}


# Raw Postgres -----------------------------------------------------------------------------

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


async def _seed_players(pool: asyncpg.Pool, count: int) -> list[str]:
    players = [str(uuid.uuid4()) for _ in range(count)]
    await pool.execute(
        "INSERT INTO player_state (player_id, state, state_hash)"
        " SELECT id, '{}', '' FROM unnest($1::uuid[]) AS id",
        players,
    )
    return players


async def raw_postgres_single(dsn: str, seconds: float, connections: int = 8) -> dict:
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    players = await _seed_players(pool, connections)
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(player: str) -> None:
        nonlocal done
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                async with conn.transaction():
                    for sql in _SINGLE:
                        await conn.execute(sql, player)
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(p) for p in players))
    elapsed = time.perf_counter() - started
    await pool.close()
    return {"transactions_per_s": round(done / elapsed), "connections": connections}


async def raw_postgres_batched(
    dsn: str, seconds: float, batch: int = 256, connections: int = 4
) -> dict:
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    groups = [await _seed_players(pool, batch) for _ in range(connections)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(players: list[str]) -> None:
        nonlocal done
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                async with conn.transaction():
                    await conn.execute(_BATCH_LOCK, players)
                    await conn.execute(_BATCH_STATE, players)
                    await conn.execute(_BATCH_LEDGER, players)
                    await conn.execute(_BATCH_TOTALS, players)
                    await conn.execute(_BATCH_EVENTS, players)
                done += len(players)

    started = time.perf_counter()
    await asyncio.gather(*(loop(g) for g in groups))
    elapsed = time.perf_counter() - started
    await pool.close()
    return {"actions_per_s": round(done / elapsed), "batch": batch, "connections": connections}


_BATCH_LOCK = (
    "SELECT state_hash FROM player_state WHERE player_id = ANY($1::uuid[])"
    " ORDER BY player_id FOR UPDATE"
)
_BATCH_STATE = (
    "UPDATE player_state SET state = (version + 1)::text,"
    " state_hash = md5(version::text), version = version + 1 WHERE player_id = ANY($1::uuid[])"
)
_BATCH_LEDGER = (
    "INSERT INTO applied_actions (player_id, action_id, status, result)"
    " SELECT id, gen_random_uuid(), 'applied', '\\x00' FROM unnest($1::uuid[]) AS id"
)
_BATCH_TOTALS = (
    "INSERT INTO board_scores (player_id, board, period, score, reached_ms, version)"
    " SELECT id, b, 'all', 1, 1, 1 FROM unnest($1::uuid[]) AS id,"
    " unnest(ARRAY['global', 'daily']) AS b"
    " ON CONFLICT (player_id, board, period) DO UPDATE SET score = board_scores.score + 1"
)
_BATCH_EVENTS = (
    "INSERT INTO score_events (player_id, board, period, delta, score, action_id)"
    " SELECT id, b, 'all', 1, 1, gen_random_uuid() FROM unnest($1::uuid[]) AS id,"
    " unnest(ARRAY['global', 'daily']) AS b"
)


# Raw JetStream ----------------------------------------------------------------------------


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
        "publish_per_s": round(messages / published),
        "pull_ack_per_s": round(messages / pulled),
    }


# Game workers alone -----------------------------------------------------------------------


async def _start(command: list[str], env: dict, log_path: Path, ready: bytes = b""):
    """Start `python -m <command>` and return it once its log shows the `ready` marker."""
    log = log_path.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *command, env=env, cwd=ROOT, stdout=log, stderr=log
    )
    log.close()
    deadline = time.monotonic() + 60
    while ready not in log_path.read_bytes():
        if process.returncode is not None or time.monotonic() > deadline:
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise RuntimeError(f"{command[0]} did not start; see {log_path}")
        await asyncio.sleep(0.05)
    return process


async def _stop(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        await process.wait()


async def workers_alone(
    env: dict, names: Names, players: int, length: int, workers: int, logs: Path
) -> dict:
    nc = await nats.connect(env["PODIUM_NATS_URL"])
    js = nc.jetstream()
    await ensure_actions_stream(js, names)
    hashes, params = _chain_hashes(length), _chain_params(length)
    total = players * length
    answered: set[str] = set()
    times: list[float] = []
    finished = asyncio.Event()

    async def on_result(msg) -> None:
        result = game_pb2.ActionResult.FromString(msg.data)
        if result.status != game_pb2.ACTION_STATUS_APPLIED:
            raise RuntimeError(f"an action was not applied: {result}")
        answered.add(result.action_id)
        times.append(time.perf_counter())
        if len(answered) == total:
            finished.set()

    await nc.subscribe(f"{names.namespace}.results.>", cb=on_result)
    session = uuid.uuid4().hex
    ids = [str(uuid.uuid4()) for _ in range(players)]
    publishes = []
    for n in range(length):
        for player in ids:
            action = game_pb2.Action(
                action_id=str(uuid.uuid4()),
                player_id=player,
                session_key=session,
                name="score",
                params_json=orjson.dumps(params[n]).decode(),
                state_hash=hashes[n],
                client_ts_ms=int(time.time() * 1000),
                received_ts_ms=int(time.time() * 1000),
            )
            publishes.append(js.publish(names.action_subject(player), action.SerializeToString()))
            if len(publishes) == 1000:
                await asyncio.gather(*publishes)
                publishes = []
    await asyncio.gather(*publishes)

    processes = []
    try:
        for i in range(workers):
            processes.append(await _start(["game"], env, logs / f"worker-{i}.log"))
        await asyncio.wait_for(finished.wait(), 600)
    finally:
        await _stop(processes)
        await nc.close()
    elapsed = times[-1] - times[0]
    return {"actions": total, "actions_per_s": round(total / elapsed), "workers": workers}


# End to end -------------------------------------------------------------------------------


async def _player(http: aiohttp.ClientSession, url: str, n: int) -> str:
    name = f"b{uuid.uuid4().hex[:12]}{n}"
    body = {"username": name, "password": PASSWORD}
    async with http.post(url + "/v1/auth/register", json=body) as reply:
        reply.raise_for_status()
    async with http.post(url + "/v1/auth/login", json=body) as reply:
        reply.raise_for_status()
        return (await reply.json())["access_token"]


async def _play(http, url: str, token: str, length: int, window: int, latencies: list) -> None:
    """Send a chain of actions, at most `window` in flight, and time each to its result."""
    hashes, params = _chain_hashes(length), _chain_params(length)
    headers = {"Authorization": f"Bearer {token}"}
    async with http.ws_connect(url + "/v1/ws", headers=headers) as ws:
        welcome = orjson.loads((await ws.receive()).data)
        assert welcome["type"] == "welcome", welcome
        sent_at: dict[str, float] = {}
        slots = asyncio.Semaphore(window)

        async def send() -> None:
            for n in range(length):
                await slots.acquire()
                action_id = str(uuid.uuid4())
                sent_at[action_id] = time.perf_counter()
                frame = {
                    "type": "action",
                    "action_id": action_id,
                    "action": "score",
                    "params": params[n],
                    "state_hash": hashes[n],
                }
                await ws.send_str(orjson.dumps(frame).decode())

        sender = asyncio.create_task(send())
        received = 0
        while received < length:
            frame = orjson.loads((await ws.receive()).data)
            if frame.get("type") != "result":
                continue
            if frame["status"] != "applied":
                raise RuntimeError(f"an action was not applied: {frame}")
            latencies.append((time.perf_counter() - sent_at.pop(frame["action_id"])) * 1000)
            received += 1
            slots.release()
        await sender


async def end_to_end(env: dict, players: int, length: int, window: int, logs: Path) -> dict:
    url = f"http://127.0.0.1:{env['PODIUM_HTTP_PORT']}"
    stack = await _start(
        ["devstack", "up"],
        {**env, "PODIUM_LOG_LEVEL": "WARNING"},
        logs / "stack.log",
        b"Podium is up",
    )
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            tokens = []
            for start in range(0, players, 20):
                group = range(start, min(players, start + 20))
                tokens += await asyncio.gather(*(_player(http, url, n) for n in group))
            started = time.perf_counter()
            await asyncio.gather(*(_play(http, url, t, length, window, latencies) for t in tokens))
            elapsed = time.perf_counter() - started
    finally:
        stack.send_signal(signal.SIGINT)
        await stack.wait()
    total = players * length
    return {
        "actions": total,
        "actions_per_s": round(total / elapsed),
        "players": players,
        "window": window,
        **_percentiles(latencies),
    }


# The run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict:
    base = CommonSettings()
    namespace = "bench" + uuid.uuid4().hex[:8]
    databases = [f"podium_{namespace}_{i}" for i in range(args.shards)]
    dsns = [database_dsn(base.postgres_dsn, name) for name in databases]
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / namespace
    logs.mkdir(parents=True)
    env = {
        **os.environ,
        "PODIUM_NAMESPACE": namespace,
        "PODIUM_POSTGRES_DSN": dsns[0],
        "PODIUM_POSTGRES_SHARDS": ",".join(dsns),
        "PODIUM_REDIS_URL": base.redis_url,
        "PODIUM_NATS_URL": base.nats_url,
        "PODIUM_GAME_LISTEN": "127.0.0.1:0",
        "PODIUM_LOG_LEVEL": "WARNING",
    }
    seconds = 3.0 if args.quick else 10.0
    figures: dict = {}

    async with AsyncExitStack() as cleanup:
        for dsn in dsns:
            await migrate(dsn)
        cleanup.push_async_callback(_drop, base, databases, namespace)

        progress("raw Postgres, one action per transaction")
        figures["raw_postgres_single"] = await raw_postgres_single(dsns[0], seconds)
        progress("raw Postgres, 256 actions per transaction")
        figures["raw_postgres_batched"] = await raw_postgres_batched(dsns[0], seconds)
        progress("raw JetStream publish and pull+ack")
        messages = 5_000 if args.quick else 50_000
        figures["raw_jetstream"] = await raw_jetstream(base.nats_url, messages)
        progress("game workers alone")
        players, length = (200, 25) if args.quick else (1000, 40)
        figures["workers_alone"] = await workers_alone(
            env, Names(namespace), players, length, args.workers, logs
        )
        progress("end to end over WebSockets")
        stack_env = {
            **env,
            "PODIUM_NAMESPACE": namespace + "e",
            "PODIUM_HTTP_PORT": str(free_port()),
            "PODIUM_AUTH_PORT": str(free_port()),
            "PODIUM_RANKING_PORT": str(free_port()),
            "PODIUM_GAME_PORT": str(free_port()),
            "PODIUM_GAME_WORKERS": str(args.workers),
            "PODIUM_JWT_PRIVATE_KEY_FILE": str(ROOT / ".podium" / "jwt-ed25519.pem"),
        }
        players, length = (20, 50) if args.quick else (100, 100)
        figures["end_to_end"] = await end_to_end(stack_env, players, length, args.window, logs)

    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "settings": {"workers": args.workers, "shards": args.shards, "quick": args.quick},
        "figures": figures,
        "logs": str(logs),
    }


async def _drop(base: CommonSettings, databases: list[str], namespace: str) -> None:
    """Remove the run's databases, streams and Redis keys (both namespaces)."""
    admin = await asyncpg.connect(database_dsn(base.postgres_dsn, "postgres"))
    try:
        for name in databases:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()

    nc = await nats.connect(base.nats_url)
    js = nc.jetstream()
    for info in await js.streams_info():
        if info.config.name.startswith(namespace.upper()):
            await js.delete_stream(info.config.name)
    await nc.close()

    redis = aioredis.from_url(base.redis_url)
    keys = [key async for key in redis.scan_iter(match=f"{namespace}*:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def _report(run: dict) -> str:
    f = run["figures"]
    single = f["raw_postgres_single"]["transactions_per_s"]
    batched = f["raw_postgres_batched"]["actions_per_s"]
    pull = f["raw_jetstream"]["pull_ack_per_s"]
    alone = f["workers_alone"]["actions_per_s"]
    e2e = f["end_to_end"]
    rows = [
        ("raw Postgres, 1 action/transaction (8 conns)", f"{single:,} tx/s", ""),
        ("raw Postgres, 256 actions/transaction (4 conns)", f"{batched:,} actions/s", ""),
        ("raw JetStream publish", f"{f['raw_jetstream']['publish_per_s']:,} msg/s", ""),
        ("raw JetStream fetch(256) + ack each", f"{pull:,} msg/s", ""),
        (
            f"game workers alone ({run['settings']['workers']} worker processes)",
            f"{alone:,} actions/s",
            f"{alone / single:.2f}x raw 1-action tx, {alone / pull:.2f}x raw pull+ack",
        ),
        (
            f"end to end, WebSocket in to result out ({e2e['players']} players)",
            f"{e2e['actions_per_s']:,} actions/s",
            f"{e2e['actions_per_s'] / single:.2f}x raw 1-action tx,"
            f" p50 {e2e['p50_ms']} ms, p99 {e2e['p99_ms']} ms",
        ),
    ]
    lines = ["| figure | value | ratio / latency |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, about a minute")
    parser.add_argument("--workers", type=int, default=1, help="game worker processes")
    parser.add_argument("--shards", type=int, default=1, help="shard databases")
    parser.add_argument("--window", type=int, default=16, help="actions in flight per player")
    args = parser.parse_args()

    result = uvloop.run(run(args))
    save("game_throughput", result, _report(result))


if __name__ == "__main__":
    main()
