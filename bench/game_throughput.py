"""Actions per second through game workers alone and end to end, and the end-to-end latency
at a quarter, half and nine tenths of the maximum rate, beside the raw limits (bench/raw.py).

- game workers alone: actions prefilled in the stream (chains whose hashes all apply), then
  workers started, timed from their first result to their last;
- end to end, the maximum: the whole stack (`python -m devstack up`), players on WebSockets in
  separate load-client processes, each player with a window of actions in flight (closed loop),
  timed from the first send to the last result;
- end to end, the latency curve: the same players and processes sending open-loop at 25 %,
  50 % and 90 % of that maximum: each action is due at its moment of a fixed schedule and sent
  then whatever the results do, and its latency counts from that moment, so a system that
  falls behind shows it in the figures instead of slowing the load down.

The bench's own stack lets each player send far more than the gateway's default 20 actions a
second (PODIUM_ACTION_RATE_PER_SECOND), so that the players, not the allowance, carry the load;
there are enough of them that no player's own chain is the limit either.

It uses namespaces and databases of its own and removes them afterwards.

    .venv/bin/python bench/game_throughput.py [--quick] [--workers 1] [--shards 1]
        [--window 8] [--clients 2]
"""

import argparse
import asyncio
import multiprocessing
import os
import platform
import signal
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import nats
import orjson
import uvloop
from action_clients import Chain, action_client
from harness import database_dsn, progress, save, utc_now
from podium.game.v1 import game_pb2
from raw import measure as measure_raw
from raw import percentiles
from raw import rows as raw_rows
from stack import remove, start_stack, stop_stack

from infra.config import CommonSettings
from infra.migrate import migrate
from infra.names import Names
from infra.streams import ensure_actions_stream

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-123"
FRACTIONS = (0.25, 0.5, 0.9)
# What the bench's own gateway lets each player send, so that the allowance is never the limit.
ACTION_RATE = 10_000
# Sizes of a full run and of --quick: workers alone (players x actions each), end to end
# (players, actions each in the closed-loop run), and each open-loop level's seconds, of which
# the first `warmup` are not counted. The gateway publishes one socket's actions one after the
# other, each waiting for JetStream's ack, so fewer players than this would make the sockets,
# not the stack, the limit of the open-loop levels.
SIZES = {
    False: {"alone": (1000, 40), "players": 200, "length": 100, "seconds": 10.0, "warmup": 2.0},
    True: {"alone": (100, 20), "players": 50, "length": 16, "seconds": 2.0, "warmup": 0.5},
}
DEFAULTS = {"quick": False, "workers": 1, "shards": 1, "window": 8, "clients": 2}


# Game workers alone -------------------------------------------------------------------------


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
    chain = Chain()
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
        params, quoted = chain.link(n)
        for player in ids:
            action = game_pb2.Action(
                action_id=str(uuid.uuid4()),
                player_id=player,
                session_key=session,
                name="score",
                params_json=orjson.dumps(params).decode(),
                state_hash=quoted,
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


# End to end ---------------------------------------------------------------------------------


async def _token(http: aiohttp.ClientSession, url: str, n: int) -> str:
    name = f"b{uuid.uuid4().hex[:12]}{n}"
    body = {"username": name, "password": PASSWORD}
    async with http.post(url + "/v1/auth/register", json=body) as reply:
        reply.raise_for_status()
    async with http.post(url + "/v1/auth/login", json=body) as reply:
        reply.raise_for_status()
        return (await reply.json())["access_token"]


def _spawn_clients(url: str, tokens: list[str], count: int) -> list[tuple]:
    """`count` load-client processes sharing the players out; (process, connection) each."""
    context = multiprocessing.get_context("spawn")
    clients = []
    for n in range(count):
        ours, theirs = context.Pipe()
        process = context.Process(
            target=action_client, args=(url, tokens[n::count], theirs), daemon=True
        )
        process.start()
        clients.append((process, ours))
    return clients


async def _ask(clients: list[tuple], orders: list[tuple]) -> list[dict]:
    """Send each client its order and gather their reports."""
    loop = asyncio.get_running_loop()
    for (_, conn), order in zip(clients, orders, strict=True):
        conn.send(order)

    async def report(conn) -> dict:
        kind, body = await loop.run_in_executor(None, conn.recv)
        if kind != "report":
            raise RuntimeError(f"a load client sent {kind!r}, not a report")
        return body

    return await asyncio.gather(*(report(conn) for _, conn in clients))


def _merged(reports: list[dict]) -> dict:
    """The reports of all load clients as one: latencies, outcomes, counts."""
    outcomes: dict[str, int] = {}
    for report in reports:
        for outcome, count in report["outcomes"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    latencies = [ms for report in reports for ms in report["latencies_ms"]]
    lags = [ms for report in reports for ms in report["send_lag_ms"]]
    answered = sum(report["answered"] for report in reports)
    return {
        "answered": answered,
        "unanswered": sum(report["expected"] for report in reports) - answered,
        "outcomes": outcomes,
        **percentiles(latencies),
        "max_ms": round(max(latencies), 3) if latencies else None,
        "counted": len(latencies),
        "send_lag_p99_ms": percentiles(lags)["p99_ms"],
    }


async def _saturated(clients: list[tuple], players: int, length: int, window: int) -> dict:
    """Every player's chain with `window` in flight: the most the stack answers a second."""
    reports = await _ask(clients, [("closed", length, window)] * len(clients))
    first = min(report["first_sent"] for report in reports)
    last = max(report["last_answer"] for report in reports if report["last_answer"])
    merged = _merged(reports)
    merged.pop("send_lag_p99_ms")
    return {
        "actions": players * length,
        "actions_per_s": round(merged["answered"] / (last - first)),
        "players": players,
        "window": window,
        **merged,
    }


async def _level(clients: list[tuple], fraction: float, top: float, sizes: dict) -> dict:
    """Open-loop load at `fraction` of the maximum rate `top`, shared by the clients."""
    rate = fraction * top
    start = time.monotonic() + 0.5
    order = ("open", rate / len(clients), start, sizes["seconds"], sizes["warmup"])
    reports = await _ask(clients, [order] * len(clients))
    merged = _merged(reports)
    counted_seconds = sizes["seconds"] - sizes["warmup"]
    return {
        "fraction": fraction,
        "asked_per_s": round(rate),
        "achieved_per_s": round(sum(r["in_window"] for r in reports) / counted_seconds),
        "seconds": sizes["seconds"],
        "warmup_seconds": sizes["warmup"],
        **merged,
    }


async def end_to_end(namespace: str, settings: dict, logs: Path) -> dict:
    """The stack's maximum rate, closed loop, then the latency curve below it, open loop."""
    sizes = SIZES[settings["quick"]]
    env = {
        "PODIUM_GAME_WORKERS": str(settings["workers"]),
        "PODIUM_ACTION_RATE_PER_SECOND": str(ACTION_RATE),
        "PODIUM_ACTION_BURST": str(ACTION_RATE),
        # The bench registers its players from one address.
        "PODIUM_REGISTRATIONS_PER_ADDRESS": "100000",
        "PODIUM_LOG_LEVEL": "WARNING",
    }
    base = CommonSettings()
    shards = [f"podium_{namespace}"] + [
        f"podium_{namespace}_{n}" for n in range(1, settings["shards"])
    ]
    env["PODIUM_POSTGRES_SHARDS"] = ",".join(database_dsn(base.postgres_dsn, s) for s in shards)
    async with AsyncExitStack() as cleanup:
        cleanup.push_async_callback(remove, namespace)
        cleanup.push_async_callback(remove, namespace, shards[1:])
        progress(f"starting the stack ({namespace}, log in {logs})")
        stack = await start_stack(namespace, logs, env)
        cleanup.push_async_callback(stop_stack, stack.process)

        players = sizes["players"]
        progress(f"registering {players} players")
        async with aiohttp.ClientSession() as http:
            tokens = []
            for start in range(0, players, 20):
                group = range(start, min(players, start + 20))
                tokens += await asyncio.gather(*(_token(http, stack.url, n) for n in group))

        progress(f"opening {players} sockets in {settings['clients']} load clients")
        clients = _spawn_clients(stack.url, tokens, settings["clients"])
        cleanup.callback(_end_clients, clients)
        loop = asyncio.get_running_loop()
        for _, conn in clients:
            await loop.run_in_executor(None, conn.recv)

        progress("end to end, closed loop: the maximum rate")
        top = await _saturated(clients, players, sizes["length"], settings["window"])
        progress(f"maximum {top['actions_per_s']:,} actions/s, p99 {top['p99_ms']} ms")
        curve = []
        for fraction in FRACTIONS:
            progress(f"end to end, open loop at {fraction:.0%} of the maximum")
            curve.append(await _level(clients, fraction, top["actions_per_s"], sizes))
            progress(f"p50 {curve[-1]['p50_ms']} ms, p99 {curve[-1]['p99_ms']} ms")
    return {"maximum": top, "curve": curve, "clients": settings["clients"]}


def _end_clients(clients: list[tuple]) -> None:
    for process, conn in clients:
        if process.is_alive():
            conn.send(None)
    for process, _ in clients:
        process.join(30)
        if process.is_alive():
            process.kill()


# The run ------------------------------------------------------------------------------------


async def measure(options: dict) -> dict:
    """Workers alone, then end to end (maximum and latency curve). Options: quick, workers,
    shards, window (closed-loop actions in flight per player), clients (load processes)."""
    settings = {**DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS}}
    settings["quick"] = bool(settings["quick"])
    sizes = SIZES[settings["quick"]]
    base = CommonSettings()
    namespace = "bench" + uuid.uuid4().hex[:8]
    databases = [f"podium_{namespace}_{i}" for i in range(settings["shards"])]
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
    figures: dict = {"settings": settings}

    async with AsyncExitStack() as cleanup:
        for dsn in dsns:
            await migrate(dsn)
        cleanup.push_async_callback(remove, namespace, databases)
        progress("game workers alone")
        players, length = sizes["alone"]
        figures["workers_alone"] = await workers_alone(
            env, Names(namespace), players, length, settings["workers"], logs
        )
    figures["end_to_end"] = await end_to_end(namespace + "e", settings, logs)
    return figures


def rows(game: dict, raw: dict | None) -> list[tuple[str, str, str]]:
    """(figure, value, ratio or latency) rows; ratios need the raw figures of the same run."""
    alone, e2e = game["workers_alone"], game["end_to_end"]
    top = e2e["maximum"]

    def ratios(rate: int) -> str:
        if raw is None:
            return ""
        single = raw["postgres_single"]["transactions_per_s"]
        pull = raw["jetstream"]["pull_ack_per_s"]
        return f"{rate / single:.2f}x raw 1-action tx, {rate / pull:.2f}x raw pull+ack"

    lines = [
        (
            f"game workers alone ({alone['workers']} worker processes)",
            f"{alone['actions_per_s']:,} actions/s",
            ratios(alone["actions_per_s"]),
        ),
        (
            f"end to end, maximum ({top['players']} players, {top['window']} in flight each,"
            f" {e2e['clients']} load processes)",
            f"{top['actions_per_s']:,} actions/s",
            f"{ratios(top['actions_per_s'])}; p50 {top['p50_ms']} ms, p99 {top['p99_ms']} ms",
        ),
    ]
    for level in e2e["curve"]:
        lines.append(
            (
                f"end to end, open loop at {level['fraction']:.0%} of the maximum"
                f" ({level['asked_per_s']:,}/s asked)",
                f"{level['achieved_per_s']:,} actions/s",
                f"p50 {level['p50_ms']} ms, p95 {level['p95_ms']} ms, p99 {level['p99_ms']} ms"
                f" ({level['unanswered']} unanswered, {level['outcomes']})",
            )
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, about a minute")
    parser.add_argument("--workers", type=int, default=1, help="game worker processes")
    parser.add_argument("--shards", type=int, default=1, help="shard databases")
    parser.add_argument("--window", type=int, default=8, help="closed-loop in flight per player")
    parser.add_argument("--clients", type=int, default=2, help="load-client processes")
    args = parser.parse_args()

    async def both() -> tuple[dict, dict]:
        progress("raw limits")
        raw = await measure_raw({"quick": args.quick})
        return raw, await measure(vars(args))

    raw, game = uvloop.run(both())
    result = {
        "when": utc_now(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "figures": {"raw": raw, "game": game},
    }
    lines = ["| figure | value | ratio / latency |", "|---|---|---|"]
    lines += [f"| {name} | {value} | |" for name, value in raw_rows(raw)]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(game, raw)]
    save("game_throughput", result, "\n".join(lines))


if __name__ == "__main__":
    main()
