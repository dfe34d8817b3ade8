"""Time from a score change to its board frame at the last of N sockets watching one board,
and what sockets that never read do to that time.

The issue's figure: 2,000 sockets on this machine subscribed to the top of `global`. The
sockets share the sessions of a few players (logins are slow on purpose, and a session may hold
many sockets) and are spread over several load-client processes, so that reading the frames is
not one core's work. Once a round, a scorer plays `score`; the round is timed from sending the
action, and from its result's arrival, to the first frame showing the new score at the last
socket. The figure is also split into the first socket's time (the path through game worker,
ranking and gateway) and the spread from first to last socket (the gateway's fan-out). Every
process reads CLOCK_MONOTONIC (time.monotonic_ns), which Linux shares between processes.

With `--stuck N` the rounds are played three times in one run, so that the figures share the
machine's state: without stuck sockets; again once a separate process has opened N sockets that
subscribe to the same view and never read; and again after the gateway has closed those. It
also counts the closes the gateway logged for them (`socket_closing`) and samples the gateway's
RSS throughout. `--churn R` keeps the board changing about R times a second through all of
it (players of their own, in another process), so that the stuck sockets' buffers fill.

It starts its own stack (`python -m devstack up`, ports and a namespace of its own, removed
afterwards) unless given the URL of a running one; there the scorer must reach the top `limit`
of `global` with 1,000 points a round for its rounds to be seen, and the stuck sockets' closes
and the gateway's memory are not measured.

    .venv/bin/python bench/push_fanout.py [--quick] [--sockets 2000] [--url URL]
        [--stuck 200 --churn 500 [--stall-seconds 10]]
"""

import argparse
import asyncio
import math
import os
import platform
import statistics
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path

import aiohttp
import orjson
import uvloop
from harness import progress, save, spawn, utc_now
from push_clients import churn_client, load_client, stuck_client
from stack import remove, start_stack, stop_stack

from devstack.client import PlayerClient

PASSWORD = "bench-password-123"
# The most one `score` adds: the scorer stays first, so every round changes the top view.
POINTS = 1000
# Upgrades in flight over all load clients. Auth's Redis pool refuses calls past 100 at once
# (redis-py's default) and the gateway answers such an upgrade 503, so stay well below.
OPENING = 60
# The gateway's stall limit when PODIUM_SEND_STALL_SECONDS does not say otherwise.
DEFAULT_STALL_SECONDS = 10.0
# How long, past the stall limit, the stuck sockets' closes are waited for: at five frames a
# second of a small view, the buffers between gateway and client take tens of seconds to fill.
CLOSE_GRACE_SECONDS = 90.0
RSS_EVERY_SECONDS = 0.5


# The stack ---------------------------------------------------------------------------------


def _stack_env(args: argparse.Namespace) -> dict[str, str]:
    """Our own stack's settings beyond its namespace and ports."""
    env = {
        # 2,000 socket_opened lines would be load of their own; the stuck sockets' closes
        # are counted from the gateway's info lines, so with those they are written.
        "PODIUM_LOG_LEVEL": "INFO" if args.stuck else "WARNING",
    }
    if args.coalesce_ms is not None:
        env["PODIUM_COALESCE_MS"] = str(args.coalesce_ms)
    if args.stall_seconds is not None:
        env["PODIUM_SEND_STALL_SECONDS"] = str(args.stall_seconds)
    return env


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


async def _login(http, url: str) -> PlayerClient:
    player = PlayerClient(http, url)
    name = f"f{uuid.uuid4().hex[:12]}"
    await player.register(name, PASSWORD)
    await player.login(name, PASSWORD)
    return player


async def _players(http, url: str, sessions: int) -> tuple[PlayerClient, list[str]]:
    """A connected scorer, and the access tokens of `sessions` players who each scored once
    (so that the top view the sockets watch is full-sized)."""
    scorer, *owners = [await _login(http, url) for _ in range(sessions + 1)]
    for n, owner in enumerate(owners):
        await owner.connect()
        await owner.play("score", {"points": n + 1})
        await owner.close()
    await scorer.connect()
    return scorer, [owner.access_token for owner in owners]


async def _rounds(scorer: PlayerClient, rounds: int, interval: float, more=None) -> list[dict]:
    """Play once per interval, `rounds` times and then for as long as `more()` says; each
    round's send and result times and the score it set.

    A first play, not timed, warms the path: a player's first action takes far longer.
    """
    await scorer.play("score", {"points": POINTS})
    await asyncio.sleep(interval)
    played = []
    start = time.monotonic()
    while len(played) < rounds or (more is not None and more()):
        await asyncio.sleep(max(0.0, start + len(played) * interval - time.monotonic()))
        sent = time.monotonic_ns()
        result = await scorer.play("score", {"points": POINTS})
        answered = time.monotonic_ns()
        played.append({"sent_ns": sent, "result_ns": answered, "score": result["score"]})
        if result["status"] != "applied":
            raise RuntimeError(f"the scorer's action was not applied: {result}")
        if len(played) % 10 == 0:
            progress(f"round {len(played)}")
    return played


def _start_clients(url: str, tokens: list[str], args) -> list[tuple]:
    """Load-client processes sharing the sockets out; (process, connection) each."""
    opening = max(1, OPENING // args.clients)
    return [
        spawn(
            load_client,
            url,
            tokens,
            args.sockets // args.clients + (n < args.sockets % args.clients),
            opening,
            args.limit,
            args.scorer_id,
        )
        for n in range(args.clients)
    ]


async def _receive(conn, kind: str):
    message = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    if message[0] != kind:
        raise RuntimeError(f"a client process sent {message[0]!r}, not {kind!r}")
    return message[1:]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def _sample_rss(pid: int, samples: list[tuple[float, int]]) -> None:
    """(monotonic time, RSS in KiB) of the gateway every RSS_EVERY_SECONDS."""
    while True:
        samples.append((time.monotonic(), _rss_kib(pid)))
        await asyncio.sleep(RSS_EVERY_SECONDS)


async def _phase(name: str, scorer, clients: list[tuple], pids: dict, args, opened, more=None):
    """Play the rounds once and gather what every load client saw of them."""
    progress(f"rounds {name}")
    load_before = os.getloadavg()[0]
    cpu_before = {proc: _cpu_seconds(pid) for proc, pid in pids.items()}
    began = time.monotonic()
    played = await _rounds(scorer, args.rounds, args.interval, more)
    elapsed = time.monotonic() - began
    cpu = {proc: _cpu_seconds(pid) - cpu_before[proc] for proc, pid in pids.items()}
    for _, conn in clients:
        conn.send([round_["score"] for round_ in played])
    reports = [(await _receive(conn, "report"))[0] for _, conn in clients]
    return {
        "name": name,
        "began": began,
        "ended": began + elapsed,
        "figures": _figures(played, reports, opened),
        # Busy share of one core for each process while the rounds were played.
        "cpu_share": {proc: round(seconds / elapsed, 2) for proc, seconds in cpu.items()},
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }


def _closes(log: Path | None, stuck_ids: set[str], opened_at: float) -> dict | None:
    """What the gateway logged of sockets it closed: the stuck players' by code and reason,
    with seconds from the stuck sockets' opening; anyone else's by the same."""
    if log is None:
        return None
    stuck, others, after, timed_out = Counter(), Counter(), [], 0
    for line in log.read_text(errors="replace").splitlines():
        if '"socket_clos' not in line:
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        ours = entry.get("player_id") in stuck_ids
        if entry.get("event") == "socket_close_timed_out":
            timed_out += ours
        elif entry.get("event") == "socket_closing":
            (stuck if ours else others)[f"{entry['code']} {entry['reason']}"] += 1
            if ours:
                after.append(datetime.fromisoformat(entry["ts"]).timestamp() - opened_at)
    return {
        "stuck": dict(stuck),
        "stuck_closed": sum(stuck.values()),
        "stuck_seconds_after_opening": {
            "first": round(min(after), 1) if after else None,
            "last": round(max(after), 1) if after else None,
        },
        # Closes whose close frame could not be written either: the connection was dropped.
        "stuck_close_timed_out": timed_out,
        "other_sockets": dict(others),
    }


async def _all_closed(log, stuck_ids: set[str], opened_at: float, count: int, deadline: float):
    """Return once the gateway has logged closing every stuck socket, or at the deadline."""
    while log is not None and time.monotonic() < deadline:
        if _closes(log, stuck_ids, opened_at)["stuck_closed"] >= count:
            return
        await asyncio.sleep(0.5)


async def _stuck_phases(args, http, url, log, scorer, clients, pids, opened, samples) -> dict:
    """Rounds from the stuck sockets' opening until the gateway has closed them all (their
    buffers fill, the writers stall, the stall limit passes, they are closed), then rounds
    again without them."""
    stuck_players = [await _login(http, url) for _ in range(math.ceil(args.stuck / 100))]
    stuck_ids = {player.player_id for player in stuck_players}
    rss_before = samples[-1][1] if samples else None
    progress(f"opening {args.stuck} stuck sockets")
    process, conn = spawn(
        stuck_client, url, [p.access_token for p in stuck_players], args.stuck, args.limit
    )
    count, errors, seconds, opened_at = await _receive(conn, "ready")
    opened_mono = time.monotonic() - (time.time() - opened_at)
    progress(f"{count} stuck sockets open in {seconds:.1f} s {dict(errors) or ''}")

    stall = args.stall_seconds or float(
        os.environ.get("PODIUM_SEND_STALL_SECONDS", DEFAULT_STALL_SECONDS)
    )
    deadline = opened_mono + stall + CLOSE_GRACE_SECONDS
    closing = asyncio.create_task(_all_closed(log, stuck_ids, opened_at, count, deadline))
    name = f"with {count} stuck sockets"
    with_stuck = await _phase(
        name, scorer, clients, pids, args, opened, lambda: not closing.done()
    )
    await closing
    closed_mono = time.monotonic()
    closes = _closes(log, stuck_ids, opened_at)
    conn.send("report")
    (states,) = await _receive(conn, "report")
    process.join(30)
    after = await _phase("after they were closed", scorer, clients, pids, args, opened)

    during = [kib for at, kib in samples if opened_mono <= at <= closed_mono]
    return {
        "phases": [with_stuck, after],
        "stuck": {
            "opened": count,
            "open_errors": dict(errors),
            "stall_seconds": stall,
            "closes": closes,
            # Read by the stuck client once the closes were logged, before it closed them.
            "tcp_states": states,
            "rounds_seconds_after_opening": [
                round(with_stuck["began"] - opened_mono, 1),
                round(with_stuck["ended"] - opened_mono, 1),
            ],
        },
        "rss_kib": {
            "before_stuck": rss_before,
            "peak_with_stuck": max(during, default=None),
            "when_closed": during[-1] if during else None,
            "after": samples[-1][1] if samples else None,
        },
    }


async def _churn_stop(churn: tuple) -> dict:
    process, conn = churn
    conn.send("stop")
    outcomes, elapsed = await _receive(conn, "report")
    process.join(30)
    return {
        "outcomes": outcomes,
        "seconds": round(elapsed, 1),
        "applied_per_second": round(outcomes.get("applied", 0) / elapsed),
    }


async def run(args: argparse.Namespace) -> dict:
    namespace = "push" + uuid.uuid4().hex[:8]
    load_before = os.getloadavg()[0]
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / namespace
    result: dict = {}
    async with AsyncExitStack() as cleanup:
        url, stack = args.url, None
        if url is None:
            logs.mkdir(parents=True)
            cleanup.push_async_callback(remove, namespace)
            progress(f"starting the stack ({namespace}, log in {logs})")
            started = await start_stack(namespace, logs, _stack_env(args))
            url, stack = started.url, started.process
            cleanup.push_async_callback(stop_stack, stack)
        http = await cleanup.enter_async_context(aiohttp.ClientSession())

        progress(f"logging in {args.sessions + 1} players")
        scorer, tokens = await _players(http, url, args.sessions)
        cleanup.push_async_callback(scorer.close)
        args.scorer_id = scorer.player_id
        progress(f"opening {args.sockets} sockets in {args.clients} load clients")
        clients = _start_clients(url, tokens, args)
        ready = [await _receive(conn, "ready") for _, conn in clients]
        opened = sum(count for count, _, _ in ready)
        errors = dict(sum((found for _, found, _ in ready), Counter()))
        progress(f"{opened} sockets open in {max(s for _, _, s in ready):.1f} s {errors or ''}")

        pids = _service_pids(stack.pid) if stack else {}
        pids.update({f"load_client_{n}": p.pid for n, (p, _) in enumerate(clients)})
        churn = None
        if args.churn:
            progress(f"logging in players to change the board {args.churn} times a second")
            churn = spawn(churn_client, url, args.churn)
            (players,) = await _receive(churn[1], "ready")
            pids["churn_client"] = churn[0].pid
            churn[1].send("go")
            await asyncio.sleep(args.interval)
        samples: list[tuple[float, int]] = []
        if "gateway" in pids:
            sampler = asyncio.create_task(_sample_rss(pids["gateway"], samples))
            cleanup.callback(sampler.cancel)

        phases = [await _phase("without stuck sockets", scorer, clients, pids, args, opened)]
        if args.stuck:
            log = logs / "stack.log" if stack else None
            stuck = await _stuck_phases(
                args, http, url, log, scorer, clients, pids, opened, samples
            )
            phases += stuck.pop("phases")
            result |= stuck
        if churn:
            result["churn"] = {"players": players, "asked_per_second": args.churn}
            result["churn"] |= await _churn_stop(churn)
        for process, conn in clients:
            conn.send(None)
            process.join(30)

    return {
        "when": utc_now(),
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
        | {key: getattr(args, key) for key in ("coalesce_ms", "stuck", "churn", "stall_seconds")}
        | {"own_stack": args.url is None},
        "opened": opened,
        "open_errors": errors,
        "phases": [_public(phase) for phase in phases],
        "with_over_without": _ratios(phases),
        **result,
        "logs": str(logs) if stack else None,
    }


def _public(phase: dict) -> dict:
    return {key: value for key, value in phase.items() if key not in ("began", "ended")}


def _ratios(phases: list[dict]) -> dict | None:
    """The with-stuck phase's latencies over those of each phase without."""
    if len(phases) < 2:
        return None
    with_stuck = phases[1]["figures"]
    ratios = {}
    for other in (phases[0], phases[2]):
        for figure in ("send_to_last_socket", "first_to_last_socket"):
            for stat in ("p50_ms", "p99_ms"):
                over, under = with_stuck[figure][stat], other["figures"][figure][stat]
                key = f"{figure} {stat[:3]} / {other['name']}"
                ratios[key] = round(over / under, 2) if over and under else None
    return ratios


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
    lines = []
    for phase in run["phases"]:
        lines += [f"## Rounds {phase['name']}", "", *_phase_report(run, phase), ""]
    if run["with_over_without"]:
        lines += ["## With stuck sockets over without", "", "| ratio | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in run["with_over_without"].items()]
        lines += ["", *_stuck_report(run)]
    return "\n".join(lines)


def _phase_report(run: dict, phase: dict) -> list[str]:
    f, s = phase["figures"], run["settings"]
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
    shares = ", ".join(f"{name} {share:.2f}" for name, share in phase["cpu_share"].items())
    load = phase["load_average_1min"]
    return lines + [
        "",
        f"CPU, in cores busy during the rounds: {shares}",
        f"Load average (1 min) before and after: {load['before']:.2f}, {load['after']:.2f}",
    ]


def _stuck_report(run: dict) -> list[str]:
    stuck, rss, churn = run["stuck"], run["rss_kib"], run.get("churn")
    lines = [
        f"Stuck sockets: {stuck['opened']} opened {stuck['open_errors'] or ''}, stall limit"
        f" {stuck['stall_seconds']} s; their rounds ran from"
        f" {stuck['rounds_seconds_after_opening'][0]} to"
        f" {stuck['rounds_seconds_after_opening'][1]} s after they were open.",
    ]
    closes = stuck["closes"]
    if closes is not None:
        seconds = closes["stuck_seconds_after_opening"]
        lines.append(
            f"Closed by the gateway, as logged: {closes['stuck_closed']} ({closes['stuck']}),"
            f" {seconds['first']}-{seconds['last']} s after opening; close frame timed out:"
            f" {closes['stuck_close_timed_out']}; other sockets closed: {closes['other_sockets']}."
        )
    lines.append(f"The stuck connections, as the stuck client found them: {stuck['tcp_states']}.")
    if rss["before_stuck"] is not None:
        mib = {key: round(value / 1024, 1) for key, value in rss.items() if value is not None}
        lines.append(
            f"Gateway RSS (MiB): before {mib.get('before_stuck')}, peak while stuck"
            f" {mib.get('peak_with_stuck')}, when all were closed {mib.get('when_closed')},"
            f" at the end {mib.get('after')}."
        )
    if churn:
        lines.append(
            f"Churn: {churn['players']} players asked for {churn['asked_per_second']}/s, played"
            f" {churn['applied_per_second']}/s applied over {churn['seconds']} s"
            f" ({churn['outcomes']})."
        )
    return lines


def _arguments(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument(
        "--stuck", type=int, default=0, help="also run the rounds beside this many stuck sockets"
    )
    parser.add_argument(
        "--churn", type=float, default=0, help="extra board changes a second, all through"
    )
    parser.add_argument(
        "--stall-seconds", type=float, help="the gateway's stall limit for our own stack"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sockets, args.rounds = 500, 10
    return args


async def measure(options: dict) -> dict:
    """The default run, or --quick's when options["quick"], for bench/run.py."""
    return await run(_arguments(["--quick"] if options.get("quick") else []))


def main() -> None:
    result = uvloop.run(run(_arguments()))
    save("push_fanout", result, _report(result))


if __name__ == "__main__":
    main()
