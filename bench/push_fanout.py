"""Time from a score change to its board frame at the last of N sockets watching one board.

The issue's figure: 2,000 sockets on this machine subscribed to the top of `global`. The
sockets share the sessions of a few players (logins are slow on purpose, and a session may hold
many sockets) and are spread over several load-client processes, so that reading the frames is
not one core's work. Once a round, a scorer plays `score`; the round is timed from sending the
action, and from its result's arrival, to the first frame showing the new score at the last
socket. The figure is also split into the first socket's time (the path through game worker,
ranking and gateway) and the spread from first to last socket (the gateway's fan-out). Every
process reads CLOCK_MONOTONIC (time.monotonic_ns), which Linux shares between processes.

It starts its own stack (`python -m devstack up`, ports and a namespace of its own, removed
afterwards) unless given the URL of a running one; there the scorer must reach the top `limit`
of `global` with 1,000 points a round for its rounds to be seen.

    .venv/bin/python bench/push_fanout.py [--quick] [--sockets 2000] [--url URL]
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import sys
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import nats
import orjson
import redis.asyncio as aioredis
import uvloop

from devstack.client import PlayerClient
from infra.config import CommonSettings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench-password-123"
# The most one `score` adds: the scorer stays first, so every round changes the top view.
POINTS = 1000
# Upgrades in flight over all load clients. Auth's Redis pool refuses calls past 100 at once
# (redis-py's default) and the gateway answers such an upgrade 503, so stay well below.
OPENING = 60
# How long the load clients wait, after the last round, for frames still on their way.
SETTLE_SECONDS = 10.0


def _progress(step: str) -> None:
    print(f"... {step}", file=sys.stderr, flush=True)


def _score_of(frame: dict, player_id: str) -> int | None:
    for entry in frame["entries"]:
        if entry["player_id"] == player_id:
            return entry["score"]
    return None


# Load clients ------------------------------------------------------------------------------


class Watcher:
    """One socket and its board frames as (arrival ns, seq, the scorer's score or None)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[tuple[int, int, int | None]] = []
        self.reader: asyncio.Task | None = None

    async def read(self, scorer: str) -> None:
        async for message in self.ws:
            arrived = time.monotonic_ns()
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = orjson.loads(message.data)
            if frame.get("type") == "board":
                self.frames.append((arrived, frame["seq"], _score_of(frame, scorer)))

    def arrivals(self, targets: list[int]) -> list[int | None]:
        """When each target score first showed in an update (later ones count: coalescing)."""
        found: list[int | None] = [None] * len(targets)
        reached = 0
        for arrived, _, score in self.frames[1:]:
            while reached < len(targets) and score is not None and score >= targets[reached]:
                found[reached] = arrived
                reached += 1
        return found

    @property
    def went_backwards(self) -> bool:
        seqs = [seq for _, seq, _ in self.frames]
        return seqs != sorted(seqs)


def _subscribe(limit: int) -> str:
    frame = {"type": "subscribe", "id": 1, "board": "global", "view": "top", "limit": limit}
    return orjson.dumps(frame).decode()


async def _open(http, url: str, token: str, limit: int, scorer: str, gate) -> Watcher:
    """A socket subscribed to global's top, its answer recorded and its reader started."""
    async with gate:
        ws = await http.ws_connect(url + "/v1/ws", headers={"Authorization": f"Bearer {token}"})
        watcher = Watcher(ws)
        welcome = orjson.loads((await ws.receive()).data)
        if welcome["type"] != "welcome":
            raise RuntimeError(f"expected a welcome: {welcome}")
        await ws.send_str(_subscribe(limit))
        answer = orjson.loads((await ws.receive()).data)
        if answer.get("id") != 1:
            raise RuntimeError(f"expected the subscribe's answer: {answer}")
    watcher.frames.append((time.monotonic_ns(), answer["seq"], _score_of(answer, scorer)))
    watcher.reader = asyncio.create_task(watcher.read(scorer))
    return watcher


def _load_client(url: str, tokens: list[str], count: int, opening: int, args, conn) -> None:
    """A load-client process: open `count` sockets, report ready, then report what arrived."""
    uvloop.run(_serve_load(url, tokens, count, opening, args.limit, args.scorer_id, conn))


async def _serve_load(url, tokens: list[str], count: int, opening: int, limit: int, scorer, conn):
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(opening)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        opened = await asyncio.gather(
            *(
                _open(http, url, tokens[n % len(tokens)], limit, scorer, gate)
                for n in range(count)
            ),
            return_exceptions=True,
        )
        watchers = [w for w in opened if isinstance(w, Watcher)]
        errors = Counter(_failure(e) for e in opened if not isinstance(e, Watcher))
        conn.send(("ready", len(watchers), errors, time.monotonic() - started))

        targets = await loop.run_in_executor(None, conn.recv)
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline and not all(
            w.arrivals(targets[-1:])[0] for w in watchers
        ):
            await asyncio.sleep(0.1)
        conn.send(("report", _summary(watchers, targets)))

        for watcher in watchers:
            await watcher.ws.close()
            await watcher.reader


def _failure(error: BaseException) -> str:
    if isinstance(error, aiohttp.WSServerHandshakeError):
        return f"upgrade answered {error.status}"
    return f"{type(error).__name__}: {str(error)[:100]}"


def _summary(watchers: list[Watcher], targets: list[int]) -> dict:
    """Per round, the first and last socket's arrival; per socket, what it got."""
    arrivals = [w.arrivals(targets) for w in watchers]
    rounds = []
    for n, target in enumerate(targets):
        got = [found[n] for found in arrivals if found[n] is not None]
        rounds.append(
            {
                "first_ns": min(got, default=None),
                "last_ns": max(got, default=None),
                "reached": len(got),
                "own_frame": sum(any(f[2] == target for f in w.frames) for w in watchers),
            }
        )
    return {
        "rounds": rounds,
        "every_round": sum(None not in found for found in arrivals),
        "every_round_own_frame": sum({f[2] for f in w.frames} >= set(targets) for w in watchers),
        "went_backwards": sum(w.went_backwards for w in watchers),
        "closed_early": sum(w.ws.closed for w in watchers),
        "frames": sum(len(w.frames) for w in watchers),
    }


# The stack ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _dsn(base: str, database: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{database}"))


async def _start_stack(namespace: str, coalesce_ms: int | None, logs: Path):
    """`python -m devstack up` in a namespace of its own; (url, process) once it is up."""
    base = CommonSettings()
    dsn = _dsn(base.postgres_dsn, f"podium_{namespace}")
    http_port = _free_port()
    env = {
        **os.environ,
        "PODIUM_NAMESPACE": namespace,
        "PODIUM_POSTGRES_DSN": dsn,
        "PODIUM_POSTGRES_SHARDS": dsn,
        "PODIUM_HTTP_PORT": str(http_port),
        "PODIUM_AUTH_PORT": str(_free_port()),
        "PODIUM_RANKING_PORT": str(_free_port()),
        "PODIUM_GAME_PORT": str(_free_port()),
        "PODIUM_JWT_PRIVATE_KEY_FILE": str(ROOT / ".podium" / "jwt-ed25519.pem"),
        # 2,000 socket_opened lines would be load of their own.
        "PODIUM_LOG_LEVEL": "WARNING",
    }
    if coalesce_ms is not None:
        env["PODIUM_COALESCE_MS"] = str(coalesce_ms)
    log_path = logs / "stack.log"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack", "up", env=env, cwd=ROOT, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 90
    while b"Podium is up" not in log_path.read_bytes():
        if process.returncode is not None or time.monotonic() > deadline:
            await _stop_stack(process)
            raise RuntimeError(f"the stack did not start; see {log_path}")
        await asyncio.sleep(0.1)
    return f"http://127.0.0.1:{http_port}", process


async def _stop_stack(process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()


async def _remove(namespace: str) -> None:
    """Drop the stack's database, streams and Redis keys."""
    base = CommonSettings()
    admin = await asyncpg.connect(_dsn(base.postgres_dsn, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "podium_{namespace}" WITH (FORCE)')
    finally:
        await admin.close()

    nc = await nats.connect(base.nats_url)
    js = nc.jetstream()
    for info in await js.streams_info():
        if info.config.name.startswith(namespace.upper() + "_"):
            await js.delete_stream(info.config.name)
    await nc.close()

    client = aioredis.from_url(base.redis_url)
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def _service_pids(stack_pid: int) -> dict[str, int]:
    """The stack's child processes by module (`-m gateway` -> gateway)."""
    pids = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, NotADirectoryError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == stack_pid and b"-m" in cmdline:
            pids[cmdline[cmdline.index(b"-m") + 1].decode()] = int(entry.name)
    return pids


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The run -----------------------------------------------------------------------------------


async def _players(http, url: str, sessions: int) -> tuple[PlayerClient, list[str]]:
    """A connected scorer, and the access tokens of `sessions` players who each scored once
    (so that the top view the sockets watch is full-sized)."""
    made = []
    for _ in range(sessions + 1):
        player = PlayerClient(http, url)
        name = f"f{uuid.uuid4().hex[:12]}"
        await player.register(name, PASSWORD)
        await player.login(name, PASSWORD)
        made.append(player)
    scorer, *owners = made
    for n, owner in enumerate(owners):
        await owner.connect()
        await owner.play("score", {"points": n + 1})
        await owner.close()
    await scorer.connect()
    return scorer, [owner.access_token for owner in owners]


async def _rounds(scorer: PlayerClient, rounds: int, interval: float) -> list[dict]:
    """Play once per interval; each round's send and result times and the score it set.

    A first play, not timed, warms the path: a player's first action takes far longer.
    """
    await scorer.play("score", {"points": POINTS})
    await asyncio.sleep(interval)
    played = []
    start = time.monotonic()
    for n in range(rounds):
        await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
        sent = time.monotonic_ns()
        result = await scorer.play("score", {"points": POINTS})
        answered = time.monotonic_ns()
        played.append({"sent_ns": sent, "result_ns": answered, "score": result["score"]})
        if result["status"] != "applied":
            raise RuntimeError(f"the scorer's action was not applied: {result}")
        if (n + 1) % 10 == 0 or n + 1 == rounds:
            _progress(f"round {n + 1}/{rounds}")
    return played


def _start_clients(url: str, tokens: list[str], args) -> list[tuple]:
    """Load-client processes sharing the sockets out; (process, connection) each."""
    context = multiprocessing.get_context("spawn")
    started = []
    for n in range(args.clients):
        count = args.sockets // args.clients + (n < args.sockets % args.clients)
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_load_client,
            args=(url, tokens, count, max(1, OPENING // args.clients), args, theirs),
            daemon=True,
        )
        process.start()
        started.append((process, ours))
    return started


async def _receive(conn, kind: str):
    message = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    if message[0] != kind:
        raise RuntimeError(f"a load client sent {message[0]!r}, not {kind!r}")
    return message[1:]


async def run(args: argparse.Namespace) -> dict:
    namespace = "push" + uuid.uuid4().hex[:8]
    load_before = os.getloadavg()[0]
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / namespace
    async with AsyncExitStack() as cleanup:
        url, stack = args.url, None
        if url is None:
            logs.mkdir(parents=True)
            cleanup.push_async_callback(_remove, namespace)
            _progress(f"starting the stack ({namespace}, log in {logs})")
            url, stack = await _start_stack(namespace, args.coalesce_ms, logs)
            cleanup.push_async_callback(_stop_stack, stack)
        http = await cleanup.enter_async_context(aiohttp.ClientSession())

        _progress(f"logging in {args.sessions + 1} players")
        scorer, tokens = await _players(http, url, args.sessions)
        cleanup.push_async_callback(scorer.close)
        args.scorer_id = scorer.player_id
        _progress(f"opening {args.sockets} sockets in {args.clients} load clients")
        clients = _start_clients(url, tokens, args)
        ready = [await _receive(conn, "ready") for _, conn in clients]
        opened = sum(count for count, _, _ in ready)
        errors = dict(sum((found for _, found, _ in ready), Counter()))
        _progress(f"{opened} sockets open in {max(s for _, _, s in ready):.1f} s {errors or ''}")

        pids = _service_pids(stack.pid) if stack else {}
        pids.update({f"load_client_{n}": p.pid for n, (p, _) in enumerate(clients)})
        cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        began = time.monotonic()
        played = await _rounds(scorer, args.rounds, args.interval)
        elapsed = time.monotonic() - began
        cpu = {name: _cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        for _, conn in clients:
            conn.send([round_["score"] for round_ in played])
        reports = [(await _receive(conn, "report"))[0] for _, conn in clients]
        for process, _ in clients:
            process.join(30)

    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # Other work on the machine; the figures are only comparable at similar loads.
            "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        },
        "settings": {
            key: getattr(args, key)
            for key in ("sockets", "rounds", "interval", "clients", "sessions", "limit")
        }
        | {"coalesce_ms": args.coalesce_ms, "own_stack": args.url is None},
        "opened": opened,
        "open_errors": errors,
        "figures": _figures(played, reports, opened),
        # Busy share of one core for each process while the rounds were played.
        "cpu_share": {name: round(seconds / elapsed, 2) for name, seconds in cpu.items()},
        "logs": str(logs) if stack else None,
    }


def _stats(samples: list[float]) -> dict:
    if not samples:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    cuts = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else []
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p99_ms": round(cuts[98] if cuts else samples[0], 1),
        "max_ms": round(max(samples), 1),
    }


def _figures(played: list[dict], reports: list[dict], opened: int) -> dict:
    """Latencies over the rounds every socket saw, and what the sockets got."""
    from_send, from_result, first, spread = [], [], [], []
    complete = 0
    for n, round_ in enumerate(played):
        parts = [report["rounds"][n] for report in reports]
        if sum(part["reached"] for part in parts) < opened:
            continue
        complete += 1
        last = max(part["last_ns"] for part in parts)
        earliest = min(part["first_ns"] for part in parts)
        from_send.append((last - round_["sent_ns"]) / 1e6)
        from_result.append((last - round_["result_ns"]) / 1e6)
        first.append((earliest - round_["sent_ns"]) / 1e6)
        spread.append((last - earliest) / 1e6)

    def total(key: str) -> int:
        return sum(report[key] for report in reports)

    return {
        "rounds": len(played),
        "rounds_every_socket_saw": complete,
        "rounds_every_socket_saw_in_a_frame_of_its_own": sum(
            sum(report["rounds"][n]["own_frame"] for report in reports) == opened
            for n in range(len(played))
        ),
        "send_to_last_socket": _stats(from_send),
        "result_to_last_socket": _stats(from_result),
        "send_to_first_socket": _stats(first),
        "first_to_last_socket": _stats(spread),
        "action_result": _stats([(r["result_ns"] - r["sent_ns"]) / 1e6 for r in played]),
        "sockets_every_round": total("every_round"),
        "sockets_every_round_own_frame": total("every_round_own_frame"),
        "sockets_seq_went_backwards": total("went_backwards"),
        "sockets_closed_early": total("closed_early"),
        "frames": total("frames"),
    }


def _report(run: dict) -> str:
    f, s = run["figures"], run["settings"]
    rows = [
        ("score sent -> frame at the last socket", f["send_to_last_socket"]),
        ("result arrived -> frame at the last socket", f["result_to_last_socket"]),
        ("score sent -> frame at the first socket", f["send_to_first_socket"]),
        ("first socket -> last socket (fan-out spread)", f["first_to_last_socket"]),
        ("score sent -> its result", f["action_result"]),
    ]
    lines = [
        f"{run['opened']:,} sockets, {f['rounds']} rounds every {s['interval'] * 1000:.0f} ms."
        f" Rounds every socket saw: {f['rounds_every_socket_saw']}"
        f" ({f['rounds_every_socket_saw_in_a_frame_of_its_own']} in a frame of their own, not"
        f" coalesced with the next). Sockets that saw every round: {f['sockets_every_round']:,};"
        f" saw seq go back: {f['sockets_seq_went_backwards']};"
        f" closed by the gateway: {f['sockets_closed_early']}.",
        "",
        "| time | p50 | p99 | max |",
        "|---|---|---|---|",
    ]
    for name, stat in rows:
        p50, p99, top = (stat[key] for key in ("p50_ms", "p99_ms", "max_ms"))
        lines.append(f"| {name} | {p50} ms | {p99} ms | {top} ms |")
    shares = ", ".join(f"{name} {share:.2f}" for name, share in run["cpu_share"].items())
    load = run["machine"]["load_average_1min"]
    lines += [
        "",
        f"CPU, in cores busy during the rounds: {shares}",
        f"Load average (1 min) before and after: {load['before']:.2f}, {load['after']:.2f}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 sockets, 10 rounds")
    parser.add_argument("--sockets", type=int, default=2000, help="sockets watching the board")
    parser.add_argument("--rounds", type=int, default=50, help="score changes timed")
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between rounds")
    parser.add_argument("--clients", type=int, default=4, help="load-client processes")
    parser.add_argument("--sessions", type=int, default=10, help="players the sockets share")
    parser.add_argument("--limit", type=int, default=10, help="entries of the top view, 1-100")
    parser.add_argument("--url", help="a running gateway, instead of a stack of our own")
    parser.add_argument(
        "--coalesce-ms", type=int, help="ranking's coalescing window for our own stack"
    )
    args = parser.parse_args()
    if args.quick:
        args.sockets, args.rounds = 500, 10

    result = uvloop.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"push_fanout-{result['when']}.json"
    out.write_text(json.dumps(result, indent=2))
    print(_report(result))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
