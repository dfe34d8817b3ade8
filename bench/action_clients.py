"""The load-client processes of bench/game_throughput.py: players on WebSockets who play
chains of `score` actions, either closed-loop (a window of actions in flight per player, to
find the maximum rate) or open-loop (actions sent on a schedule at a given rate whatever the
results do, to time action -> result at a fraction of that rate).

Each process talks to the bench over a pipe. Times are CLOCK_MONOTONIC (time.monotonic),
which Linux shares between processes, so that the bench can start every process's schedule
at the same moment.
"""

import asyncio
import contextlib
import time
import uuid
from collections import Counter

import aiohttp
import orjson
import uvloop

from game.rules import load_ruleset
from game.state import state_hash

# Upgrades in flight at once in one process.
OPENING = 20
# How long, past the last send, results still on their way are waited for.
SETTLE_SECONDS = 30.0
# How often the open-loop sender wakes to send what has fallen due.
TICK_SECONDS = 0.002


class Chain:
    """The actions every player plays in order, and the hash each one quotes: the state the
    links before it leave. Every player starts from the initial state, so one chain serves
    all; it grows as far as it is asked for."""

    def __init__(self) -> None:
        self._ruleset = load_ruleset("default")
        self._state = self._ruleset.initial_state()
        self.params: list[dict] = []
        self.hashes: list[str] = []

    def link(self, n: int) -> tuple[dict, str]:
        while len(self.hashes) <= n:
            params = {"points": 1 + len(self.params) % 100}
            self.hashes.append(state_hash(self._state))
            self.params.append(params)
            self._state = self._ruleset.apply(self._state, "score", params).state
        return self.params[n], self.hashes[n]


class Phase:
    """What one run of the load saw: latencies of the actions sent from `count_from` on,
    outcomes by status or error code, and when results came."""

    def __init__(self, expected: int, count_from: float, count_until: float) -> None:
        self.expected = expected
        self.count_from = count_from
        self.count_until = count_until
        self.latencies: list[float] = []
        self.outcomes: Counter = Counter()
        self.answered = 0
        # Results arriving between count_from and count_until: the rate achieved.
        self.in_window = 0
        self.first_sent: float | None = None
        self.last_answer: float | None = None
        self.done = asyncio.Event()

    def answer(self, sent: float, outcome: str) -> None:
        now = time.monotonic()
        self.outcomes[outcome] += 1
        if sent >= self.count_from:
            self.latencies.append(round((now - sent) * 1000, 3))
        if self.count_from <= now <= self.count_until:
            self.in_window += 1
        self.last_answer = now
        self.answered += 1
        if self.answered >= self.expected:
            self.done.set()

    def report(self, lags: list[float]) -> dict:
        return {
            "latencies_ms": self.latencies,
            "outcomes": dict(self.outcomes),
            "answered": self.answered,
            "expected": self.expected,
            "in_window": self.in_window,
            "first_sent": self.first_sent,
            "last_answer": self.last_answer,
            "send_lag_ms": lags,
        }


class Player:
    """One player's socket: where its chain is, what it has in flight, and its reader."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, chain: Chain) -> None:
        self.ws = ws
        self.chain = chain
        self.next = 0
        # action id -> the time the action was due (open loop) or sent (closed loop)
        self.sent_at: dict[str, float] = {}
        # frame id -> action id, to match an error frame to its action
        self.ids: dict[int, str] = {}
        self.phase: Phase | None = None
        self.slots: asyncio.Semaphore | None = None
        self.reader = asyncio.create_task(self._read())

    async def send(self, due: float) -> None:
        n = self.next
        self.next += 1
        params, quoted = self.chain.link(n)
        action_id = str(uuid.uuid4())
        self.sent_at[action_id] = due
        self.ids[n] = action_id
        frame = {
            "type": "action",
            "id": n,
            "action_id": action_id,
            "action": "score",
            "params": params,
            "state_hash": quoted,
        }
        await self.ws.send_str(orjson.dumps(frame).decode())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = orjson.loads(message.data)
            kind = frame.get("type")
            if kind == "result":
                action_id, outcome = frame["action_id"], frame["status"]
            elif kind == "error" and frame.get("id") in self.ids:
                action_id, outcome = self.ids[frame["id"]], frame["error"]["code"]
            else:
                continue
            sent = self.sent_at.pop(action_id, None)
            if sent is None or self.phase is None:
                continue
            self.phase.answer(sent, outcome)
            if self.slots is not None:
                self.slots.release()


async def _open(http, url: str, token: str, chain: Chain, gate) -> Player:
    async with gate:
        headers = {"Authorization": f"Bearer {token}"}
        ws = await http.ws_connect(url + "/v1/ws", headers=headers)
        welcome = orjson.loads((await ws.receive()).data)
        if welcome["type"] != "welcome":
            raise RuntimeError(f"expected a welcome: {welcome}")
    return Player(ws, chain)


async def _closed(players: list[Player], per_player: int, window: int) -> dict:
    """Every player sends `per_player` actions, at most `window` unanswered at once."""
    phase = Phase(len(players) * per_player, 0.0, float("inf"))
    phase.first_sent = time.monotonic()

    async def play(player: Player) -> None:
        player.phase, player.slots = phase, asyncio.Semaphore(window)
        for _ in range(per_player):
            await player.slots.acquire()
            await player.send(time.monotonic())

    await asyncio.gather(*(play(player) for player in players))
    await _settle(phase)
    for player in players:
        player.slots = None
    return phase.report([])


async def _open_loop(players: list[Player], rate: float, start: float, seconds, warmup) -> dict:
    """Send `rate` actions a second from `start` for `seconds`, round the players, each due
    at its own moment of the schedule whatever has been answered; latencies count from the
    moment due, so a late send is the system's delay too, and only actions due after
    `warmup` seconds count."""
    total = round(rate * seconds)
    phase = Phase(total, start + warmup, start + seconds)
    phase.first_sent = start
    for player in players:
        player.phase = phase
    lags = []
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    sent = 0
    while sent < total:
        due_now = min(total, int((time.monotonic() - start) * rate) + 1)
        while sent < due_now:
            due = start + sent / rate
            await players[sent % len(players)].send(due)
            lags.append(round((time.monotonic() - due) * 1000, 3))
            sent += 1
        await asyncio.sleep(TICK_SECONDS)
    await _settle(phase)
    return phase.report(lags)


async def _settle(phase: Phase) -> None:
    """Wait for the phase's last results; those still missing then are counted as lost."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(phase.done.wait(), SETTLE_SECONDS)


def action_client(url: str, tokens: list[str], conn) -> None:
    """A load-client process: open a socket per token, report ready, then run each order it
    is sent ("closed", per_player, window) or ("open", rate, start, seconds, warmup) and
    report what it saw; None ends it."""
    uvloop.run(_serve(url, tokens, conn))


async def _serve(url: str, tokens: list[str], conn) -> None:
    loop = asyncio.get_running_loop()
    chain = Chain()
    gate = asyncio.Semaphore(OPENING)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        players = await asyncio.gather(*(_open(http, url, t, chain, gate) for t in tokens))
        conn.send(("ready", len(players)))

        while (order := await loop.run_in_executor(None, conn.recv)) is not None:
            if order[0] == "closed":
                report = await _closed(players, *order[1:])
            else:
                report = await _open_loop(players, *order[1:])
            conn.send(("report", report))

        for player in players:
            await player.ws.close()
            await player.reader
