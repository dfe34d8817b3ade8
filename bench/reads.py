"""Board reads at 10,000 and 1,000,000 players: gateway REST and ranking gRPC beside redis-py.

Three reads of the `global` board - the top 100, a player with five neighbours on each side,
and one player's rank - are timed through the gateway (GET /v1/boards/global/...) and through
ranking's gRPC (GetTop, GetAround, GetPlayerRank), and in the same run redis-py reads the key
ranking reads: ZREVRANGE 0 99 WITHSCORES (the issue's raw figure), ZRANGE 0 99 WITHSCORES
(this board's real top: scores of boards where higher wins are stored negated) and ZREVRANK
with ZSCORE of one member in one round trip. Latencies are of sequential reads from a client
process of their own, the kinds interleaved so that they share the machine's state; then
several client processes keep reads in flight to give each kind's throughput.

The board is filled the way game workers write it - infra.leaderboard's script, standings in
large pipelined batches, the board's seq stepped from the clock - and marked built (the
`ready` key a rebuild sets), so ranking reads it as it is instead of rebuilding it from
Postgres, which holds none of these players. Their usernames go in the hash ranking reads
names from. Players are never registered: accounts play no part in a read.

It starts a stack of its own (`python -m devstack up`, namespace, database and ports of its
own) and removes it afterwards.

With --profile, once the last size is measured, py-spy (from /tmp/pyspy, kept out of the
project's venv) samples the gateway and ranking while the clients load the gateway's top 100
again; the raw stacks are kept beside the stack's log and the busiest frames are reported.

    .venv/bin/python bench/reads.py [--quick] [--sizes 10000,1000000] [--requests 2000]
        [--profile]
"""

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import nats
import redis.asyncio as aioredis
import uvloop
from harness import progress, save, utc_now
from podium.game.v1 import game_pb2
from push_fanout import _cpu_seconds, _service_pids
from read_clients import Target, client
from stack import remove, start_stack, stop_stack

from infra.boards import boards
from infra.config import CommonSettings
from infra.leaderboard import PeriodKeys, Standing, player_of, register_write, write_args
from infra.names import Names

BOARD = "global"
SIZES = [10_000, 1_000_000]
QUICK_SIZES = [10_000, 100_000]
# Standings per script call, and script calls per pipeline, when filling the board.
WRITE_BATCH = 1000
PIPELINE_CALLS = 20
# Players whose around and rank reads are timed (cycled through), drawn at random.
SAMPLED_PLAYERS = 500
# Every read (a method of read_clients.Reads), and its name in the report.
LABELS = {
    "gateway_top": "gateway GET top?limit=100",
    "gateway_around": "gateway GET around/{id}?radius=5",
    "gateway_player": "gateway GET players/{id}",
    "grpc_top": "ranking gRPC GetTop(limit=100)",
    "grpc_around": "ranking gRPC GetAround(radius=5)",
    "grpc_player": "ranking gRPC GetPlayerRank",
    "raw_zrevrange": "raw ZREVRANGE 0 99 WITHSCORES",
    "raw_zrange": "raw ZRANGE 0 99 WITHSCORES (the board's top)",
    "raw_rank": "raw ZREVRANK + ZSCORE (one round trip)",
}
# The reads whose throughput is measured too.
LOAD_OPS = ["gateway_top", "grpc_top", "raw_zrevrange", "gateway_player", "raw_rank"]
# Typical points of the generated players: most have little, a few have a lot.
MEAN_SCORE = 10_000
REACHED_SPAN_MS = 30 * 86_400_000
PY_SPY = Path(os.environ.get("PY_SPY", "/tmp/pyspy/bin/py-spy"))
PROFILE_SECONDS = 15
PROFILE_TOP = 15
# Seconds between asking the clients for a load phase and its start: their warm-up.
LOAD_DELAY = 0.5


# Filling the board -------------------------------------------------------------------------


def _standings(rng: random.Random, count: int, now_ms: int) -> list[Standing]:
    return [
        Standing(
            player_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            score=int(rng.expovariate(1 / MEAN_SCORE)),
            subscore=0,
            reached_ms=now_ms - rng.randrange(REACHED_SPAN_MS),
            version=1,
        )
        for _ in range(count)
    ]


async def _mark_built(redis: aioredis.Redis, keys: PeriodKeys) -> None:
    """Mark the period built, as a rebuild of it from Postgres (which has no standings) would,
    unless ranking has rebuilt it already; wait out a rebuild under way."""
    while await redis.exists(keys.rebuild):
        await asyncio.sleep(0.05)
    await redis.set(keys.ready, 1, nx=True)


async def _fill(redis, names: Names, keys: PeriodKeys, rng, players: range) -> tuple[float, int]:
    """Write standings for `players` (numbers, which name them) as workers would, each
    pipeline one round trip; the seconds it took and the board's seq after it."""
    board = boards()[BOARD]
    write = register_write(redis)
    began = time.monotonic()
    step = WRITE_BATCH * PIPELINE_CALLS
    for start in range(players.start, players.stop, step):
        floor = time.time_ns() // 1000
        async with redis.pipeline(transaction=False) as pipe:
            for first in range(start, min(start + step, players.stop), WRITE_BATCH):
                count = min(WRITE_BATCH, players.stop - first)
                standings = _standings(rng, count, time.time_ns() // 1_000_000)
                args = write_args(board, standings, floor)
                await write(keys=keys.write_keys, args=args, client=pipe)
                usernames = {s.player_id: f"p{first + n}" for n, s in enumerate(standings)}
                pipe.hset(names.usernames_key, mapping=usernames)
            replies = await pipe.execute()
        landed = sum(reply[0] for reply in replies[::2])
        if landed != min(step, players.stop - start):
            raise RuntimeError(f"only {landed} standings landed of a batch")
        seq = replies[-2][1]
        done = min(start + step, players.stop)
        if done // 100_000 > start // 100_000:
            progress(f"{done:,} players on the board")
    return time.monotonic() - began, seq


async def _board_mib(redis, names: Names, keys: PeriodKeys) -> float:
    """Redis's estimate (from a sample of members) of the board's keys and the names hash."""
    total = 0
    for key in (keys.ranked, keys.index, names.usernames_key):
        total += await redis.memory_usage(key) or 0
    return round(total / 2**20, 1)


async def _announce(nc, names: Names, period: str, seq: int) -> None:
    """The BoardChange a worker publishes after a write, so that ranking's feed moves on."""
    change = game_pb2.BoardChange(board=BOARD, period=period, seq=seq)
    await nc.publish(names.board_changes_subject, change.SerializeToString())
    await nc.flush()


async def _target(redis, url: str, ranking: str, keys: PeriodKeys, rng) -> Target:
    """What the clients read, and the board's answers they check their replies against."""
    total = await redis.zcard(keys.ranked)
    members = await redis.zrandmember(keys.ranked, SAMPLED_PLAYERS)
    async with redis.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.zrank(keys.ranked, member)
        ranks = await pipe.execute()
    top = (await redis.zrange(keys.ranked, 0, 0))[0]
    players = [(player_of(m), m, rank + 1) for m, rank in zip(members, ranks, strict=True)]
    rng.shuffle(players)
    redis_url = CommonSettings().redis_url
    return Target(url, ranking, redis_url, keys.ranked, total, player_of(top), players)


# The clients -------------------------------------------------------------------------------


def _spawn(count: int) -> list[tuple]:
    """Client processes and our ends of their pipes."""
    context = multiprocessing.get_context("spawn")
    clients = []
    for _ in range(count):
        ours, theirs = context.Pipe()
        process = context.Process(target=client, args=(theirs,), daemon=True)
        process.start()
        clients.append((process, ours))
    return clients


async def _ask(conn, command: tuple):
    conn.send(command)
    status, value = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    if status != "ok":
        raise RuntimeError(f"a client process failed: {value}")
    return value


def _stats(samples: list[float]) -> dict:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "reads": len(samples),
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(cuts[98], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
    }


async def _latencies(conn, requests: int) -> dict:
    times = await _ask(conn, ("sequential", list(LABELS), requests))
    return {op: _stats(samples) for op, samples in times.items()}


async def _throughput(clients: list[tuple], pids: dict, settings: dict) -> dict:
    """Each load op with every client keeping `in_flight` reads going for `seconds`, and the
    cores that gateway, ranking, Redis and the clients kept busy meanwhile."""
    figures = {}
    seconds = settings["load_seconds"]
    for op in LOAD_OPS:
        start_at = time.monotonic() + LOAD_DELAY
        command = ("load", op, settings["in_flight"], start_at, seconds)
        asked = [asyncio.ensure_future(_ask(conn, command)) for _, conn in clients]
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        cpu_before = _cpu(pids)
        began = time.monotonic()
        replies = await asyncio.gather(*asked)
        elapsed = time.monotonic() - began
        samples = [ms for _, times in replies for ms in times]
        figures[op] = {
            "reads_per_second": round(sum(count for count, _ in replies) / seconds),
            **{key: value for key, value in _stats(samples).items() if key != "reads"},
            "cpu_share": {
                name: round((used - cpu_before[name]) / elapsed, 2)
                for name, used in _cpu(pids).items()
            },
        }
        progress(f"{LABELS[op]}: {figures[op]['reads_per_second']:,} reads/s")
    return figures


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each group of processes."""
    return {name: sum(_cpu_seconds(pid) for pid in group) for name, group in pids.items()}


def _ratios(latency: dict) -> dict:
    """Podium's top 100 over raw ZREVRANGE 0 99, at p50 and at p99."""
    raw = latency["raw_zrevrange"]
    return {
        f"{op} / raw_zrevrange {stat[:3]}": round(latency[op][stat] / raw[stat], 2)
        for op in ("gateway_top", "grpc_top")
        for stat in ("p50_ms", "p99_ms")
    }


# The run -----------------------------------------------------------------------------------


async def _size(redis, nc, names, keys, period, rng, size, filled, stack, clients, pids, settings):
    """Grow the board to `size` players and measure every read on it."""
    progress(f"filling the board from {filled:,} to {size:,} players")
    seconds, seq = await _fill(redis, names, keys, rng, range(filled, size))
    await _announce(nc, names, period, seq)
    target = await _target(redis, stack.url, stack.ranking, keys, rng)
    for _, conn in clients:
        await _ask(conn, ("target", target))

    progress(f"{size:,} players: {settings['requests']} sequential reads of each kind")
    latency = await _latencies(clients[0][1], settings["requests"])
    for op, figures in latency.items():
        progress(f"{LABELS[op]}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    progress(f"{size:,} players: throughput, {len(clients)} clients x {settings['in_flight']}")
    throughput = await _throughput(clients, pids, settings)
    return {
        "players": size,
        "fill_seconds": round(seconds, 1),
        "board_memory_mib": await _board_mib(redis, names, keys),
        "latency": latency,
        "ratios": _ratios(latency),
        "throughput": throughput,
    }


async def measure(options: dict) -> dict:
    """Fill a board of our own stack to each size in turn and time the reads on it."""
    quick = options.get("quick", False)
    settings = {
        "sizes": sorted(set(options.get("sizes") or (QUICK_SIZES if quick else SIZES))),
        "requests": options.get("requests") or (150 if quick else 2000),
        "clients": options.get("clients", 4),
        "in_flight": options.get("in_flight", 2),
        "load_seconds": options.get("load_seconds") or (0.5 if quick else 4.0),
    }
    if options.get("profile") and not PY_SPY.exists():
        raise RuntimeError(f"no py-spy at {PY_SPY}: pip install py-spy into /tmp/pyspy")
    namespace = "reads" + uuid.uuid4().hex[:8]
    names = Names(namespace)
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / namespace
    logs.mkdir(parents=True)
    load_before = os.getloadavg()[0]
    rng = random.Random(options.get("seed", 7))
    sizes, profile = [], None
    async with AsyncExitStack() as cleanup:
        cleanup.push_async_callback(remove, namespace)
        progress(f"starting the stack ({namespace}, log in {logs})")
        stack = await start_stack(namespace, logs, {"PODIUM_LOG_LEVEL": "WARNING"})
        cleanup.push_async_callback(stop_stack, stack.process)
        base = CommonSettings()
        redis = aioredis.from_url(base.redis_url, decode_responses=True)
        cleanup.push_async_callback(redis.aclose)
        nc = await nats.connect(base.nats_url)
        cleanup.push_async_callback(nc.close)
        clients = _spawn(settings["clients"])
        cleanup.callback(_stop_clients, clients)

        board = boards()[BOARD]
        period = board.period_at(time.time_ns() // 1_000_000)
        keys = PeriodKeys.of(names.board_key(BOARD, period), names.board_seq_key(BOARD))
        await _mark_built(redis, keys)
        services = _service_pids(stack.process.pid)
        pids = {name: [services[name]] for name in ("gateway", "ranking")}
        pids["redis"] = [(await redis.info("server"))["process_id"]]
        pids["clients"] = [process.pid for process, _ in clients]
        filled = 0
        for size in settings["sizes"]:
            args = (redis, nc, names, keys, period, rng, size, filled, stack, clients, pids)
            sizes.append(await _size(*args, settings))
            filled = size
        if options.get("profile"):
            profile = await _profile(clients, pids, settings, logs)

    return {
        "when": utc_now(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        },
        "settings": settings | {"board": BOARD, "sampled_players": SAMPLED_PLAYERS},
        "sizes": sizes,
        "profile": profile,
        "logs": str(logs),
    }


async def _profile(clients: list[tuple], pids: dict, settings: dict, logs: Path) -> dict:
    """Load the gateway's top 100 again with py-spy sampling gateway and ranking; the busiest
    frames of each."""
    progress(f"profiling gateway and ranking for {PROFILE_SECONDS} s under top-100 load")
    start_at = time.monotonic() + LOAD_DELAY
    command = ("load", "gateway_top", settings["in_flight"], start_at, PROFILE_SECONDS)
    asked = [asyncio.ensure_future(_ask(conn, command)) for _, conn in clients]
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    outputs = {name: logs / f"py-spy-{name}.txt" for name in ("gateway", "ranking")}
    spies = [
        await asyncio.create_subprocess_exec(
            str(PY_SPY),
            "record",
            "-p",
            str(pids[name][0]),
            "-d",
            str(PROFILE_SECONDS - 1),
            "-r",
            "250",
            "-f",
            "raw",
            "--nolineno",
            "-o",
            str(out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, out in outputs.items()
    ]
    await asyncio.gather(*asked)
    for spy in spies:
        await spy.wait()
    return {name: _busiest(out) | {"raw_stacks": str(out)} for name, out in outputs.items()}


def _busiest(out: Path) -> dict:
    """From py-spy's collapsed stacks: the share of samples each frame is on the stack
    (inclusive) and at its top (self), the largest first."""
    inclusive, own, total = {}, {}, 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, samples = stack.split(";")[1:], int(count)
        total += samples
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + samples

    def top(counts: dict) -> list:
        best = sorted(counts.items(), key=lambda item: -item[1])[:PROFILE_TOP]
        return [[frame, round(samples / total, 3)] for frame, samples in best]

    return {"samples": total, "self": top(own), "inclusive": top(inclusive)}


def _stop_clients(clients: list[tuple]) -> None:
    for process, conn in clients:
        if process.is_alive():
            conn.send(None)
        process.join(10)


def report(run: dict) -> str:
    """The Markdown tables of a run."""
    s = run["settings"]
    lines = [
        f"Sequential reads from one client process: {s['requests']} of each kind, interleaved;"
        f" throughput: {s['clients']} client processes x {s['in_flight']} reads in flight,"
        f" {s['load_seconds']} s per kind.",
        "",
        "| read | " + " | ".join(f"{size['players']:,} p50 / p99" for size in run["sizes"]) + " |",
        "|---|" + "---|" * len(run["sizes"]),
    ]
    for op, label in LABELS.items():
        cells = [
            f"{size['latency'][op]['p50_ms']:.2f} / {size['latency'][op]['p99_ms']:.2f} ms"
            for size in run["sizes"]
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for ratio in run["sizes"][0]["ratios"]:
        cells = [f"{size['ratios'][ratio]}x" for size in run["sizes"]]
        lines.append(f"| {ratio} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| reads/s (p50 / p99 ms; cores busy: gateway/ranking/Redis/clients) | "
        + " | ".join(f"{size['players']:,}" for size in run["sizes"])
        + " |",
        "|---|" + "---|" * len(run["sizes"]),
    ]
    for op in LOAD_OPS:
        cells = [_load_cell(size["throughput"][op]) for size in run["sizes"]]
        lines.append(f"| {LABELS[op]} | " + " | ".join(cells) + " |")
    lines += _profile_report(run["profile"])
    load = run["machine"]["load_average_1min"]
    lines += [
        "",
        f"{run['machine']['cpus']} CPUs; load average (1 min) before and after:"
        f" {load['before']:.2f}, {load['after']:.2f}. Board fill: "
        + ", ".join(
            f"{size['players']:,} in {size['fill_seconds']} s"
            f" ({size['board_memory_mib']} MiB in Redis with the names)"
            for size in run["sizes"]
        )
        + ".",
    ]
    return "\n".join(lines)


def _profile_report(profile: dict | None) -> list[str]:
    if profile is None:
        return []
    lines = []
    for name, found in profile.items():
        frames = ", ".join(f"{frame} {share:.0%}" for frame, share in found["self"][:8])
        lines += ["", f"py-spy, {name}, busiest frames (own time): {frames}."]
    return lines


def _load_cell(figures: dict) -> str:
    cpu = "/".join(f"{share:.2f}" for share in figures["cpu_share"].values())
    return (
        f"{figures['reads_per_second']:,}"
        f" ({figures['p50_ms']:.1f} / {figures['p99_ms']:.1f} ms; {cpu})"
    )


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(size) for size in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("give whole numbers, comma-separated") from None
    if not all(100 <= size <= 10_000_000 for size in sizes):
        raise argparse.ArgumentTypeError("each size must be 100-10,000,000 players")
    return sizes


def _at_least(low: int):
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or int(text) < low:
            raise argparse.ArgumentTypeError(f"give a whole number of at least {low}")
        return int(text)

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k players, fewer reads")
    parser.add_argument(
        "--sizes", type=_sizes, help="board sizes, comma-separated (default 10000,1000000)"
    )
    parser.add_argument(
        "--requests", type=_at_least(10), help="sequential reads of each kind per size"
    )
    parser.add_argument(
        "--clients", type=_at_least(1), default=4, help="client processes for throughput"
    )
    parser.add_argument(
        "--in-flight", type=_at_least(1), default=2, help="reads each client keeps going"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy gateway and ranking at the last size"
    )
    args = parser.parse_args()
    options = {
        "quick": args.quick,
        "sizes": args.sizes,
        "requests": args.requests,
        "clients": args.clients,
        "in_flight": args.in_flight,
        "profile": args.profile,
    }

    result = uvloop.run(measure(options))
    save("reads", result, report(result))


if __name__ == "__main__":
    main()
