"""A gateway told to stop (SIGTERM) drains: readiness turns false and new sockets are refused
at once; open sockets get the results they wait for, then 1001 after the grace period."""

import asyncio
import os
import signal
from datetime import datetime

import aiohttp
import orjson

STACK_ENV = {"PODIUM_DRAIN_GRACE_SECONDS": "1.5"}


async def test_sigterm_refuses_new_sockets_and_answers_open_ones_before_going_away(
    players, http, stack
):
    staying, late = await players(), await players(connect=False)
    action_id = await staying.act("score", {"points": 3})
    restart = asyncio.create_task(stack.restart("gateway"))

    for _ in range(100):
        async with http.get(stack.url + "/readyz") as reply:
            if reply.status == 503:
                assert await reply.json() == {"status": "draining"}
                break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("readiness never turned false")
    async with http.get(
        stack.url + "/v1/ws",
        headers={
            **late.bearer,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    ) as reply:
        assert (reply.status, (await reply.json())["error"]["code"]) == (503, "DRAINING")

    result = await staying.result(action_id)
    assert (result["status"], result["score"]) == ("applied", 3)
    # An action sent while draining is still answered before the socket is closed.
    during = await staying.play("score", {"points": 4})
    assert (during["status"], during["score"]) == ("applied", 7)
    assert await staying.closed_by_server() == aiohttp.WSCloseCode.GOING_AWAY
    await restart

    # The new gateway is ready and takes sockets again.
    await late.connect()
    assert (await late.play("score", {"points": 1}))["status"] == "applied"


async def test_a_drain_waits_once_for_results_that_do_not_come(players, stack):
    """With the workers frozen, a pending action holds its socket open for the result wait
    (5 s) after the grace, once: then 1001, and the gateway is gone well inside k8s' budget."""
    waiting = await players()
    game = stack.pid_of("game")
    os.kill(game, signal.SIGSTOP)
    try:
        await waiting.act("score", {"points": 1})
        await asyncio.sleep(0.2)
        old_gateway = stack.pid_of("gateway")
        restart = asyncio.create_task(stack.restart("gateway"))
        assert await waiting.closed_by_server(timeout=20) == aiohttp.WSCloseCode.GOING_AWAY
    finally:
        os.kill(game, signal.SIGCONT)
    await restart

    events = {
        entry["event"]: entry["ts"]
        for entry in map(orjson.loads, _lines_of(stack, old_gateway))
        if entry["event"] in ("draining", "stopped")
    }
    took = datetime.fromisoformat(events["stopped"]) - datetime.fromisoformat(events["draining"])
    assert took.total_seconds() < 1.5 + 5 + 3


def _lines_of(stack, pid: int) -> list[str]:
    """The stack log's JSON lines of the gateway process `pid` (between its start and the next)."""
    lines, mine = [], False
    for line in stack.log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = orjson.loads(line)
        if entry.get("event") == "service_started" and entry.get("name") == "gateway":
            mine = entry.get("pid") == pid
        elif mine and entry.get("service") == "gateway":
            lines.append(line)
    return lines
