"""The processes bench/push_fanout.py runs beside the stack: load clients whose sockets read
every board frame, a stuck client whose sockets never read, and a churn client whose players
keep the board changing. Each runs in a process of its own and talks to the bench over a pipe.
"""

import asyncio
import base64
import math
import os
import socket
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import aiohttp
import orjson
import uvloop

from devstack.client import PlayerClient

# How long the load clients wait, after the last round, for frames still on their way.
SETTLE_SECONDS = 10.0
# A stuck socket's receive buffer: tiny, so that what the gateway writes backs up at once.
STUCK_RECEIVE_BUFFER = 4096
# Upgrades the stuck client has in flight at once.
STUCK_OPENING = 8
# Actions a second each churn player asks for: well under the gateway's default 20 per player,
# since each waits for its result (200 ms and more under load) before the next.
CHURN_PER_PLAYER = 5.0
CHURN_PASSWORD = "churn-password-123"


def _score_of(frame: dict, player_id: str) -> int | None:
    for entry in frame["entries"]:
        if entry["player_id"] == player_id:
            return entry["score"]
    return None


def subscribe_frame(limit: int) -> bytes:
    """What every socket of the bench, reading or stuck, asks to watch."""
    frame = {"type": "subscribe", "id": 1, "board": "global", "view": "top", "limit": limit}
    return orjson.dumps(frame)


def failure(error: BaseException) -> str:
    if isinstance(error, aiohttp.WSServerHandshakeError):
        return f"upgrade answered {error.status}"
    return f"{type(error).__name__}: {str(error)[:100]}"


# Load clients: sockets that read -----------------------------------------------------------


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
        """When each target score first showed in an update (later ones count: coalescing).

        The scorer's score only grows, so frames of earlier phases never match a later one.
        """
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


async def _open(http, url: str, token: str, limit: int, scorer: str, gate) -> Watcher:
    """A socket subscribed to global's top, its answer recorded and its reader started."""
    async with gate:
        ws = await http.ws_connect(url + "/v1/ws", headers={"Authorization": f"Bearer {token}"})
        watcher = Watcher(ws)
        welcome = orjson.loads((await ws.receive()).data)
        if welcome["type"] != "welcome":
            raise RuntimeError(f"expected a welcome: {welcome}")
        await ws.send_str(subscribe_frame(limit).decode())
        answer = orjson.loads((await ws.receive()).data)
        if answer.get("id") != 1:
            raise RuntimeError(f"expected the subscribe's answer: {answer}")
    watcher.frames.append((time.monotonic_ns(), answer["seq"], _score_of(answer, scorer)))
    watcher.reader = asyncio.create_task(watcher.read(scorer))
    return watcher


def load_client(url: str, tokens: list[str], count: int, opening: int, limit, scorer, conn):
    """A load-client process: open `count` sockets, report ready, then, for each list of
    target scores it is sent, report what arrived; None ends it."""
    uvloop.run(_serve_load(url, tokens, count, opening, limit, scorer, conn))


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
        errors = Counter(failure(e) for e in opened if not isinstance(e, Watcher))
        conn.send(("ready", len(watchers), errors, time.monotonic() - started))

        counted = sum(len(w.frames) for w in watchers)
        while (targets := await loop.run_in_executor(None, conn.recv)) is not None:
            deadline = time.monotonic() + SETTLE_SECONDS
            while time.monotonic() < deadline and not all(
                w.arrivals(targets[-1:])[0] for w in watchers
            ):
                await asyncio.sleep(0.1)
            summary = _summary(watchers, targets)
            summary["frames"], counted = summary["frames"] - counted, summary["frames"]
            conn.send(("report", summary))

        for watcher in watchers:
            await watcher.ws.close()
            await watcher.reader


def _summary(watchers: list[Watcher], targets: list[int]) -> dict:
    """Per round, the first and last socket's arrival; per socket, what it got."""
    arrivals = [w.arrivals(targets) for w in watchers]
    # Each socket's scores seen, as a set: a long run's frames times its rounds is too many.
    seen = [{f[2] for f in w.frames} for w in watchers]
    rounds = []
    for n, target in enumerate(targets):
        got = [found[n] for found in arrivals if found[n] is not None]
        rounds.append(
            {
                "first_ns": min(got, default=None),
                "last_ns": max(got, default=None),
                "reached": len(got),
                "own_frame": sum(target in scores for scores in seen),
            }
        )
    return {
        "rounds": rounds,
        "every_round": sum(None not in found for found in arrivals),
        "every_round_own_frame": sum(scores >= set(targets) for scores in seen),
        "went_backwards": sum(w.went_backwards for w in watchers),
        "closed_early": sum(w.ws.closed for w in watchers),
        "frames": sum(len(w.frames) for w in watchers),
    }


# The stuck client: sockets that never read -------------------------------------------------


def _masked(payload: bytes) -> bytes:
    """A client's text frame; clients must mask what they send."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes([0x81, 0x80 | size])
    else:
        head = bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
    return head + mask + bytes(byte ^ mask[n % 4] for n, byte in enumerate(payload))


def _open_stuck(url: str, token: str, limit: int) -> socket.socket:
    """Upgrade a plain socket, subscribe, and leave everything the gateway sends unread."""
    address = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STUCK_RECEIVE_BUFFER)
    sock.settimeout(30)
    sock.connect((address.hostname, address.port))
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (
        f"GET /v1/ws HTTP/1.1\r\nHost: {address.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    sock.sendall(upgrade.encode())

    # Byte by byte, so that nothing past the answer's head is taken off the socket.
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError("the gateway closed the upgrade")
        head += byte
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    sock.sendall(_masked(subscribe_frame(limit)))
    return sock


# Linux's TCP states (tcpi_state) that tell how the gateway left a connection.
TCP_STATES = {1: "established", 7: "reset", 8: "ended (FIN)"}


def _state(sock: socket.socket) -> str:
    """How the gateway has left a connection, read without taking anything off it: still
    open, ended after sending all it had (FIN), or dropped (reset)."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return TCP_STATES.get(state, f"tcp state {state}")


def stuck_client(url: str, tokens: list[str], count: int, limit: int, conn) -> None:
    """The stuck-client process: open `count` sockets that never read and report ready
    (with the wall-clock time they were all open); when told, report how the gateway had
    left the connections, and close them."""
    started = time.monotonic()
    with ThreadPoolExecutor(STUCK_OPENING) as pool:
        futures = [
            pool.submit(_open_stuck, url, tokens[n % len(tokens)], limit) for n in range(count)
        ]
    socks, errors = [], Counter()
    for future in futures:
        if future.exception() is None:
            socks.append(future.result())
        else:
            errors[failure(future.exception())] += 1
    conn.send(("ready", len(socks), errors, time.monotonic() - started, time.time()))

    conn.recv()
    states = Counter(_state(sock) for sock in socks)
    for sock in socks:
        sock.close()
    conn.send(("report", dict(states)))


# The churn client: players who keep the board changing -------------------------------------


def churn_client(url: str, rate: float, conn) -> None:
    """The churn process: log in players enough for `rate` actions a second, report ready,
    play one point at a time at that rate until told to stop, then report what was played."""
    uvloop.run(_churn(url, rate, conn))


async def _churn(url: str, rate: float, conn) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        players = await asyncio.gather(
            *(_churn_player(http, url) for _ in range(math.ceil(rate / CHURN_PER_PLAYER)))
        )
        conn.send(("ready", len(players)))

        await loop.run_in_executor(None, conn.recv)
        stop = asyncio.Event()
        every = len(players) / rate
        playing = [
            asyncio.create_task(_play_paced(player, every, n * every / len(players), stop))
            for n, player in enumerate(players)
        ]
        started = time.monotonic()
        await loop.run_in_executor(None, conn.recv)
        stop.set()
        outcomes = Counter()
        for done in await asyncio.gather(*playing):
            outcomes.update(done)
        elapsed = time.monotonic() - started
        for player in players:
            await player.close()
    conn.send(("report", dict(outcomes), elapsed))


async def _churn_player(http, url: str) -> PlayerClient:
    player = PlayerClient(http, url)
    name = f"c{uuid.uuid4().hex[:12]}"
    await player.register(name, CHURN_PASSWORD)
    await player.login(name, CHURN_PASSWORD)
    await player.connect()
    return player


async def _play_paced(player: PlayerClient, every: float, offset: float, stop) -> Counter:
    """Score a point every `every` seconds (behind schedule: at once) until `stop`; counts of
    applied actions and of refusals by code."""
    outcomes = Counter()
    start = time.monotonic() + offset
    n = 0
    while not stop.is_set():
        await asyncio.sleep(max(0.0, start + n * every - time.monotonic()))
        n += 1
        answer = await player.answer(await player.act("score", {"points": 1}), timeout=30)
        if answer["type"] == "result":
            outcomes[answer["status"]] += 1
        else:
            outcomes[answer["error"]["code"]] += 1
    return outcomes
