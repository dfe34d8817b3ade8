"""A bot that plays Podium like real players: python -m devstack.bot --players 20.

It registers players over REST, opens their WebSockets, plays `score` actions with the hashes
it is given, watches the live top 10 of `global`, and ends with a summary of what happened to
every action it sent.
"""

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import uvloop

from devstack.client import PlayerClient

PASSWORD = "bot-password-123"
RESULT_TIMEOUT_SECONDS = 10.0
RATE_LIMITED = "ACTION_RATE_LIMITED"


@dataclass
class Tally:
    sent: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def play(player: PlayerClient, actions: int, pause: float, tally: Tally) -> None:
    """Send actions one after another, each quoting the last hash the server gave."""
    for _ in range(actions):
        started = time.perf_counter()
        params = {"points": random.randint(1, 100)}
        action_id = await player.act("score", params)
        tally.sent += 1
        try:
            answer = await player.answer(action_id, RESULT_TIMEOUT_SECONDS)
            while answer["type"] == "error" and answer["error"]["code"] == RATE_LIMITED:
                # Over the gateway's allowance: wait as told and send the same action again.
                tally.count("rate_limited_retries")
                await asyncio.sleep(answer["error"]["retry_after_ms"] / 1000)
                await player.act("score", params, action_id=action_id)
                answer = await player.answer(action_id, RESULT_TIMEOUT_SECONDS)
        except TimeoutError:
            tally.missing += 1
            continue
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        tally.count(answer["status"] if answer["type"] == "result" else answer["error"]["code"])
        await asyncio.sleep(pause)


async def watch(player: PlayerClient, stop: asyncio.Event) -> None:
    """Print the live top 10 every time it changes."""
    await player.send({"type": "subscribe", "board": "global", "view": "top", "limit": 10})
    shown = None
    while not stop.is_set():
        try:
            frame = await player.receive("board", timeout=0.5)
        except TimeoutError:
            continue
        top = [(e["rank"], e["username"], e["score"]) for e in frame["entries"]]
        if top != shown:
            shown = top
            rows = "  ".join(f"{rank}. {name} {score}" for rank, name, score in top)
            print(f"[top 10 seq {frame['seq']}] {rows}", flush=True)


async def run(args: argparse.Namespace) -> int:
    tally = Tally()
    async with aiohttp.ClientSession() as http:
        players = await asyncio.gather(*(join(http, args.url, i) for i in range(args.players)))
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(players[0], stop))

        await asyncio.gather(*(play(p, args.actions, args.pause, tally) for p in players))
        await asyncio.sleep(0.3)
        stop.set()
        await watcher
        for player in players:
            await player.close()

    report(tally)
    return 0 if tally.missing == 0 else 1


async def join(http: aiohttp.ClientSession, url: str, index: int) -> PlayerClient:
    player = PlayerClient(http, url)
    player.username = f"bot{index}_{uuid.uuid4().hex[:6]}"
    await player.register(player.username, PASSWORD)
    await player.login(player.username, PASSWORD)
    await player.connect()
    return player


def report(tally: Tally) -> None:
    latencies = sorted(tally.latencies_ms)
    p50 = statistics.median(latencies) if latencies else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    print(
        f"sent {tally.sent}, applied {tally.statuses.get('applied', 0)}, "
        f"mismatched {tally.statuses.get('mismatch', 0)}, "
        f"rejected {tally.statuses.get('rejected', 0)}, missing {tally.missing}, "
        f"resent after a rate limit {tally.statuses.get('rate_limited_retries', 0)}; "
        f"action to result p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.bot", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL")
    parser.add_argument("--players", type=int, default=10, help="players to register")
    parser.add_argument("--actions", type=int, default=20, help="actions per player")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between actions")
    args = parser.parse_args()
    if args.players < 1 or args.actions < 0:
        parser.error("--players must be at least 1 and --actions at least 0")
    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
