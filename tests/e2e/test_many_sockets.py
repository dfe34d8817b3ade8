"""Two thousand sockets on one board: each one follows it, update by update, to its final
state, and the gateway carries on.

Logging in is deliberately slow (argon2id), so the sockets share the sessions of a few players;
a session may hold any number of sockets. Every socket runs in this process; opening them all
takes 5-15 s on two shared cores. How fast the frames arrive is for bench/push_fanout.py.
"""

import asyncio
import contextlib

import aiohttp

from devstack.client import PlayerClient
from tests.processes import alive

SOCKETS = 2000
SESSIONS = 10
ROUNDS = 5
# Upgrades in flight at once. Each costs a ValidateToken call, and auth's Redis pool refuses
# calls past 100 at once (the gateway then answers 503), so stay well below that.
OPENING = 50
# Generous: 2,000 sockets on two shared cores take a while to settle.
SETTLE_SECONDS = 30.0


async def _open_watcher(
    watcher: PlayerClient, token: str, gate: asyncio.Semaphore, n: int
) -> dict:
    """Open a socket of a logged-in session and subscribe it to global's top; the answer."""
    watcher.access_token = token
    async with gate:
        await watcher.connect()
        await watcher.send({"type": "subscribe", "id": n, "board": "global", "view": "top"})
        return await watcher.receive("board", timeout=30.0, id=n)


async def _follow_to(watcher: PlayerClient, seq: int) -> list[dict]:
    """The socket's board frames after its answer, up to the first at or past `seq`, or as
    many as came in time."""
    frames: list[dict] = []
    # A socket that stops short is reported by the caller's assertions, with its frames.
    with contextlib.suppress(TimeoutError):
        while not frames or frames[-1]["seq"] < seq:
            frames.append(await watcher.receive("board", timeout=SETTLE_SECONDS))
    return frames


async def _play_and_see(scorer: PlayerClient, points: int) -> dict:
    """Score, then wait for the board to show it, so that each round is a frame of its own
    rather than coalesced with the next."""
    result = await scorer.play("score", {"points": points})
    await scorer.board("top", lambda frame: _score_of(frame, scorer.player_id) == result["score"])
    return result


async def test_two_thousand_sockets_on_one_board_all_end_on_its_final_state(players, stack):
    scorer = await players()
    await scorer.send({"type": "subscribe", "id": "top", "board": "global", "view": "top"})
    await scorer.receive("board", id="top")
    owners = await asyncio.gather(*(players(connect=False) for _ in range(SESSIONS)))
    gateway = stack.pid_of("gateway")
    # Sockets hold their connection for as long as they are open: no pool limit.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    gate = asyncio.Semaphore(OPENING)
    watchers = [PlayerClient(http, stack.url) for _ in range(SOCKETS)]
    try:
        answers = await asyncio.gather(
            *(
                _open_watcher(watcher, owners[n % SESSIONS].access_token, gate, n)
                for n, watcher in enumerate(watchers)
            )
        )

        results = [await _play_and_see(scorer, 100 + n) for n in range(ROUNDS)]
        final = await scorer.call("GET", "/v1/boards/global/top")
        followed = await asyncio.gather(*(_follow_to(w, final["seq"]) for w in watchers))
        health = await scorer.call("GET", "/healthz")
        still_open = sum(not watcher.ws.closed for watcher in watchers)
    finally:
        await asyncio.gather(*(watcher.close() for watcher in watchers))
        await http.close()

    final_score = sum(100 + n for n in range(ROUNDS))
    assert [r["status"] for r in results] == ["applied"] * ROUNDS
    assert results[-1]["score"] == final_score
    assert _score_of(final, scorer.player_id) == final_score
    assert all(answer["snapshot"] is True for answer in answers)
    behind = [n for n, got in enumerate(followed) if not got or got[-1]["seq"] < final["seq"]]
    assert behind == [], f"{len(behind)} sockets never got the final frame"
    for answer, frames in zip(answers, followed, strict=True):
        seqs = [answer["seq"]] + [frame["seq"] for frame in frames]
        assert seqs == sorted(seqs), seqs
        assert not any(frame["snapshot"] for frame in frames)
        assert frames[-1]["seq"] == final["seq"]
        assert frames[-1]["entries"] == final["entries"]
        assert _score_of(frames[-1], scorer.player_id) == final_score
    assert still_open == SOCKETS
    assert health == {"status": "ok"}
    assert stack.pid_of("gateway") == gateway and alive(gateway)


def _score_of(view: dict, player_id: str) -> int | None:
    scores = [entry["score"] for entry in view["entries"] if entry["player_id"] == player_id]
    return scores[0] if scores else None
