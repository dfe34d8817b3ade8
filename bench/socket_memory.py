"""The gateway's memory per idle subscribed socket, beside a bare aiohttp WebSocket server's.

The issue's figure: at most 50 KiB of gateway resident memory per idle socket subscribed to one
view, with 10,000 sockets. The sockets share the sessions of a few players who each scored
once, so the view they watch (the top 10 of `global`) is full-sized; they are opened by several
load-client processes, about 50 upgrades in flight at a time, and then left idle (the clients
keep reading, so the gateway's pings are answered).

The gateway's memory is read from /proc (VmRSS; PSS and USS from smaps_rollup) before the
sockets, once 1,000 are open and once all are, each time after it has stopped changing. Per
socket is the growth over the count; the growth from 1,000 to all is the slope, without the
costs paid once. The kernel's side is not in RSS and is read apart: the sockets' buffers by
end (`ss -tm`) and the machine's TCP memory and slab (both ends, and anyone else's sockets).

The raw limit, in the same run and from the same client processes: a bare aiohttp server (its
own process, uvloop, the gateway's heartbeat and send buffer) that answers the upgrade, the
welcome wait and the subscribe, and holds the sockets. Its per-socket memory is the floor.

It starts its own stack (`python -m devstack up`, a namespace, database and ports of its own,
removed afterwards).

    .venv/bin/python bench/socket_memory.py [--quick] [--sockets 10000]
"""

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import orjson
import uvloop
from aiohttp import WSMsgType, web
from harness import progress, save, spawn, utc_now
from machine import describe
from push_clients import failure, subscribe_frame
from push_fanout import _players, _service_pids
from stack import remove, start_stack, stop_stack

from gateway.config import GatewaySettings

TARGET_KIB = 50
DEFAULT_SOCKETS = 10_000
QUICK_SOCKETS = 1_000
# Where the slope starts: the growth past this many sockets leaves out costs paid once.
SLOPE_FROM = 1_000
CLIENTS = 4
# Players whose sessions the sockets share; each scores once, so the top 10 has 10 entries.
SESSIONS = 10
LIMIT = 10
# Upgrades in flight over all clients: auth's Redis pool refuses past 100 calls at once.
OPENING = 48
ATTEMPTS = 3
# Memory counts as settled when two readings a second apart differ by less than this.
STEADY_KIB = 256
SETTLE_SECONDS = {False: 5.0, True: 2.0}
SETTLE_MAX_SECONDS = 20.0
# File descriptors the gateway needs beyond its sockets (stores, gRPC channels, logs).
SPARE_FDS = 500
KERNEL_KINDS = (
    "server_end_buffers_kib",
    "client_end_buffers_kib",
    "machine_tcp_mem_kib",
    "machine_slab_kib",
)


# Readings ----------------------------------------------------------------------------------


def _fields(path: str) -> dict[str, int]:
    """`Name:   123 kB` lines of a /proc file, as numbers."""
    values = {}
    for line in Path(path).read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0])
    return values


def process_memory(pid: int) -> dict[str, int]:
    """A process's resident (RSS), proportional (PSS) and unique (USS) memory, in KiB."""
    status = _fields(f"/proc/{pid}/status")
    rollup = _fields(f"/proc/{pid}/smaps_rollup")
    return {
        "rss_kib": status["VmRSS"],
        "pss_kib": rollup["Pss"],
        "uss_kib": rollup["Private_Clean"] + rollup["Private_Dirty"],
    }


def kernel_memory(port: int) -> dict[str, int]:
    """The kernel's side: the buffers of connections to `port` by end (receive + queued to
    send + reserved, from `ss -tm`), and the machine's TCP memory and slab, in KiB."""
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    tcp = Path("/proc/net/sockstat").read_text().split("TCP:", 1)[1].split("\n", 1)[0].split()
    tcp = dict(zip(tcp[::2], map(int, tcp[1::2]), strict=True))
    return {
        "server_end_buffers_kib": _buffers(f"sport = :{port}"),
        "client_end_buffers_kib": _buffers(f"dport = :{port}"),
        "machine_tcp_sockets": tcp["inuse"],
        "machine_tcp_mem_kib": tcp["mem"] * page_kib,
        "machine_slab_kib": _fields("/proc/meminfo")["Slab"],
    }


def _buffers(where: str) -> int:
    listing = subprocess.run(
        ["ss", "-tmnH", "state", "established", where], capture_output=True, text=True, check=True
    ).stdout
    total = 0
    for line in listing.splitlines():
        if "skmem:(" not in line:
            continue
        skmem = line.split("skmem:(", 1)[1].split(")", 1)[0].split(",")
        values = {
            item.rstrip("0123456789"): int(item.lstrip("abcdefghijklmnopqrstuvwxyz"))
            for item in skmem
        }
        total += values["r"] + values["w"] + values["f"]
    return total // 1024


async def settled(pid: int, quick: bool) -> dict[str, int]:
    """The process's memory once it has stopped changing (or SETTLE_MAX_SECONDS passed)."""
    await asyncio.sleep(SETTLE_SECONDS[quick])
    deadline = time.monotonic() + SETTLE_MAX_SECONDS
    last = process_memory(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = process_memory(pid)
        if abs(now["rss_kib"] - last["rss_kib"]) < STEADY_KIB:
            return now
        last = now
    return last


# The bare server ---------------------------------------------------------------------------


def bare_server(heartbeat: float, send_buffer: int, conn) -> None:
    """The bare-server process: hold WebSockets until told to stop."""
    uvloop.run(_serve_bare(heartbeat, send_buffer, conn))


async def _serve_bare(heartbeat: float, send_buffer: int, conn) -> None:
    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=heartbeat)
        await ws.prepare(request)
        sock = request.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        await ws.send_str('{"type":"welcome"}')
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                frame_id = orjson.loads(message.data).get("id")
                answer = {"type": "board", "id": frame_id, "seq": 0, "entries": []}
                await ws.send_str(orjson.dumps(answer).decode())
        return ws

    app = web.Application()
    app.router.add_get("/v1/ws", websocket)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    conn.send(("ready", runner.addresses[0][1]))
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await runner.cleanup()


# The load clients --------------------------------------------------------------------------


class Idle:
    """One subscribed socket that only reads: what arrives after the answer is counted."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames = 0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for _ in self.ws:
            self.frames += 1


async def _subscribed(http, url: str, token: str, gate) -> Idle:
    """Upgrade, wait for the welcome, subscribe, wait for the answer."""
    async with gate:
        ws = await http.ws_connect(url + "/v1/ws", headers={"Authorization": f"Bearer {token}"})
        await ws.receive()
        await ws.send_str(subscribe_frame(LIMIT).decode())
        answer = orjson.loads((await ws.receive()).data)
        if answer.get("id") != 1:
            raise RuntimeError(f"expected the subscribe's answer: {answer}")
        return Idle(ws)


async def _open_idle(http, url: str, token: str, gate, retried: Counter) -> Idle:
    """A subscribed socket; a refused upgrade is tried again a moment later, up to ATTEMPTS
    times in all."""
    for attempt in range(1, ATTEMPTS):
        try:
            return await _subscribed(http, url, token, gate)
        except aiohttp.WSServerHandshakeError as error:
            retried[failure(error)] += 1
            await asyncio.sleep(0.5 * attempt)
    return await _subscribed(http, url, token, gate)


def holder(conn) -> None:
    """A load-client process: on ("open", url, tokens, count, opening) open that many idle
    sockets more; on "close" close them all; None ends it."""
    uvloop.run(_hold(conn))


async def _hold(conn) -> None:
    loop = asyncio.get_running_loop()
    held: list[Idle] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        while (order := await loop.run_in_executor(None, conn.recv)) is not None:
            if order == "close":
                frames, closed = _counts(held)
                await asyncio.gather(*(idle.ws.close() for idle in held))
                held = []
                conn.send(("closed", frames, closed))
                continue
            _, url, tokens, count, opening = order
            started, gate, retried = time.monotonic(), asyncio.Semaphore(opening), Counter()
            opened = await asyncio.gather(
                *(
                    _open_idle(http, url, tokens[n % len(tokens)], gate, retried)
                    for n in range(count)
                ),
                return_exceptions=True,
            )
            held += [idle for idle in opened if isinstance(idle, Idle)]
            errors = Counter(failure(e) for e in opened if not isinstance(e, Idle))
            conn.send(
                (
                    "opened",
                    count - sum(errors.values()),
                    errors,
                    retried,
                    time.monotonic() - started,
                )
            )
        await asyncio.gather(*(idle.ws.close() for idle in held))


def _counts(held: list[Idle]) -> tuple[int, int]:
    """Frames the sockets got after their subscribe's answer, and sockets the server closed."""
    return sum(idle.frames for idle in held), sum(idle.ws.closed for idle in held)


async def _receive(conn, kind: str):
    message = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    if message[0] != kind:
        raise RuntimeError(f"a child process sent {message[0]!r}, not {kind!r}")
    return message[1:]


async def _stop(child: tuple) -> None:
    process, conn = child
    if process.is_alive():
        conn.send(None)
        await asyncio.get_running_loop().run_in_executor(None, process.join, 60)
    if process.is_alive():
        process.kill()


# The run -----------------------------------------------------------------------------------


async def _open(clients: list[tuple], url: str, tokens: list[str], count: int) -> dict:
    """Spread `count` more sockets over the clients; what opened, failed and was retried."""
    opening = max(1, OPENING // len(clients))
    for n, (_, conn) in enumerate(clients):
        share = count // len(clients) + (n < count % len(clients))
        conn.send(("open", url, tokens, share, opening))
    replies = [await _receive(conn, "opened") for _, conn in clients]
    return {
        "opened": sum(reply[0] for reply in replies),
        "errors": dict(sum((Counter(reply[1]) for reply in replies), Counter())),
        "retried": dict(sum((Counter(reply[2]) for reply in replies), Counter())),
        "seconds": round(max(reply[3] for reply in replies), 1),
    }


async def _close(clients: list[tuple]) -> dict:
    for _, conn in clients:
        conn.send("close")
    replies = [await _receive(conn, "closed") for _, conn in clients]
    return {
        "frames_while_idle": sum(frames for frames, _ in replies),
        "closed_by_server": sum(closed for _, closed in replies),
    }


async def _server(name: str, pid: int, url: str, clients, tokens, steps, quick) -> dict:
    """Open the sockets step by step on one server, reading its memory before and at each
    step; then close them."""
    port = int(url.rsplit(":", 1)[1])
    progress(f"{name}: memory before the sockets")
    readings = [
        {"sockets": 0, **await settled(pid, quick), "kernel": kernel_memory(port), "open": None}
    ]
    for step in steps:
        progress(f"{name}: opening sockets up to {step:,}")
        opened = await _open(clients, url, tokens, step - readings[-1]["sockets"])
        total = readings[-1]["sockets"] + opened["opened"]
        progress(f"{name}: {total:,} open ({opened['seconds']} s); letting memory settle")
        reading = await settled(pid, quick)
        readings.append(
            {"sockets": total, **reading, "kernel": kernel_memory(port), "open": opened}
        )
        progress(f"{name}: RSS {reading['rss_kib'] / 1024:.1f} MiB with {total:,} sockets")
    idle = await _close(clients)
    return {"readings": readings, **idle, "per_socket": _per_socket(readings)}


def _per_socket(readings: list[dict]) -> dict:
    """KiB per socket: from none to each step, and the slope between the last two steps."""

    def growth(kind: str, before: dict, after: dict) -> float | None:
        sockets = after["sockets"] - before["sockets"]
        if kind in KERNEL_KINDS:
            change = after["kernel"][kind] - before["kernel"][kind]
        else:
            change = after[kind] - before[kind]
        return round(change / sockets, 2) if sockets else None

    kinds = ("rss_kib", "pss_kib", "uss_kib", *KERNEL_KINDS)
    figures = {
        f"at_{reading['sockets']}": {kind: growth(kind, readings[0], reading) for kind in kinds}
        for reading in readings[1:]
    }
    if len(readings) > 2:
        figures["slope"] = {kind: growth(kind, readings[-2], readings[-1]) for kind in kinds}
    return figures


async def measure(options: dict) -> dict:
    """Gateway and bare server, each holding the same idle sockets from the same clients.

    options: sockets (default 10,000), quick (1,000 sockets).
    """
    quick = bool(options.get("quick"))
    sockets = QUICK_SOCKETS if quick else int(options.get("sockets", DEFAULT_SOCKETS))
    if sockets < 1:
        raise ValueError(f"sockets must be at least 1, not {sockets}")
    fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if sockets + SPARE_FDS > fds:
        raise ValueError(
            f"{sockets:,} sockets need about {sockets + SPARE_FDS:,} open files in the gateway;"
            f" the limit here is {fds:,} (ulimit -n)"
        )
    steps = sorted({min(SLOPE_FROM, sockets), sockets})
    settings = GatewaySettings()
    namespace = "mem" + uuid.uuid4().hex[:8]
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / namespace
    logs.mkdir(parents=True)
    async with AsyncExitStack() as cleanup:
        cleanup.push_async_callback(remove, namespace)
        progress(f"starting the stack ({namespace}, log in {logs})")
        stack = await start_stack(namespace, logs, {"PODIUM_LOG_LEVEL": "WARNING"})
        cleanup.push_async_callback(stop_stack, stack.process)
        gateway = _service_pids(stack.process.pid)["gateway"]
        http = await cleanup.enter_async_context(aiohttp.ClientSession())

        progress(f"logging in {SESSIONS + 1} players")
        scorer, tokens = await _players(http, stack.url, SESSIONS)
        cleanup.push_async_callback(scorer.close)

        bare = spawn(bare_server, settings.heartbeat_seconds, settings.socket_send_buffer_bytes)
        cleanup.push_async_callback(_stop, bare)
        (bare_port,) = await _receive(bare[1], "ready")
        clients = [spawn(holder) for _ in range(CLIENTS)]
        for client in clients:
            cleanup.push_async_callback(_stop, client)

        servers = {
            "gateway": await _server("gateway", gateway, stack.url, clients, tokens, steps, quick),
            "bare": await _server(
                "bare aiohttp",
                bare[0].pid,
                f"http://127.0.0.1:{bare_port}",
                clients,
                tokens,
                steps,
                quick,
            ),
        }

    last = f"at_{servers['gateway']['readings'][-1]['sockets']}"
    gateway_rss = servers["gateway"]["per_socket"][last]["rss_kib"]
    bare_rss = (
        servers["bare"]["per_socket"]
        .get(f"at_{servers['bare']['readings'][-1]['sockets']}", {})
        .get("rss_kib")
    )
    ratio = round(gateway_rss / bare_rss, 2) if gateway_rss and bare_rss else None
    return {
        "settings": {
            "sockets": sockets,
            "steps": steps,
            "clients": CLIENTS,
            "sessions": SESSIONS,
            "view": f"top {LIMIT} of global",
            "heartbeat_seconds": settings.heartbeat_seconds,
            "socket_send_buffer_bytes": settings.socket_send_buffer_bytes,
        },
        **servers,
        "target_kib": TARGET_KIB,
        "gateway_rss_kib_per_socket": gateway_rss,
        "within_target": gateway_rss is not None and gateway_rss <= TARGET_KIB,
        "gateway_over_bare": ratio,
        "logs": str(logs),
    }


# The report --------------------------------------------------------------------------------


def report(figures: dict) -> str:
    """The Markdown table of a run."""
    gateway, bare = figures["gateway"], figures["bare"]
    count = gateway["readings"][-1]["sockets"]
    rows = [(f"RSS per socket, {count:,} sockets", f"at_{count}", "rss_kib")]
    rows += [
        (f"USS per socket, {count:,} sockets", f"at_{count}", "uss_kib"),
        (f"PSS per socket, {count:,} sockets", f"at_{count}", "pss_kib"),
    ]
    if "slope" in gateway["per_socket"]:
        first = gateway["readings"][1]["sockets"]
        rows += [
            (f"RSS per socket, {first:,} sockets", f"at_{first}", "rss_kib"),
            (f"RSS slope, {first:,} -> {count:,}", "slope", "rss_kib"),
        ]
    rows += [
        (
            f"kernel buffers per socket, server end, {count:,}",
            f"at_{count}",
            "server_end_buffers_kib",
        ),
        (
            f"machine TCP memory per socket (both ends), {count:,}",
            f"at_{count}",
            "machine_tcp_mem_kib",
        ),
        (f"machine slab per socket (both ends), {count:,}", f"at_{count}", "machine_slab_kib"),
    ]
    lines = ["| KiB | gateway | bare aiohttp | gateway / bare |", "|---|---|---|---|"]
    for name, at, kind in rows:
        ours = gateway["per_socket"].get(at, {}).get(kind)
        floor = _matching(bare, gateway, at).get(kind)
        ratio = f"{ours / floor:.1f}x" if ours and floor and floor > 0 else ""
        lines.append(f"| {name} | {_kib(ours)} | {_kib(floor)} | {ratio} |")

    lines += [
        "",
        "| process | RSS before | RSS with all sockets | sockets | opened in |",
        "|---|---|---|---|---|",
    ]
    for name, server in (("gateway", gateway), ("bare aiohttp", bare)):
        first, last = server["readings"][0], server["readings"][-1]
        seconds = sum(r["open"]["seconds"] for r in server["readings"][1:])
        lines.append(
            f"| {name} | {first['rss_kib'] / 1024:.1f} MiB | {last['rss_kib'] / 1024:.1f} MiB"
            f" | {last['sockets']:,} | {seconds:.0f} s |"
        )
    verdict = "within" if figures["within_target"] else "over"
    lines += [
        "",
        f"Target: {figures['target_kib']} KiB of gateway RSS per socket: {verdict}"
        f" ({_kib(figures['gateway_rss_kib_per_socket'])} KiB;"
        f" {figures['gateway_over_bare']}x the bare server).",
        f"Open errors: gateway {_errors(gateway)}, bare {_errors(bare)}. Frames after the"
        f" subscribe's answer while idle: gateway {gateway['frames_while_idle']}, bare"
        f" {bare['frames_while_idle']}; sockets the server closed: gateway"
        f" {gateway['closed_by_server']}, bare {bare['closed_by_server']}.",
    ]
    return "\n".join(lines)


def _matching(bare: dict, gateway: dict, at: str) -> dict:
    """The bare server's figures at the step matching the gateway's (counts may differ by the
    sockets that failed to open)."""
    if at == "slope":
        return bare["per_socket"].get("slope", {})
    step = [r["sockets"] for r in gateway["readings"]].index(int(at[3:]))
    return bare["per_socket"].get(f"at_{bare['readings'][step]['sockets']}", {})


def _kib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _errors(server: dict) -> str:
    errors, retried = Counter(), Counter()
    for reading in server["readings"][1:]:
        errors.update(reading["open"]["errors"])
        retried.update(reading["open"]["retried"])
    return f"{dict(errors) or 'none'} (retried: {dict(retried) or 'none'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 sockets, under 40 s")
    parser.add_argument("--sockets", type=int, default=DEFAULT_SOCKETS, help="idle sockets")
    args = parser.parse_args()

    machine = uvloop.run(describe())
    try:
        figures = uvloop.run(measure({"quick": args.quick, "sockets": args.sockets}))
    except ValueError as error:
        parser.error(str(error))
    result = {
        "when": utc_now(),
        "machine": machine | {"load_average_after": list(os.getloadavg())},
        **figures,
    }
    save("socket_memory", result, report(figures))


if __name__ == "__main__":
    main()
